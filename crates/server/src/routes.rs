//! The route table: patterns validated once when the table is built, matched synchronously per
//! request.
//!
//! Owns pattern syntax (`/exact`, `/:param`, one trailing `/*rest`), precedence (exact beats param
//! beats wildcard, segment by segment), method selection (HEAD is served by GET routes; a path that
//! exists with other methods is a 405 with `Allow`) and percent-decoding of captured params. It knows
//! nothing of sockets, plugins' code or responses: a match yields a [`Target`] and the server acts on
//! it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::config::{PluginConfig, PluginLimits, RouteConfig};

/// What answers a matched request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Answered by the host itself.
    Native(NativeRoute),
    /// Answered by a plugin's fresh instance, under these limits.
    Plugin {
        plugin: Arc<str>,
        limits: PluginLimits,
    },
}

/// The built-in routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeRoute {
    /// `GET /health`: liveness.
    Health,
    /// `GET /ready`: readiness (plugins loaded, not draining).
    Ready,
    /// `GET /metrics`: Prometheus exposition.
    Metrics,
    /// `OPTIONS *`: the server-wide OPTIONS request of RFC 9110 §9.3.7.
    ServerOptions,
}

/// The result of matching a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Match<'t> {
    Found {
        target: &'t Target,
        /// The pattern that matched: the `route` label of metrics (bounded cardinality).
        pattern: &'t str,
        /// Captured params, percent-decoded, in pattern order.
        params: Vec<(&'t str, String)>,
    },
    /// The path exists, but not for this method. `allow` is the value of the `Allow` header.
    MethodNotAllowed {
        allow: String,
    },
    NotFound,
}

/// Why a route cannot be added: a bad pattern or a clash with a route already in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    /// Index of the offending route in the list given to [`RouteTable::from_config`].
    pub index: usize,
    pub message: String,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RouteError {}

const PATTERN_SYNTAX: &str = "patterns are `/`-separated segments: literal text, `:name` for one \
     segment, or a final `*name` for the rest of the path (e.g. /hello/:name, /files/*path)";

/// A compiled route table.
#[derive(Debug, Default)]
pub struct RouteTable {
    root: Node,
    targets: Vec<Target>,
}

#[derive(Debug, Default)]
struct Node {
    exact: HashMap<Box<str>, Node>,
    param: Option<(Box<str>, Box<Node>)>,
    wildcard: Option<(Box<str>, Endpoint)>,
    endpoint: Option<Endpoint>,
}

/// The routes that end at one node: one pattern, several methods.
#[derive(Debug)]
struct Endpoint {
    pattern: Box<str>,
    /// `(method, index into targets, description for conflict messages)`; an empty method = any.
    methods: Vec<(Box<str>, usize, Box<str>)>,
}

impl Endpoint {
    fn new(pattern: &str) -> Self {
        Endpoint {
            pattern: pattern.into(),
            methods: Vec::new(),
        }
    }

    fn lookup(&self, method: &str) -> Option<usize> {
        let find = |m: &str| {
            self.methods
                .iter()
                .find(|(have, ..)| &**have == m)
                .map(|e| e.1)
        };
        find(method)
            .or_else(|| (method == "HEAD").then(|| find("GET")).flatten())
            .or_else(|| find(""))
    }

    fn allow(&self, into: &mut Vec<String>) {
        for (m, ..) in &self.methods {
            let list: &[&str] = match &**m {
                "" => &["*"],
                "GET" => &["GET", "HEAD"],
                other => &[other],
            };
            into.extend(list.iter().map(|s| s.to_string()));
        }
    }
}

enum Segment<'p> {
    Exact(&'p str),
    Param(&'p str),
    Wildcard(&'p str),
}

fn parse_pattern(pattern: &str) -> Result<Vec<Segment<'_>>, String> {
    let Some(rest) = pattern.strip_prefix('/') else {
        return Err(format!(
            "pattern `{pattern}` must start with `/`; {PATTERN_SYNTAX}"
        ));
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let mut out = Vec::with_capacity(parts.len());
    let mut names: Vec<&str> = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let seg = if let Some(name) = part.strip_prefix(':') {
            Segment::Param(name)
        } else if let Some(name) = part.strip_prefix('*') {
            if i + 1 != parts.len() {
                return Err(format!(
                    "in `{pattern}`, the wildcard `*{name}` must be the last segment"
                ));
            }
            Segment::Wildcard(name)
        } else if part.is_empty() {
            return Err(format!(
                "pattern `{pattern}` has an empty segment (a doubled or trailing `/`); {PATTERN_SYNTAX}"
            ));
        } else if let Some(bad) = part.chars().find(|&c| !is_literal_char(c)) {
            return Err(format!(
                "pattern `{pattern}` has `{bad}`, which a path segment cannot contain literally; {PATTERN_SYNTAX}"
            ));
        } else {
            Segment::Exact(part)
        };
        if let Segment::Param(name) | Segment::Wildcard(name) = seg {
            if !is_param_name(name) {
                return Err(format!(
                    "in `{pattern}`, `{name}` is not a valid parameter name: use letters, digits and `_`, starting with a letter or `_`"
                ));
            }
            if names.contains(&name) {
                return Err(format!(
                    "in `{pattern}`, the parameter name `{name}` is used twice"
                ));
            }
            names.push(name);
        }
        out.push(seg);
    }
    Ok(out)
}

fn is_literal_char(c: char) -> bool {
    // RFC 3986 pchar, minus `:` and `*` at a segment start (checked by the caller).
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@%".contains(c)
}

fn is_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl RouteTable {
    /// The native routes plus every configured route. `plugins` gives each route's limits.
    pub fn from_config(
        routes: &[RouteConfig],
        plugins: &[PluginConfig],
    ) -> Result<RouteTable, RouteError> {
        let mut table = RouteTable::with_native_routes();
        for (index, route) in routes.iter().enumerate() {
            let limits = plugins
                .iter()
                .find(|p| p.name == route.plugin)
                .map(|p| p.limits)
                .ok_or_else(|| RouteError {
                    index,
                    message: format!("no plugin named `{}`", route.plugin),
                })?;
            let target = Target::Plugin {
                plugin: route.plugin.as_str().into(),
                limits,
            };
            table
                .insert(&route.methods, &route.pattern, target)
                .map_err(|message| RouteError { index, message })?;
        }
        Ok(table)
    }

    /// A table with only the native routes: `/health`, `/ready`, `/metrics`.
    pub fn with_native_routes() -> RouteTable {
        let mut table = RouteTable::default();
        let get = ["GET".to_string()];
        for (path, route) in [
            ("/health", NativeRoute::Health),
            ("/ready", NativeRoute::Ready),
            ("/metrics", NativeRoute::Metrics),
        ] {
            table
                .insert(&get, path, Target::Native(route))
                .expect("the native routes are valid and distinct");
        }
        table
    }

    /// Adds `pattern` for `methods` (empty = any method). Errors say what clashes with what.
    pub fn insert(
        &mut self,
        methods: &[String],
        pattern: &str,
        target: Target,
    ) -> Result<(), String> {
        let segments = parse_pattern(pattern)?;
        let index = self.targets.len();
        let mut node = &mut self.root;
        let mut endpoint_slot = None;
        for (i, seg) in segments.iter().enumerate() {
            match *seg {
                Segment::Exact(lit) => node = node.exact.entry(lit.into()).or_default(),
                Segment::Param(name) => {
                    let (have, child) = node
                        .param
                        .get_or_insert_with(|| (name.into(), Box::default()));
                    if &**have != name {
                        return Err(format!(
                            "`{pattern}` names the parameter at segment {} `:{name}`, but another route names it `:{have}`; use one name",
                            i + 1
                        ));
                    }
                    node = child;
                }
                Segment::Wildcard(name) => {
                    let (have, ep) = node
                        .wildcard
                        .get_or_insert_with(|| (name.into(), Endpoint::new(pattern)));
                    if &**have != name {
                        return Err(format!(
                            "`{pattern}` names the wildcard `*{name}`, but another route names it `*{have}`; use one name"
                        ));
                    }
                    endpoint_slot = Some(ep);
                    break;
                }
            }
        }
        let endpoint = match endpoint_slot {
            Some(ep) => ep,
            None => node.endpoint.get_or_insert_with(|| Endpoint::new(pattern)),
        };
        let wanted: Vec<&str> = if methods.is_empty() {
            vec![""]
        } else {
            methods.iter().map(String::as_str).collect()
        };
        for m in &wanted {
            if let Some((_, _, desc)) = endpoint
                .methods
                .iter()
                .find(|(have, ..)| &**have == *m || have.is_empty() || m.is_empty())
            {
                let shown = if m.is_empty() { "*" } else { m };
                return Err(format!(
                    "route `{shown} {pattern}` conflicts with `{desc}`: both would answer the same requests"
                ));
            }
        }
        for m in wanted {
            let desc = format!("{} {pattern}", if m.is_empty() { "*" } else { m });
            endpoint.methods.push((m.into(), index, desc.into()));
        }
        self.targets.push(target);
        Ok(())
    }

    /// Matches a request. `path` is the raw (still percent-encoded) path of the request-target.
    pub fn matches<'t>(&'t self, method: &str, path: &str) -> Match<'t> {
        if path == "*" {
            static SERVER_OPTIONS: Target = Target::Native(NativeRoute::ServerOptions);
            // The parser only lets `*` through for OPTIONS; match on it anyway, not on trust.
            return match method {
                "OPTIONS" => Match::Found {
                    target: &SERVER_OPTIONS,
                    pattern: "*",
                    params: Vec::new(),
                },
                _ => Match::NotFound,
            };
        }
        let rest = path.strip_prefix('/').unwrap_or(path);
        let mut params = Vec::new();
        let mut allow = Vec::new();
        match self.root.find(rest, false, method, &mut params, &mut allow) {
            Some((index, pattern)) => {
                params.reverse();
                let params = params
                    .into_iter()
                    .map(|(name, raw)| (name, percent_decode(raw)))
                    .collect();
                Match::Found {
                    target: &self.targets[index],
                    pattern,
                    params,
                }
            }
            None if allow.is_empty() => Match::NotFound,
            None => {
                allow.sort();
                allow.dedup();
                Match::MethodNotAllowed {
                    allow: allow.join(", "),
                }
            }
        }
    }
}

impl Node {
    /// Depth-first in precedence order; `params` collects captures in reverse. Paths that match
    /// but lack the method add their methods to `allow`, and the search goes on: a less specific
    /// route that does serve the method still answers. `trailing` says `rest` is empty because the
    /// path ended in `/`: then only a wildcard matches (`/a/` is not `/a`).
    fn find<'t, 'p>(
        &'t self,
        rest: &'p str,
        trailing: bool,
        method: &str,
        params: &mut Vec<(&'t str, &'p str)>,
        allow: &mut Vec<String>,
    ) -> Option<(usize, &'t str)> {
        if !rest.is_empty() {
            let (seg, tail, slash) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i + 1..], true),
                None => (rest, "", false),
            };
            let trailing = slash && tail.is_empty();
            if let Some(child) = self.exact.get(seg)
                && let Some(found) = child.find(tail, trailing, method, params, allow)
            {
                return Some(found);
            }
            if let Some((name, child)) = &self.param
                && !seg.is_empty()
                && let Some(found) = child.find(tail, trailing, method, params, allow)
            {
                params.push((name, seg));
                return Some(found);
            }
        } else if !trailing && let Some(ep) = &self.endpoint {
            match ep.lookup(method) {
                Some(i) => return Some((i, &ep.pattern)),
                None => ep.allow(allow),
            }
        }
        if let Some((name, ep)) = &self.wildcard {
            match ep.lookup(method) {
                Some(i) => {
                    params.push((name, rest));
                    return Some((i, &ep.pattern));
                }
                None => ep.allow(allow),
            }
        }
        None
    }
}

/// Decodes `%XX` escapes; invalid escapes and non-UTF-8 results are kept as they came.
pub fn percent_decode(raw: &str) -> String {
    if !raw.contains('%') {
        return raw.to_string();
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(name: &str) -> Target {
        Target::Plugin {
            plugin: name.into(),
            limits: PluginLimits::default(),
        }
    }

    fn table(routes: &[(&str, &str, &str)]) -> RouteTable {
        let mut t = RouteTable::with_native_routes();
        for (m, p, name) in routes {
            let methods = if *m == "*" {
                vec![]
            } else {
                vec![m.to_string()]
            };
            t.insert(&methods, p, plugin(name)).unwrap();
        }
        t
    }

    fn found(t: &RouteTable, method: &str, path: &str) -> (String, Vec<(String, String)>) {
        match t.matches(method, path) {
            Match::Found {
                target: Target::Plugin { plugin, .. },
                params,
                ..
            } => (
                plugin.to_string(),
                params
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            ),
            Match::Found {
                target: Target::Native(n),
                ..
            } => (format!("{n:?}"), vec![]),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    #[test]
    fn exact_beats_param_beats_wildcard() {
        let t = table(&[
            ("GET", "/users/me", "exact"),
            ("GET", "/users/:id", "param"),
            ("GET", "/users/*rest", "wild"),
        ]);
        assert_eq!(found(&t, "GET", "/users/me").0, "exact");
        assert_eq!(
            found(&t, "GET", "/users/42"),
            ("param".into(), vec![("id".into(), "42".into())])
        );
        assert_eq!(
            found(&t, "GET", "/users/42/x").1,
            vec![("rest".to_string(), "42/x".to_string())]
        );
        assert_eq!(found(&t, "GET", "/users/").0, "wild");
    }

    #[test]
    fn backtracks_to_a_less_specific_route() {
        let t = table(&[("GET", "/a/b/c", "exact"), ("GET", "/a/:x/d", "param")]);
        assert_eq!(
            found(&t, "GET", "/a/b/d"),
            ("param".into(), vec![("x".into(), "b".into())])
        );
    }

    #[test]
    fn wildcard_matches_the_bare_prefix_and_deep_paths() {
        let t = table(&[("*", "/echo/*rest", "echo")]);
        assert_eq!(
            found(&t, "DELETE", "/echo").1,
            vec![("rest".to_string(), String::new())]
        );
        assert_eq!(
            found(&t, "GET", "/echo/a/b%20c").1,
            vec![("rest".to_string(), "a/b c".to_string())]
        );
        assert_eq!(t.matches("GET", "/echoes"), Match::NotFound);
    }

    #[test]
    fn params_are_percent_decoded_and_trailing_slash_is_distinct() {
        let t = table(&[("GET", "/hello/:name", "hello")]);
        assert_eq!(found(&t, "GET", "/hello/J%C3%B6rg").1[0].1, "Jörg");
        assert_eq!(found(&t, "GET", "/hello/100%").1[0].1, "100%");
        assert_eq!(t.matches("GET", "/hello/bob/"), Match::NotFound);
        assert_eq!(t.matches("GET", "/hello/"), Match::NotFound);
        assert_eq!(t.matches("GET", "/hello"), Match::NotFound);
    }

    #[test]
    fn head_uses_get_and_other_methods_get_405_with_allow() {
        let t = table(&[("GET", "/x", "get"), ("POST", "/x", "post")]);
        assert_eq!(found(&t, "HEAD", "/x").0, "get");
        assert_eq!(
            t.matches("PUT", "/x"),
            Match::MethodNotAllowed {
                allow: "GET, HEAD, POST".into()
            }
        );
        assert_eq!(
            t.matches("POST", "/health"),
            Match::MethodNotAllowed {
                allow: "GET, HEAD".into()
            }
        );
        assert_eq!(found(&t, "GET", "/health").0, "Health");
        assert_eq!(
            t.matches("get", "/x"),
            Match::MethodNotAllowed {
                allow: "GET, HEAD, POST".into()
            },
            "methods are case-sensitive"
        );
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        let mut t = RouteTable::default();
        for (pattern, needle) in [
            ("hello", "must start with `/`"),
            ("/a//b", "empty segment"),
            ("/a/", "empty segment"),
            ("/*rest/x", "must be the last segment"),
            ("/:1x", "not a valid parameter name"),
            ("/:", "not a valid parameter name"),
            ("/:a/:a", "used twice"),
            ("/a b", "cannot contain"),
            ("/a?b", "cannot contain"),
        ] {
            let err = t.insert(&[], pattern, plugin("p")).unwrap_err();
            assert!(err.contains(needle), "{pattern}: {err}");
        }
    }

    #[test]
    fn conflicts_are_refused() {
        let mut t = table(&[("GET", "/a/:id", "a"), ("*", "/any", "any")]);
        let get = vec!["GET".to_string()];
        assert!(
            t.insert(&get, "/a/:id", plugin("b"))
                .unwrap_err()
                .contains("conflicts with `GET /a/:id`")
        );
        assert!(
            t.insert(&get, "/a/:other", plugin("b"))
                .unwrap_err()
                .contains("use one name")
        );
        assert!(
            t.insert(&get, "/any", plugin("b"))
                .unwrap_err()
                .contains("conflicts with `* /any`")
        );
        assert!(
            t.insert(&[], "/a/:id", plugin("b"))
                .unwrap_err()
                .contains("conflicts")
        );
        assert!(
            t.insert(&get, "/health", plugin("b"))
                .unwrap_err()
                .contains("conflicts with `GET /health`")
        );
        t.insert(&["POST".to_string()], "/a/:id", plugin("b"))
            .unwrap();
    }

    #[test]
    fn a_thousand_routes_match_the_right_one() {
        let mut t = RouteTable::default();
        for i in 0..1000 {
            t.insert(
                &["GET".to_string()],
                &format!("/api/v{i}/items/:id"),
                plugin(&i.to_string()),
            )
            .ok();
        }
        assert_eq!(
            found(&t, "GET", "/api/v990/items/7"),
            ("990".into(), vec![("id".into(), "7".into())])
        );
    }
}
