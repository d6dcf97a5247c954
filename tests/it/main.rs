//! wasmgate's integration tests: real servers on 127.0.0.1:0, real clients (ureq for the happy
//! paths, raw `TcpStream` for everything a well-behaved client would never send), real guests.

mod admission;
mod authoring;
mod balancer;
mod boundaries;
mod connections;
mod fairness;
mod faults;
mod hostile_clients;
mod lifecycle;
mod native;
mod plugins;
mod protocol;
mod reload;
mod sandbox;
mod scaleout;
mod support;
mod walkthrough;
