//! wasmgate's integration tests: real servers on 127.0.0.1:0, real clients (ureq for the happy
//! paths, raw `TcpStream` for everything a well-behaved client would never send), real guests.
//!
//! Every test starts its servers the way the binary does (`wasmgate_server::Server::start`, or the
//! CLI itself as a child process) and asserts on what an operator sees: status codes and bodies,
//! `/metrics`, `/ready`, exit codes, and log lines only where the line is the behaviour. The only
//! `unsafe` is in `support/sys.rs`.

#![deny(unsafe_code)]

mod abi_v2;
mod admission;
mod anywhere;
mod authoring;
mod balancer;
mod boundaries;
mod connections;
mod fairness;
mod faults;
mod guest_logs;
mod hostile_clients;
mod kv;
mod labels;
mod lifecycle;
mod native;
mod outbound;
mod plugins;
mod preinit;
mod protocol;
mod reload;
mod reload_services;
mod reuse;
mod sandbox;
mod saturation;
mod scaleout;
mod secrets;
mod support;
mod walkthrough;
