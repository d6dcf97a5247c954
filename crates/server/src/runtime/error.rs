//! The runtime's typed errors: what went wrong starting the engine, loading a plugin, or calling
//! one.
//!
//! Each error has a stable `kind()` label for metrics and logs. Deliberately NO mapping to HTTP
//! statuses here: the server's error module owns the one status map; the status each variant is
//! meant to get is written in its doc comment (and in docs/ABI.md for call errors).

use std::path::PathBuf;
use std::time::Duration;

use super::abi::ResponseError;
use crate::metrics::{CallOutcome, LabelValue, LoadErrorKind};

/// Formats a wasmtime error with its whole cause chain on one line.
pub(crate) fn chain(e: &wasmtime::Error) -> String {
    format!("{e:#}")
}

/// The engine could not be set up (a startup failure: the server should not start).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the configuration (e.g. settings out of range for this platform).
    #[error("cannot configure the wasm engine: {0}")]
    Engine(String),
    /// The epoch ticker thread could not be spawned.
    #[error("cannot start the epoch ticker thread: {0}")]
    Ticker(#[source] std::io::Error),
}

/// A plugin could not be loaded. At startup this stops the server; on reload the old version
/// keeps serving. (No HTTP status: a route whose plugin never loaded answers 503 `not_loaded`,
/// which the server decides.)
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The module file could not be read.
    #[error("plugin `{plugin}`: cannot read {path}: {cause}")]
    Io {
        plugin: String,
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A crate plugin's module does not exist yet: the crate was never built (or its build
    /// failed). Not a broken file: the message says how to build it.
    #[error(
        "plugin `{plugin}`: not built yet (no {path}): `wasmgate build` builds it, and a running \
         `wasmgate up --watch` does by itself"
    )]
    NotBuilt { plugin: String, path: PathBuf },
    /// Not valid wasm / wat, or wasmtime could not compile it.
    #[error("plugin `{plugin}`: cannot compile: {message}")]
    Compile { plugin: String, message: String },
    /// The module does not follow the ABI or its grants; every problem found is listed.
    #[error("plugin `{plugin}` {}: {}", abi_verdict(problems), join(problems))]
    Abi {
        plugin: String,
        problems: Vec<AbiProblem>,
    },
    /// The module needs more than a pool slot holds or the plugin's limits allow.
    #[error("plugin `{plugin}` does not fit its limits: {}", join(problems))]
    Resources {
        plugin: String,
        problems: Vec<super::resources::ResourceProblem>,
    },
    /// A grant in the configuration cannot be honoured (e.g. a directory that does not exist).
    #[error("plugin `{plugin}`: grant cannot be honoured: {cause}")]
    Grant {
        plugin: String,
        cause: super::wasi::GrantError,
    },
    /// A host service a grant names (a store of `kv = [...]`, the `[outbound]` settings behind
    /// `allowed_outbound_hosts`) could not be set up by a reload: the plugin is refused rather
    /// than loaded with a grant it cannot use.
    #[error("plugin `{plugin}`: grant `{grant}` cannot be honoured: {cause}")]
    Service {
        plugin: String,
        /// The grant as configured, e.g. `kv = ["snippets"]`.
        grant: String,
        /// What failed, e.g. the store's open error.
        cause: String,
    },
    /// Pre-linking against WASI failed after validation passed (should not happen).
    #[error("plugin `{plugin}`: cannot link: {message}")]
    Link { plugin: String, message: String },
    /// The load-time check instance (`_initialize` + `wasmgate_abi_version()`) failed.
    #[error("plugin `{plugin}`: load-time check call failed ({}): {cause}", cause.kind())]
    Check {
        plugin: String,
        cause: Box<CallError>,
    },
}

/// What to add to the configuration for `grant`, written for the plugin `plugin`: the one wording,
/// used by the load error and by `wasmgate check`'s list of needed grants.
pub(super) fn grant_hint(grant: wasmgate_abi::Grant, plugin: &str) -> String {
    match grant {
        wasmgate_abi::Grant::Vars => format!("add a `[plugins.{plugin}.vars]` table"),
        wasmgate_abi::Grant::Kv => {
            format!("add `kv = [\"STORE\"]` (a store of [stores.*]) to [plugins.{plugin}]")
        }
        wasmgate_abi::Grant::Outbound => {
            format!("add `allowed_outbound_hosts = [\"https://HOST\"]` to [plugins.{plugin}]")
        }
    }
}

/// What an [`LoadError::Abi`] says of the module: a module whose only problems are grants follows
/// the ABI (the configuration lacks a grant), and is not told otherwise.
fn abi_verdict(problems: &[AbiProblem]) -> &'static str {
    if problems
        .iter()
        .all(|p| matches!(p, AbiProblem::NotGranted { .. }))
    {
        "follows the ABI but is not granted what it imports"
    } else {
        "does not follow the wasmgate ABI"
    }
}

fn join(problems: &[impl ToString]) -> String {
    let v: Vec<String> = problems.iter().map(ToString::to_string).collect();
    v.join("; ")
}

impl LoadError {
    /// Its `kind` label in metrics and logs.
    pub(crate) fn kind(&self) -> LoadErrorKind {
        match self {
            LoadError::Io { .. } | LoadError::NotBuilt { .. } => LoadErrorKind::Io,
            LoadError::Compile { .. } => LoadErrorKind::Compile,
            LoadError::Abi { .. } => LoadErrorKind::Abi,
            LoadError::Resources { .. } => LoadErrorKind::Limits,
            LoadError::Grant { .. } | LoadError::Service { .. } => LoadErrorKind::Grant,
            LoadError::Link { .. } => LoadErrorKind::Link,
            LoadError::Check { .. } => LoadErrorKind::Check,
        }
    }
}

/// One way a module departs from the ABI. Messages name what was found and what the ABI expects,
/// or the grant to add.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbiProblem {
    /// An import from a module other than `wasi_snapshot_preview1` and `wasmgate`, or not a
    /// function.
    #[error(
        "import `{module}.{name}` ({what}) is not allowed: only functions from \
         `wasi_snapshot_preview1` (and, in ABI v2, `wasmgate`) may be imported"
    )]
    ForbiddenImport {
        module: String,
        name: String,
        what: &'static str,
    },
    /// `wasi_snapshot_preview1.NAME` where NAME is not a WASI preview 1 function.
    #[error("import `wasi_snapshot_preview1.{name}` is not a WASI preview 1 function")]
    UnknownWasiFunction { name: String },
    /// `wasmgate.NAME` where NAME is not a host function of ABI v2.
    #[error(
        "import `wasmgate.{name}` is not a wasmgate host function (docs/ABI.md \"The functions\" lists them)"
    )]
    UnknownHostFunction { name: String },
    /// An import declared with the wrong signature.
    #[error("import `{module}.{name}` has type {found}, the ABI defines {expected}")]
    ImportType {
        module: &'static str,
        name: String,
        found: String,
        expected: String,
    },
    /// A host function whose group the plugin's configuration does not grant.
    #[error("import `wasmgate.{name}` is not granted: {}", grant_hint(*grant, plugin))]
    NotGranted {
        name: String,
        plugin: String,
        grant: wasmgate_abi::Grant,
    },
    /// A module declaring ABI v1 that imports host functions (a v2 feature). Reported before any
    /// grant problem of the same import: the version is the real cause.
    #[error(
        "import `wasmgate.{name}` needs ABI v2 (export `wasmgate_abi_version` returning 2), but \
         `wasmgate_abi_version()` returned 1: host functions do not exist in ABI v1"
    )]
    HostImportInV1 { name: String },
    /// A required export is absent.
    #[error("missing export `{name}`: the ABI expects {expected}")]
    MissingExport { name: String, expected: String },
    /// An export of the right name but the wrong kind or type.
    #[error("export `{name}` is {found}, the ABI expects {expected}")]
    ExportType {
        name: String,
        found: String,
        expected: String,
    },
    /// `wasmgate_abi_version()` returned a version this host does not speak.
    #[error("`wasmgate_abi_version()` returned {found}, this host implements ABI versions 1 and 2")]
    WrongVersion { found: i32 },
}

/// One plugin call failed. The guest's own failure modes, each with its intended status.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The guest trapped (`unreachable`, a Rust panic, stack overflow, out-of-bounds access, a
    /// bad pointer from `wasmgate_alloc`, ...). `message` is the trap itself; `backtrace` the
    /// innermost wasm frames (empty when none); `stderr_tail` the end of what the guest wrote to
    /// stderr (a Rust panic message and location). -> 500 `trap`.
    #[error("guest trapped: {message}")]
    Trap {
        message: String,
        backtrace: String,
        stderr_tail: String,
        fuel_used: u64,
    },
    /// The guest tried to grow its memory past `max_memory_bytes` and then failed (trapped, or
    /// `wasmgate_alloc` returned 0). -> 500 `memory_limit`.
    #[error("guest hit its memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        limit_bytes: u64,
        stderr_tail: String,
        fuel_used: u64,
    },
    /// The guest burned its whole fuel budget. -> 504 `fuel_exhausted`.
    #[error("guest exhausted its fuel budget of {fuel}")]
    FuelExhausted { fuel: u64 },
    /// The call took longer than the wall-clock deadline (including any wait for a free instance
    /// slot). -> 504 `deadline`.
    #[error("guest exceeded its deadline of {deadline:?}")]
    Deadline { deadline: Duration, fuel_used: u64 },
    /// The guest answered bytes the host refuses (docs/ABI.md). -> 502 `invalid_response`.
    #[error("guest returned an invalid response: {reason}")]
    InvalidResponse {
        reason: ResponseError,
        fuel_used: u64,
    },
    /// A fresh instance could not be created for a reason that is not the guest's memory cap
    /// (host out of memory or address space, pool exhausted). -> 500 `instantiate`.
    #[error("cannot instantiate the guest: {message}")]
    Instantiate { message: String },
    /// One of the host's own pools (instance slots, memories, tables, fiber stacks) was empty
    /// when the call needed it: the server's load, not the guest's fault, whether the guest was
    /// instantiating or running (a nested hand-back call needs a stack too). Sizing makes this
    /// unreachable (`engine::STACKS_PER_SLOT`); classifying it here keeps a sizing mistake from
    /// ever reaching a guest as a trap or its breaker as a failure. -> 503 `overloaded`.
    #[error("the host is overloaded: {message}")]
    Overloaded { message: String, fuel_used: u64 },
}

impl CallError {
    /// The `outcome` it is counted under in `wasmgate_plugin_calls_total`.
    pub(crate) fn outcome(&self) -> CallOutcome {
        match self {
            CallError::Trap { .. } => CallOutcome::Trap,
            CallError::MemoryLimit { .. } => CallOutcome::MemoryLimit,
            CallError::FuelExhausted { .. } => CallOutcome::FuelExhausted,
            CallError::Deadline { .. } => CallOutcome::Deadline,
            CallError::InvalidResponse { .. } => CallOutcome::InvalidResponse,
            CallError::Instantiate { .. } => CallOutcome::Instantiate,
            CallError::Overloaded { .. } => CallOutcome::Overloaded,
        }
    }

    /// Stable metric/log label (the `kind` column of docs/ABI.md): its outcome's label.
    pub fn kind(&self) -> &'static str {
        self.outcome().label()
    }

    /// Fuel the failed call burned (0 when it never ran).
    pub fn fuel_used(&self) -> u64 {
        match self {
            CallError::Trap { fuel_used, .. }
            | CallError::MemoryLimit { fuel_used, .. }
            | CallError::Deadline { fuel_used, .. }
            | CallError::InvalidResponse { fuel_used, .. }
            | CallError::Overloaded { fuel_used, .. } => *fuel_used,
            CallError::FuelExhausted { fuel } => *fuel,
            CallError::Instantiate { .. } => 0,
        }
    }

    /// The end of the guest's stderr, when the failure is one where it explains something and
    /// the guest wrote any.
    pub fn stderr_tail(&self) -> Option<&str> {
        match self {
            CallError::Trap { stderr_tail, .. } | CallError::MemoryLimit { stderr_tail, .. }
                if !stderr_tail.is_empty() =>
            {
                Some(stderr_tail)
            }
            _ => None,
        }
    }
}

/// Whether `e` says one of the pooling allocator's pools was empty, wherever in its chain (a
/// nested call's failure reaches us wrapped in the host function's error and a backtrace).
pub(crate) fn is_pool_exhaustion(e: &wasmtime::Error) -> bool {
    e.chain()
        .any(|c| c.is::<wasmtime::PoolConcurrencyLimitError>())
}

/// The error our epoch callback raises once the wall-clock deadline has passed; recognised by
/// type when classifying the trap.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("wall-clock deadline exceeded")]
pub(crate) struct DeadlineExceeded;
