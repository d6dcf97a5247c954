//! `[stores.NAME]`: the key-value stores plugins may be granted (`kv = ["NAME"]`), each with its
//! backend and its limits.
//!
//! Owns the syntax of a store table and its defaults: SQLite in a file under the data directory
//! unless `backend = "redis"` says otherwise. It must not open anything: the stores are opened by
//! the server at start and by a reload that adds or redefines one (`kv`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::values::{Count32, Dur, Size};

/// Where wasmgate keeps state (SQLite stores in `kv/`) unless `[server] data_dir` says otherwise.
pub(crate) const DEFAULT_DATA_DIR: &str = ".wasmgate";

/// One `[stores.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub name: String,
    pub backend: StoreBackend,
    pub limits: StoreLimits,
    /// A required store that is down makes `/ready` answer 503, so a balancer sends traffic to a
    /// process whose store works.
    pub required: bool,
}

/// Where a store keeps its data. `Debug` masks the password of a Redis URL.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// A SQLite file (WAL mode), safe to share between the wasmgate processes of one machine.
    Sqlite { path: PathBuf, sync: SqliteSync },
    /// A Redis server, for processes on several machines.
    Redis {
        /// `redis://[user:password@]host:port[/db]`.
        url: String,
        /// Prepended to every key this store writes, so several stores (and other applications)
        /// can share one server.
        key_prefix: String,
    },
}

impl std::fmt::Debug for StoreBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreBackend::Sqlite { path, sync } => f
                .debug_struct("Sqlite")
                .field("path", path)
                .field("sync", sync)
                .finish(),
            StoreBackend::Redis { url, key_prefix } => f
                .debug_struct("Redis")
                .field("url", &super::redact::mask_url_passwords(url))
                .field("key_prefix", key_prefix)
                .finish(),
        }
    }
}

/// How much SQLite waits for the disk before a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteSync {
    /// `synchronous = FULL`: a write is on stable storage before the plugin's call returns, so an
    /// acknowledged write survives a crash of the process, of the OS and a power loss. The
    /// default.
    Full,
    /// `synchronous = NORMAL`: in WAL mode a write survives a crash of the process (it is in the
    /// OS's cache), but the last writes before a power loss or OS crash may be lost. Faster.
    Normal,
}

/// The bounds of one store. Each refusal is an error value the plugin sees, with a message naming
/// the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Longest key -> `too_large`.
    pub max_key_bytes: usize,
    /// Largest value -> `too_large`.
    pub max_value_bytes: usize,
    /// Most keys one `list` call returns (a larger `limit` is lowered to it).
    pub max_list_keys: u32,
    /// Operations on this store one request may make -> `limit_reached` past it: a plugin in a
    /// loop cannot turn one request into a flood of store traffic.
    pub max_ops_per_request: u32,
    /// Longest one operation may take (never past the request's deadline) -> `timeout`: a slow
    /// or dead backend costs the plugin a bounded wait and an error it handles.
    pub timeout: Duration,
    /// Longest TTL a write may set -> `too_large` past it, on both backends alike (Redis refuses
    /// an expiry its clock cannot hold; SQLite would take anything). At most 100 years
    /// (`MAX_TTL_CEILING`), so an expiry always fits both.
    pub max_ttl: Duration,
}

/// The largest `max_ttl` a configuration may set: 100 years, far inside both backends' clocks
/// (milliseconds since 1970 as a 64-bit integer).
pub(crate) const MAX_TTL_CEILING: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_key_bytes: 512,
            max_value_bytes: 1024 * 1024,
            max_list_keys: 1000,
            max_ops_per_request: 100,
            timeout: Duration::from_millis(500),
            max_ttl: Duration::from_secs(365 * 24 * 3600),
        }
    }
}

/// A `[stores.NAME]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    backend: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    sync: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    key_prefix: Option<String>,
    #[serde(default)]
    required: bool,
    max_key_bytes: Option<Spanned<Size>>,
    max_value_bytes: Option<Spanned<Size>>,
    max_list_keys: Option<Spanned<Count32>>,
    max_ops_per_request: Option<Spanned<Count32>>,
    timeout: Option<Spanned<Dur>>,
    max_ttl: Option<Spanned<Dur>>,
}

/// Whether `name` may name a store: letters, digits, `_` and `-`, starting with a letter.
pub(super) fn is_store_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl RawStore {
    /// The store `name`, with `data_dir` (resolved) holding SQLite files by default. Errors carry
    /// the span of the offending value.
    pub(super) fn resolve(
        &self,
        name: &str,
        data_dir: &Path,
        base_dir: &Path,
    ) -> Result<StoreConfig, (Option<std::ops::Range<usize>>, String)> {
        let backend_name = self.backend.as_ref().map_or("sqlite", |b| b.get_ref());
        let backend = match backend_name {
            "sqlite" => {
                if let Some(url) = &self.url {
                    return Err((
                        Some(url.span()),
                        format!("store `{name}` is SQLite: `url` is for `backend = \"redis\"`"),
                    ));
                }
                let path = match &self.path {
                    Some(p) => base_dir.join(p.get_ref()),
                    None => data_dir.join("kv").join(format!("{name}.sqlite")),
                };
                let sync = match self.sync.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
                    None | Some(("full", _)) => SqliteSync::Full,
                    Some(("normal", _)) => SqliteSync::Normal,
                    Some((other, span)) => {
                        return Err((
                            Some(span),
                            format!("`sync = \"{other}\"`: expected \"full\" or \"normal\""),
                        ));
                    }
                };
                StoreBackend::Sqlite { path, sync }
            }
            "redis" => {
                let Some(url) = &self.url else {
                    return Err((
                        self.backend.as_ref().map(Spanned::span),
                        format!(
                            "store `{name}` uses Redis and needs `url = \"redis://127.0.0.1:6379\"`"
                        ),
                    ));
                };
                if !(url.get_ref().starts_with("redis://")
                    || url.get_ref().starts_with("rediss://"))
                {
                    return Err((
                        Some(url.span()),
                        format!("`{}` is not a redis:// URL", url.get_ref()),
                    ));
                }
                if let Some(p) = self.path.as_ref().or(self.sync.as_ref()) {
                    return Err((
                        Some(p.span()),
                        format!("store `{name}` is Redis: `path` and `sync` are for SQLite"),
                    ));
                }
                StoreBackend::Redis {
                    url: url.get_ref().clone(),
                    key_prefix: self
                        .key_prefix
                        .clone()
                        .unwrap_or_else(|| format!("wasmgate:{name}:")),
                }
            }
            other => {
                return Err((
                    self.backend.as_ref().map(Spanned::span),
                    format!("unknown store backend `{other}`: expected \"sqlite\" or \"redis\""),
                ));
            }
        };
        let mut limits = StoreLimits::default();
        if let Some(v) = &self.max_key_bytes {
            limits.max_key_bytes = (*v.get_ref()).into();
        }
        if let Some(v) = &self.max_value_bytes {
            limits.max_value_bytes = (*v.get_ref()).into();
        }
        if let Some(v) = &self.max_list_keys {
            limits.max_list_keys = (*v.get_ref()).into();
        }
        if let Some(v) = &self.max_ops_per_request {
            limits.max_ops_per_request = (*v.get_ref()).into();
        }
        if let Some(v) = &self.timeout {
            limits.timeout = (*v.get_ref()).into();
        }
        if let Some(v) = &self.max_ttl {
            limits.max_ttl = (*v.get_ref()).into();
            if limits.max_ttl > MAX_TTL_CEILING {
                return Err((
                    Some(v.span()),
                    format!(
                        "`max_ttl` of store `{name}` is more than 100 years (\"52560000m\"), the most a store takes"
                    ),
                ));
            }
        }
        Ok(StoreConfig {
            name: name.to_string(),
            backend,
            limits,
            required: self.required,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn max_ttl(value: &str) -> Result<Duration, String> {
        let text = format!("[stores.s]\nmax_ttl = \"{value}\"\n");
        Config::parse(&text, Path::new("w.toml"), Path::new("/srv"))
            .map(|c| c.stores[0].limits.max_ttl)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn max_ttl_is_at_most_100_years() {
        assert_eq!(
            StoreLimits::default().max_ttl,
            Duration::from_secs(365 * 86_400)
        );
        assert_eq!(max_ttl("52560000m"), Ok(MAX_TTL_CEILING));
        let err = max_ttl("52560001m").unwrap_err();
        assert!(
            err.contains("`max_ttl` of store `s` is more than 100 years"),
            "{err}"
        );
        assert!(err.contains("w.toml:2"), "{err}");
    }
}
