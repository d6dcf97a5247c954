//! The `wasmgate` command line and its authoring tools.
//!
//! The binary's edge: flags, exit codes, human-readable errors (the only crate that uses `anyhow`),
//! and the tools that are about writing plugins rather than serving them: `build` (cargo and
//! build commands for plugins), `new` (scaffolding), `up --watch` (rebuild on save). Serving is one
//! call into `wasmgate-server` (`Server::start`), the same call the integration tests make.

#![deny(unsafe_code)]

pub mod builder;
pub mod cli;
mod rebuild;
mod scaffold;
pub mod sdk;
