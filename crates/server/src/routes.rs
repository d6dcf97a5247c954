//! The route table: patterns validated once when the table is built, matched synchronously per
//! request.
//!
//! Owns pattern syntax (`/exact`, `/:param`, one trailing `/*rest`), precedence (exact beats param
//! beats wildcard, segment by segment), method selection (HEAD is served by GET routes; a path that
//! exists with other methods is a 405 with `Allow`) and percent-decoding of captured params. It is
//! generic over what a route leads to (`T`): it knows nothing of configuration, plugins, sockets or
//! responses, so the configuration checks a table with `T = ()` and the server serves one whose
//! targets are its own.

use std::collections::HashMap;
use std::fmt;

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
pub enum Match<'t, T> {
    /// A route serves this path and method.
    Found {
        /// What the route leads to.
        target: &'t T,
        /// The pattern that matched: the `route` label of metrics (bounded cardinality).
        pattern: &'t str,
        /// Captured params in pattern order, percent-decoded to bytes (`%FF` is the byte 0xff,
        /// `%2F` a `/` inside one segment).
        params: Vec<(&'t str, Vec<u8>)>,
    },
    /// The path exists, but not for this method. `allow` is the value of the `Allow` header.
    MethodNotAllowed {
        /// The methods the path has, e.g. `GET, HEAD, POST`.
        allow: String,
    },
    /// No route has this path.
    NotFound,
}

/// Why a route cannot be added: a bad pattern or a clash with a route already in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// The pattern is not valid syntax (see the message for the rule it breaks).
    Pattern { pattern: String, problem: String },
    /// Two routes would answer the same requests.
    Conflict { route: String, existing: String },
    /// Two patterns name the same position differently (`/a/:id` and `/a/:key`).
    Naming {
        pattern: String,
        wanted: String,
        existing: String,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Pattern { problem, .. } => f.write_str(problem),
            // The same route twice: naming it twice would read as a riddle.
            RouteError::Conflict { route, existing } if route == existing => {
                if NATIVE_PATHS
                    .iter()
                    .any(|(p, _)| route == &format!("GET {p}"))
                {
                    write!(
                        f,
                        "route `{route}` is the server's own: choose another path"
                    )
                } else {
                    write!(f, "route `{route}` is defined twice")
                }
            }
            RouteError::Conflict { route, existing } => write!(
                f,
                "route `{route}` conflicts with `{existing}`: both would answer the same requests"
            ),
            RouteError::Naming {
                pattern,
                wanted,
                existing,
            } => write!(
                f,
                "`{pattern}` names a segment `{wanted}`, but another route names it `{existing}`; use one name"
            ),
        }
    }
}

impl std::error::Error for RouteError {}

/// The paths the server answers itself, for `GET`.
const NATIVE_PATHS: [(&str, NativeRoute); 3] = [
    ("/health", NativeRoute::Health),
    ("/ready", NativeRoute::Ready),
    ("/metrics", NativeRoute::Metrics),
];

const PATTERN_SYNTAX: &str = "patterns are `/`-separated segments: literal text, `:name` for one \
     segment, or a final `*name` for the rest of the path (e.g. /hello/:name, /files/*path)";

/// A compiled route table whose routes lead to `T`s.
#[derive(Debug)]
pub struct RouteTable<T> {
    root: Node,
    targets: Vec<T>,
    /// What `OPTIONS *` leads to, when the table has the native routes.
    server_options: Option<T>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable {
            root: Node::default(),
            targets: Vec::new(),
            server_options: None,
        }
    }
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

fn parse_pattern(pattern: &str) -> Result<Vec<Segment<'_>>, RouteError> {
    parse_segments(pattern).map_err(|problem| RouteError::Pattern {
        pattern: pattern.to_string(),
        problem,
    })
}

fn parse_segments(pattern: &str) -> Result<Vec<Segment<'_>>, String> {
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

impl<T> RouteTable<T> {
    /// A table with only the native routes (`GET /health`, `/ready`, `/metrics` and `OPTIONS *`),
    /// each leading to `native(route)`.
    pub fn with_native_routes(native: impl Fn(NativeRoute) -> T) -> RouteTable<T> {
        let mut table = RouteTable {
            server_options: Some(native(NativeRoute::ServerOptions)),
            ..RouteTable::default()
        };
        let get = ["GET".to_string()];
        for (path, route) in NATIVE_PATHS {
            table
                .insert(&get, path, native(route))
                .expect("the native routes are valid and distinct");
        }
        table
    }

    /// Adds `pattern` for `methods` (empty = any method). Errors say what clashes with what.
    pub fn insert(
        &mut self,
        methods: &[String],
        pattern: &str,
        target: T,
    ) -> Result<(), RouteError> {
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
                        return Err(RouteError::Naming {
                            pattern: pattern.to_string(),
                            wanted: format!(":{name} (segment {})", i + 1),
                            existing: format!(":{have}"),
                        });
                    }
                    node = child;
                }
                Segment::Wildcard(name) => {
                    let (have, ep) = node
                        .wildcard
                        .get_or_insert_with(|| (name.into(), Endpoint::new(pattern)));
                    if &**have != name {
                        return Err(RouteError::Naming {
                            pattern: pattern.to_string(),
                            wanted: format!("*{name}"),
                            existing: format!("*{have}"),
                        });
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
                return Err(RouteError::Conflict {
                    route: format!("{shown} {pattern}"),
                    existing: desc.to_string(),
                });
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
    pub fn matches<'t>(&'t self, method: &str, path: &str) -> Match<'t, T> {
        if path == "*" {
            // The parser only lets `*` through for OPTIONS; match on it anyway, not on trust.
            return match (method, &self.server_options) {
                ("OPTIONS", Some(target)) => Match::Found {
                    target,
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

/// Decodes `%XX` escapes into bytes (RFC 3986 §2.1), whatever bytes they make: `%FF` is 0xff,
/// `%25` a literal `%`, `%2F` a `/` that was inside a segment. A `%` not followed by two hex digits
/// is kept as it came.
pub fn percent_decode(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    if !bytes.contains(&b'%') {
        return bytes.to_vec();
    }
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Routes lead to the name of what answers: a plugin's, or a native route's `{:?}`.
    type Table = RouteTable<String>;

    fn plugin(name: &str) -> String {
        name.to_string()
    }

    fn table(routes: &[(&str, &str, &str)]) -> Table {
        let mut t = RouteTable::with_native_routes(|n| format!("{n:?}"));
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

    /// The target and the params (as text, lossily) of a match that must be found.
    fn found(t: &Table, method: &str, path: &str) -> (String, Vec<(String, String)>) {
        match t.matches(method, path) {
            Match::Found { target, params, .. } => (
                target.clone(),
                params
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(&v).into_owned()))
                    .collect(),
            ),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    /// The raw bytes of the first param of a match that must be found.
    fn param_bytes(t: &Table, path: &str) -> Vec<u8> {
        match t.matches("GET", path) {
            Match::Found { mut params, .. } => params.remove(0).1,
            other => panic!("{path}: {other:?}"),
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
        assert_eq!(found(&t, "GET", "/hello/%zz").1[0].1, "%zz");
        assert_eq!(t.matches("GET", "/hello/bob/"), Match::NotFound);
        assert_eq!(t.matches("GET", "/hello/"), Match::NotFound);
        assert_eq!(t.matches("GET", "/hello"), Match::NotFound);
    }

    /// Params are bytes, decoded whether or not the result is UTF-8 (docs/ABI.md,
    /// Clarifications 4): `%FF` is the byte 0xff, `%25FF` the text `%FF`, `%2F` a slash inside one
    /// segment, and a wildcard keeps encoded slashes decoded in its rest.
    #[test]
    fn params_decode_to_bytes_whatever_they_are() {
        let t = table(&[
            ("GET", "/hello/:name", "hello"),
            ("GET", "/f/*rest", "files"),
        ]);
        assert_eq!(param_bytes(&t, "/hello/%FF"), b"\xff");
        assert_eq!(param_bytes(&t, "/hello/%25FF"), b"%FF");
        assert_eq!(param_bytes(&t, "/hello/a%2Fb"), b"a/b");
        assert_eq!(param_bytes(&t, "/hello/%C3%28"), b"\xc3(");
        assert_eq!(param_bytes(&t, "/f/a%2Fb/c%20d/%FF"), b"a/b/c d/\xff");
        assert_eq!(param_bytes(&t, "/f/"), b"");
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
        let mut t = Table::default();
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
            assert!(
                matches!(err, RouteError::Pattern { .. }),
                "{pattern}: {err:?}"
            );
            assert!(err.to_string().contains(needle), "{pattern}: {err}");
        }
    }

    #[test]
    fn conflicts_are_refused() {
        let mut t = table(&[("GET", "/a/:id", "a"), ("*", "/any", "any")]);
        let get = vec!["GET".to_string()];
        assert_eq!(
            t.insert(&get, "/a/:id", plugin("b"))
                .unwrap_err()
                .to_string(),
            "route `GET /a/:id` is defined twice"
        );
        assert!(
            t.insert(&get, "/a/:other", plugin("b"))
                .unwrap_err()
                .to_string()
                .contains("use one name")
        );
        assert!(
            t.insert(&get, "/any", plugin("b"))
                .unwrap_err()
                .to_string()
                .contains("conflicts with `* /any`")
        );
        assert!(
            t.insert(&[], "/a/:id", plugin("b"))
                .unwrap_err()
                .to_string()
                .contains("conflicts")
        );
        assert_eq!(
            t.insert(&get, "/health", plugin("b"))
                .unwrap_err()
                .to_string(),
            "route `GET /health` is the server's own: choose another path"
        );
        assert!(
            t.insert(&[], "/health", plugin("b"))
                .unwrap_err()
                .to_string()
                .contains("conflicts with `GET /health`")
        );
        t.insert(&["POST".to_string()], "/a/:id", plugin("b"))
            .unwrap();
    }

    #[test]
    fn a_thousand_routes_match_the_right_one() {
        let mut t = Table::default();
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
