//! Plugin variables and secrets: `[plugins.NAME.vars]`, resolved to values when the
//! configuration is read (at start and at every reload).
//!
//! Owns the syntax of one variable (a literal, `{ value = .. }`, `{ env = "VAR" }` or
//! `{ file = "/run/secrets/x" }`, each optionally `secret`), its resolution (reading the
//! environment or the file), and the rule that a secret's value never leaves this type except
//! through [`Vars::get`], which the `var_get` host call uses: `Debug` redacts it, and no message
//! built here contains a value. Resolution errors are configuration errors, so a reload whose
//! secret file vanished is refused whole and the running values stay.
//!
//! A configuration read for `wasmgate check` is read with [`Resolve::Declared`]: every source is
//! checked for syntax but no value is read (a check is not a deploy, and the machine that checks a
//! module need not hold production secrets); [`Vars::absent_here`] then says which required
//! sources a serve on this machine would miss, without reading them.

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
    /// `None` when the configuration was read without values ([`Resolve::Declared`]).
    value: Option<String>,
    secret: bool,
    /// `optional = true`: an absent source leaves the variable unset.
    optional: bool,
    source: VarSource,
}

/// Whether reading a configuration reads the variables' values.
#[derive(Clone, Copy)]
pub(crate) enum Resolve<'a> {
    /// Read each source (the environment through this function, files from disk): to serve.
    Values(&'a dyn Fn(&str) -> Option<String>),
    /// Check each variable's syntax only and read no value: for `wasmgate check`, which must
    /// neither fail on nor touch secrets it does not need.
    Declared,
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
        self.entries.get(name).and_then(|v| v.value.as_deref())
    }

    /// The required variables of a configuration read without values whose source is absent on
    /// this machine (an unset environment variable, a missing file), as `(name, source)`: what a
    /// serve here would refuse. Looks at presence only: no value is read.
    pub fn absent_here(&self) -> Vec<(&str, &VarSource)> {
        self.entries
            .iter()
            .filter(|(_, v)| v.value.is_none() && !v.optional)
            .filter(|(_, v)| match &v.source {
                VarSource::Literal => false,
                VarSource::Env(name) => std::env::var_os(name).is_none(),
                VarSource::File(path) => !path.exists(),
            })
            .map(|(n, v)| (n.as_str(), &v.source))
            .collect()
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
        match &self.value {
            None => write!(f, "<not read> ({})", self.source),
            Some(_) if self.secret => write!(f, "<redacted> ({})", self.source),
            Some(value) => write!(f, "{value:?} ({})", self.source),
        }
    }
}

/// One `[plugins.NAME.vars]` entry as written.
#[derive(Clone)]
pub(super) enum RawVar {
    Literal(String),
    Table(RawVarTable),
}

/// The keys a variable table may have, in the order messages list them.
pub(super) const VAR_KEYS: [&str; 5] = ["value", "env", "file", "secret", "optional"];

/// By hand rather than `untagged`: an untagged enum reports any mistake inside a table as "not
/// a string or a table", so a misspelled key (`secert = true`) would go unnamed. Here an unknown
/// key is named, with the allowed keys and the closest one.
impl<'de> Deserialize<'de> for RawVar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawVar;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, or a table with one of `value`, `env` or `file`")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawVar, E> {
                Ok(RawVar::Literal(s.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawVar, A::Error> {
                let mut t = RawVarTable::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "value" => t.value = Some(map.next_value()?),
                        "env" => t.env = Some(map.next_value()?),
                        "file" => t.file = Some(map.next_value()?),
                        "secret" => t.secret = Some(map.next_value()?),
                        "optional" => t.optional = map.next_value()?,
                        other => {
                            return Err(serde::de::Error::custom(unknown_key_message(other)));
                        }
                    }
                }
                Ok(RawVar::Table(t))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// What is said of an unknown key `key` in a variable table: the key, the keys allowed, and the
/// closest of them when it looks like a misspelling.
fn unknown_key_message(key: &str) -> String {
    let allowed: Vec<String> = VAR_KEYS.iter().map(|k| format!("`{k}`")).collect();
    let mut message = format!(
        "unknown key `{key}` in a variable table: the keys are {}",
        allowed.join(", ")
    );
    if let Some(close) = super::error::closest(key, &VAR_KEYS) {
        message.push_str(&format!(" (did you mean `{close}`?)"));
    }
    message
}

#[derive(Clone, Default)]
pub(super) struct RawVarTable {
    value: Option<String>,
    env: Option<String>,
    file: Option<String>,
    /// Default: true for `env` and `file` (they exist to keep values out of the file), false for
    /// a value written in the configuration.
    secret: Option<bool>,
    /// An absent environment variable or file leaves the variable unset instead of refusing the
    /// configuration.
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
/// `base_dir` anchors relative file paths; with [`Resolve::Declared`] no source is read (the
/// variable comes back without a value). Errors name the variable and the source, never a value.
pub(super) fn resolve(
    name: &str,
    raw: &RawVar,
    base_dir: &Path,
    how: Resolve<'_>,
) -> Result<Option<Var>, String> {
    let table = match raw {
        RawVar::Literal(value) => {
            return Ok(Some(Var {
                value: matches!(how, Resolve::Values(_)).then(|| value.clone()),
                secret: false,
                optional: false,
                source: VarSource::Literal,
            }));
        }
        RawVar::Table(t) => t,
    };
    let (source, default_secret) = match (&table.value, &table.env, &table.file) {
        (Some(_), None, None) => (VarSource::Literal, false),
        (None, Some(env), None) => (VarSource::Env(env.clone()), true),
        (None, None, Some(file)) => (VarSource::File(base_dir.join(file)), true),
        _ => {
            return Err(format!(
                "variable `{name}` needs exactly one of `value`, `env` or `file`"
            ));
        }
    };
    let var = |value| Var {
        value,
        secret: table.secret.unwrap_or(default_secret),
        optional: table.optional,
        source: source.clone(),
    };
    let read_env = match how {
        Resolve::Declared => return Ok(Some(var(None))),
        Resolve::Values(read_env) => read_env,
    };
    let value = match &source {
        VarSource::Literal => table.value.clone(),
        VarSource::Env(env) => read_env(env),
        VarSource::File(path) => read_file(name, path)?,
    };
    match value {
        Some(value) if value.len() > MAX_VAR_BYTES => Err(format!(
            "variable `{name}` ({source}) is {} bytes, more than the {MAX_VAR_BYTES} a variable may hold",
            value.len()
        )),
        Some(value) => Ok(Some(var(Some(value)))),
        None if table.optional => Ok(None),
        None => Err(absent_message(name, &source)),
    }
}

/// What is said of a required variable whose source is absent: which source, and that
/// `optional = true` allows it. Never a value: there is none.
fn absent_message(name: &str, source: &VarSource) -> String {
    let what = match source {
        VarSource::Env(env) => format!("the environment variable {env}, which is not set"),
        VarSource::File(path) => format!("the file {}, which does not exist", path.display()),
        // A literal always has its value.
        VarSource::Literal => "a literal without a value".to_string(),
    };
    format!("variable `{name}` reads {what} (add `optional = true` to allow that)")
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

    fn read_env(name: &str) -> Option<String> {
        (name == "SET").then(|| "from-env".to_string())
    }

    /// Resolution with values, from the fake environment above.
    fn env() -> Resolve<'static> {
        Resolve::Values(&read_env)
    }

    #[test]
    fn sources_resolve_and_secrets_default_by_source() {
        let dir = std::env::temp_dir().join(format!("wasmgate-vars-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "s3cret\r\n").unwrap();
        let lit = resolve("a", &RawVar::Literal("x".into()), &dir, env())
            .unwrap()
            .unwrap();
        assert_eq!((lit.value.as_deref().unwrap(), lit.secret), ("x", false));
        let e = resolve("b", &table(None, Some("SET"), None), &dir, env())
            .unwrap()
            .unwrap();
        assert_eq!((e.value.as_deref().unwrap(), e.secret), ("from-env", true));
        let f = resolve("c", &table(None, None, Some("token")), &dir, env())
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.value.as_deref().unwrap(), f.secret),
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
        let err = resolve("b", &table(None, Some("UNSET"), None), &dir, env()).unwrap_err();
        assert!(
            err.contains("UNSET") && err.contains("optional = true"),
            "{err}"
        );
        let missing = table(None, None, Some("no/such/file"));
        let err = resolve("c", &missing, &dir, env()).unwrap_err();
        assert_eq!(
            err,
            format!(
                "variable `c` reads the file {}, which does not exist (add `optional = true` to allow that)",
                dir.join("no/such/file").display()
            )
        );
        let RawVar::Table(mut t) = table(None, Some("UNSET"), None) else {
            unreachable!()
        };
        t.optional = true;
        assert!(
            resolve("b", &RawVar::Table(t), &dir, env())
                .unwrap()
                .is_none()
        );
        let both = table(Some("v"), Some("SET"), None);
        assert!(
            resolve("d", &both, &dir, env())
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
        assert!(resolve("ok", &table(None, None, Some("ok")), &dir, env()).is_ok());
        let err = resolve("big", &table(None, None, Some("big")), &dir, env()).unwrap_err();
        assert!(err.contains("65537 bytes") && !err.contains("xxx"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn declared_reads_no_source_and_knows_which_are_absent_here() {
        let dir = std::env::temp_dir().join(format!("wasmgate-vars-decl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("present"), "s3cret-on-disk").unwrap();
        let unset = "WASMGATE_TEST_SURELY_UNSET_VARIABLE";
        let mut optional = table(None, None, Some("gone"));
        if let RawVar::Table(t) = &mut optional {
            t.optional = true;
        }
        let entries = [
            ("env", table(None, Some(unset), None)),
            ("file", table(None, None, Some("gone"))),
            ("here", table(None, None, Some("present"))),
            ("maybe", optional),
            ("lit", RawVar::Literal("x".into())),
        ];
        let vars = collect(entries.iter().map(|(n, raw)| {
            let var = resolve(n, raw, &dir, Resolve::Declared).unwrap().unwrap();
            (n.to_string(), var)
        }));
        assert_eq!(
            vars.len(),
            5,
            "an absent source is no error, optional or not"
        );
        assert_eq!(vars.get("here"), None, "no value is read");
        assert_eq!(vars.get("lit"), None, "not even a literal's");
        assert!(!format!("{vars:?}").contains("s3cret"));
        let absent: Vec<(&str, String)> = vars
            .absent_here()
            .into_iter()
            .map(|(n, s)| (n, s.to_string()))
            .collect();
        assert_eq!(
            absent,
            [
                ("env", format!("env {unset}")),
                ("file", format!("file {}", dir.join("gone").display()))
            ],
            "required and absent only"
        );
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
