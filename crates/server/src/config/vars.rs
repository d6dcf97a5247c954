//! Plugin variables and secrets: `[plugins.NAME.vars]`, resolved to values when the
//! configuration is read (at start and at every reload).
//!
//! Owns the syntax of one variable (a literal, `{ value = .. }`, `{ env = "VAR" }` or
//! `{ file = "/run/secrets/x" }`, each optionally `secret`), its resolution (reading the
//! environment or the file), and the rule that a secret's value never leaves this type except
//! through [`Vars::get`], which the `var_get` host call uses: `Debug` redacts it, and no message
//! built here contains a value. Resolution errors are configuration errors, so a reload whose
//! secret file vanished is refused whole and the running values stay.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Largest value a variable may have (a value read from a file past this is refused): variables
/// are configuration and credentials, not data, and each request's `var_get` copies one.
pub const MAX_VAR_BYTES: usize = 64 * 1024;

/// A plugin's variables, resolved. Cheap to compare (a reload swaps a plugin's variables only when
/// they changed) and safe to log: secret values print as `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Vars {
    entries: BTreeMap<String, Var>,
}

/// One resolved variable.
#[derive(Clone, PartialEq, Eq)]
pub struct Var {
    value: String,
    secret: bool,
    source: VarSource,
}

/// Where a variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarSource {
    /// Written in the configuration.
    Literal,
    /// The host's environment variable of this name.
    Env(String),
    /// This file's content (one trailing newline removed).
    File(PathBuf),
}

impl fmt::Display for VarSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarSource::Literal => f.write_str("literal"),
            VarSource::Env(name) => write!(f, "env {name}"),
            VarSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

impl Vars {
    /// The value of `name`, if the plugin has it (an `optional` variable whose source was absent
    /// does not exist).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.get(name).map(|v| v.value.as_str())
    }

    /// `(name, source, secret)` of every variable, without values: what `wasmgate check` and logs
    /// may show.
    pub fn describe(&self) -> impl Iterator<Item = (&str, &VarSource, bool)> {
        self.entries
            .iter()
            .map(|(n, v)| (n.as_str(), &v.source, v.secret))
    }

    /// How many variables there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter()).finish()
    }
}

impl fmt::Debug for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secret {
            write!(f, "<redacted> ({})", self.source)
        } else {
            write!(f, "{:?} ({})", self.value, self.source)
        }
    }
}

/// One `[plugins.NAME.vars]` entry as written.
#[derive(Deserialize, Clone)]
#[serde(
    untagged,
    expecting = "a string, or a table with one of `value`, `env` or `file`"
)]
pub(super) enum RawVar {
    Literal(String),
    Table(RawVarTable),
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVarTable {
    value: Option<String>,
    env: Option<String>,
    file: Option<String>,
    /// Default: true for `env` and `file` (they exist to keep values out of the file), false for
    /// a value written in the configuration.
    secret: Option<bool>,
    /// An absent environment variable or file leaves the variable unset instead of refusing the
    /// configuration.
    #[serde(default)]
    optional: bool,
}

/// Whether `name` may name a variable: letters, digits, `_`, `-` and `.`, starting with a letter
/// or `_`.
pub(super) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Resolves one variable named `name`: `Ok(None)` for an optional one whose source is absent.
/// `base_dir` anchors relative file paths. Errors name the variable and the source, never a
/// value.
pub(super) fn resolve(
    name: &str,
    raw: &RawVar,
    base_dir: &Path,
    read_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Var>, String> {
    let table = match raw {
        RawVar::Literal(value) => {
            return Ok(Some(Var {
                value: value.clone(),
                secret: false,
                source: VarSource::Literal,
            }));
        }
        RawVar::Table(t) => t,
    };
    let (value, source, default_secret) = match (&table.value, &table.env, &table.file) {
        (Some(v), None, None) => (Some(v.clone()), VarSource::Literal, false),
        (None, Some(env), None) => (read_env(env), VarSource::Env(env.clone()), true),
        (None, None, Some(file)) => {
            let path = base_dir.join(file);
            let value = read_file(name, &path)?;
            (value, VarSource::File(path), true)
        }
        _ => {
            return Err(format!(
                "variable `{name}` needs exactly one of `value`, `env` or `file`"
            ));
        }
    };
    let secret = table.secret.unwrap_or(default_secret);
    match value {
        Some(value) if value.len() > MAX_VAR_BYTES => Err(format!(
            "variable `{name}` ({source}) is {} bytes, more than the {MAX_VAR_BYTES} a variable may hold",
            value.len()
        )),
        Some(value) => Ok(Some(Var {
            value,
            secret,
            source,
        })),
        None if table.optional => Ok(None),
        None => Err(match source {
            VarSource::Env(env) => format!(
                "variable `{name}` reads the environment variable {env}, which is not set (add `optional = true` to allow that)"
            ),
            other => format!("variable `{name}` ({other}) has no value"),
        }),
    }
}

/// A file's content as text, without one trailing newline (`\n` or `\r\n`, as `echo` and editors
/// leave); `None` when the file does not exist.
fn read_file(name: &str, path: &Path) -> Result<Option<String>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "variable `{name}`: cannot read {}: {e}",
                path.display()
            ));
        }
    };
    let mut text = String::from_utf8(bytes)
        .map_err(|_| format!("variable `{name}`: {} is not UTF-8 text", path.display()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(Some(text))
}

/// Builds a plugin's [`Vars`] from resolved entries.
pub(super) fn collect(entries: impl IntoIterator<Item = (String, Var)>) -> Vars {
    Vars {
        entries: entries.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(value: Option<&str>, env: Option<&str>, file: Option<&str>) -> RawVar {
        RawVar::Table(RawVarTable {
            value: value.map(Into::into),
            env: env.map(Into::into),
            file: file.map(Into::into),
            secret: None,
            optional: false,
        })
    }

    fn env(name: &str) -> Option<String> {
        (name == "SET").then(|| "from-env".to_string())
    }

    #[test]
    fn sources_resolve_and_secrets_default_by_source() {
        let dir = std::env::temp_dir().join(format!("wasmgate-vars-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "s3cret\r\n").unwrap();
        let lit = resolve("a", &RawVar::Literal("x".into()), &dir, &env)
            .unwrap()
            .unwrap();
        assert_eq!((lit.value.as_str(), lit.secret), ("x", false));
        let e = resolve("b", &table(None, Some("SET"), None), &dir, &env)
            .unwrap()
            .unwrap();
        assert_eq!((e.value.as_str(), e.secret), ("from-env", true));
        let f = resolve("c", &table(None, None, Some("token")), &dir, &env)
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.value.as_str(), f.secret),
            ("s3cret", true),
            "one newline trimmed"
        );
        let vars = collect([("c".to_string(), f), ("a".to_string(), lit)]);
        let shown = format!("{vars:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("<redacted>"),
            "{shown}"
        );
        assert!(shown.contains("\"x\""), "{shown}");
        assert_eq!(vars.get("c"), Some("s3cret"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn absent_sources_are_errors_unless_optional_and_messages_hold_no_value() {
        let dir = std::env::temp_dir();
        let err = resolve("b", &table(None, Some("UNSET"), None), &dir, &env).unwrap_err();
        assert!(
            err.contains("UNSET") && err.contains("optional = true"),
            "{err}"
        );
        let missing = table(None, None, Some("no/such/file"));
        assert!(
            resolve("c", &missing, &dir, &env)
                .unwrap_err()
                .contains("has no value")
        );
        let RawVar::Table(mut t) = table(None, Some("UNSET"), None) else {
            unreachable!()
        };
        t.optional = true;
        assert!(
            resolve("b", &RawVar::Table(t), &dir, &env)
                .unwrap()
                .is_none()
        );
        let both = table(Some("v"), Some("SET"), None);
        assert!(
            resolve("d", &both, &dir, &env)
                .unwrap_err()
                .contains("exactly one")
        );
    }

    #[test]
    fn a_value_at_the_limit_is_kept_and_one_past_it_refused() {
        let dir = std::env::temp_dir().join(format!("wasmgate-vars-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ok"), "x".repeat(MAX_VAR_BYTES)).unwrap();
        std::fs::write(dir.join("big"), "x".repeat(MAX_VAR_BYTES + 1)).unwrap();
        assert!(resolve("ok", &table(None, None, Some("ok")), &dir, &env).is_ok());
        let err = resolve("big", &table(None, None, Some("big")), &dir, &env).unwrap_err();
        assert!(err.contains("65537 bytes") && !err.contains("xxx"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names() {
        for ok in ["a", "api_key", "_x", "a.b-c9"] {
            assert!(is_var_name(ok), "{ok}");
        }
        for bad in ["", "9a", "a b", "a/b", "é"] {
            assert!(!is_var_name(bad), "{bad}");
        }
    }
}
