//! ABI v2 through the shipped path: v1 and v2 guests side by side, the request metadata a v2
//! guest is given (peer, client behind trusted proxies, route pattern, request id), host imports
//! refused at load unless granted, a secret rotated by SIGHUP, the C plugin built with its own
//! build command, and the Rust router of the `whoami` sample.
//!
//! What a guest was given is read from the mirror guests (`tests/guests/mirror_v2.wat` and its
//! kin), which answer with the encoded request itself; the bytes are decoded here by hand, from
//! docs/ABI.md, not with the ABI crate, so the host is checked against the document.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};
use wasmgate_server::config::Config;

use crate::authoring::wasmgate;
use crate::support::{
    RawClient, Response, Site, TestServer, eventually, logs, metric, plugin_hash, repo_root,
    sample_plugins_built, scrape, try_eventually,
};

/// What a mirror guest was given.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    method: String,
    target: String,
    path: String,
    query: String,
    version: String,
    headers: Vec<(String, String)>,
    params: Vec<(String, String)>,
    body: String,
    /// The v2 tagged fields by tag; empty for a v1 request.
    fields: BTreeMap<u32, String>,
}

/// A cursor over an encoded request; every read is bounds-checked.
struct Bytes<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn u32(&mut self, what: &str) -> anyhow::Result<u32> {
        let end = self.at + 4;
        let bytes = self
            .buf
            .get(self.at..end)
            .with_context(|| format!("{what}: a u32 at offset {} is cut short", self.at))?;
        self.at = end;
        Ok(u32::from_le_bytes(bytes.try_into()?))
    }

    fn str(&mut self, what: &str) -> anyhow::Result<String> {
        let len = self.u32(what)? as usize;
        let bytes = self
            .buf
            .get(self.at..self.at + len)
            .with_context(|| format!("{what}: {len} bytes at offset {} are cut short", self.at))?;
        self.at += len;
        String::from_utf8(bytes.to_vec()).with_context(|| format!("{what} is not UTF-8"))
    }

    fn pairs(&mut self, what: &str) -> anyhow::Result<Vec<(String, String)>> {
        let count = self.u32(what)?;
        (0..count)
            .map(|_| Ok((self.str(what)?, self.str(what)?)))
            .collect()
    }
}

/// Decodes a request of ABI `version` (1 or 2) that must fill `buf` exactly.
fn decode(buf: &[u8], version: u32) -> anyhow::Result<Seen> {
    let mut b = Bytes { buf, at: 0 };
    let mut seen = Seen {
        method: b.str("method")?,
        target: b.str("target")?,
        path: b.str("path")?,
        query: b.str("query")?,
        version: b.str("version")?,
        headers: b.pairs("headers")?,
        params: b.pairs("params")?,
        body: b.str("body")?,
        fields: BTreeMap::new(),
    };
    if version == 2 {
        for _ in 0..b.u32("field_count")? {
            let tag = b.u32("tag")?;
            let value = b.str("field value")?;
            ensure!(
                seen.fields.insert(tag, value).is_none(),
                "tag {tag} sent twice"
            );
        }
    }
    ensure!(
        b.at == buf.len(),
        "{} bytes after a v{version} request of {}",
        buf.len() - b.at,
        b.at
    );
    Ok(seen)
}

const PEER_ADDR: u32 = 1;
const CLIENT_ADDR: u32 = 2;
const ROUTE: u32 = 3;
const REQUEST_ID: u32 = 4;

/// Sends `request` on a fresh connection: the response and this client's address (the peer the
/// server sees).
fn send(addr: SocketAddr, request: &str) -> anyhow::Result<(Response, SocketAddr)> {
    let mut client = RawClient::connect(addr)?;
    let local = client.local_addr()?;
    let resp = client.send(request.as_bytes())?.response()?;
    Ok((resp, local))
}

/// `GET target` with `extra` header lines, through a mirror guest: what it was given (a v2
/// request), and the peer address the server saw.
fn mirrored(addr: SocketAddr, target: &str, extra: &str) -> anyhow::Result<(Seen, SocketAddr)> {
    let (resp, local) = send(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n"),
    )?;
    ensure!(
        resp.status == 200,
        "{target}: {} {}",
        resp.status,
        resp.text()
    );
    Ok((decode(&resp.body, 2)?, local))
}

/// A request id as the host writes it: 16 lowercase hex digits.
fn is_request_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `tests/guests/NAME.wat` with `from` replaced by `to` (which must occur exactly once).
fn guest_variant(name: &str, from: &str, to: &str) -> anyhow::Result<String> {
    let wat = std::fs::read_to_string(repo_root().join(format!("tests/guests/{name}.wat")))?;
    ensure!(
        wat.matches(from).count() == 1,
        "{name}.wat contains {from:?} exactly once"
    );
    Ok(wat.replace(from, to))
}

/// The `wasmgate_plugin_last_error_info` line of `plugin`, if it has one.
fn load_error(metrics: &str, plugin: &str) -> Option<String> {
    let prefix = format!("wasmgate_plugin_last_error_info{{plugin=\"{plugin}\",");
    metrics
        .lines()
        .find(|l| l.starts_with(&prefix))
        .map(str::to_string)
}

#[test]
fn v1_and_v2_guests_are_served_side_by_side_each_with_its_own_encoding() -> anyhow::Result<()> {
    let site = Site::new("abi-side-by-side")?;
    // The same mirror, declaring version 1: the host must send it the v1 layout and nothing more.
    let v1_mirror = guest_variant(
        "mirror_v2",
        "(func (export \"wasmgate_abi_version\") (result i32) (i32.const 2))",
        "(func (export \"wasmgate_abi_version\") (result i32) (i32.const 1))",
    )?;
    site.replace("mirror_v1.wat", v1_mirror)?;
    let mirror_v1 = site.path("mirror_v1.wat");
    let server = TestServer::start(&format!(
        r#"
[plugins.mirror1]
wasm = "{}"
[plugins.mirror2]
wasm = "tests/guests/mirror_v2.wat"
[plugins.echo]
wasm = "tests/guests/echo.wat"
[plugins.greet]
wasm = "tests/guests/greet_v2.wat"
[plugins.greet.vars]
greeting = "hi from a v2 host call"

[[routes]]
method = "*"
path = "/m1/:code"
plugin = "mirror1"
[[routes]]
method = "*"
path = "/m2/:code"
plugin = "mirror2"
[[routes]]
method = "*"
path = "/echo"
plugin = "echo"
[[routes]]
method = "GET"
path = "/greet"
plugin = "greet"
"#,
        mirror_v1.display()
    ))?;
    let addr = server.addr();
    let request = |prefix: &str| {
        format!(
            "POST /{prefix}/abc?x=1 HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\nContent-Length: 2\r\n\r\nhi"
        )
    };
    let expected = |prefix: &str, fields: BTreeMap<u32, String>| Seen {
        method: "POST".into(),
        target: format!("/{prefix}/abc?x=1"),
        path: format!("/{prefix}/abc"),
        query: "x=1".into(),
        version: "HTTP/1.1".into(),
        headers: vec![
            ("Host".into(), "x".into()),
            ("X-Test".into(), "yes".into()),
            ("Content-Length".into(), "2".into()),
        ],
        params: vec![("code".into(), "abc".into())],
        body: "hi".into(),
        fields,
    };

    // v1: exactly the v1 layout (decoding as v1 consumes every byte), no trailing fields.
    let (resp, _) = send(addr, &request("m1"))?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(decode(&resp.body, 1)?, expected("m1", BTreeMap::new()));
    let v1_id = resp.header("x-request-id").context("x-request-id")?;
    assert!(is_request_id(v1_id), "{v1_id}");

    // v2: the same v1 part, then exactly the four fields.
    let (resp, local) = send(addr, &request("m2"))?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let id = resp
        .header("x-request-id")
        .context("x-request-id")?
        .to_string();
    let fields = BTreeMap::from([
        (PEER_ADDR, local.to_string()),
        (CLIENT_ADDR, "127.0.0.1".to_string()),
        (ROUTE, "/m2/:code".to_string()),
        (REQUEST_ID, id.clone()),
    ]);
    assert_eq!(decode(&resp.body, 2)?, expected("m2", fields));
    assert_ne!(v1_id, id, "each request has its own id");

    // A v1 guest from tests/guests, and a v2 guest calling the host, on the same server.
    let resp = server
        .connect()?
        .send(b"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")?
        .response()?;
    assert_eq!(
        (resp.status, resp.header("x-method"), resp.text().as_str()),
        (200, Some("PUT"), "hello")
    );
    let resp = server.get("/greet")?;
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (200, "hi from a v2 host call")
    );
    for plugin in ["mirror1", "mirror2", "echo", "greet"] {
        let ok = format!(r#"wasmgate_plugin_calls_total{{plugin="{plugin}",outcome="ok"}}"#);
        assert_eq!(server.metric(&ok), 1.0, "{plugin}");
    }
    Ok(())
}

#[test]
fn a_host_import_is_refused_at_load_unless_granted_naming_the_grant_to_add() -> anyhow::Result<()> {
    let site = Site::new("abi-grants")?;
    site.copy_guest("greet_v2", "greet.wat")?;
    site.copy_guest("greet_v2", "granted.wat")?;
    site.replace(
        "unknown.wat",
        guest_variant(
            "greet_v2",
            r#"(import "wasmgate" "var_get""#,
            r#"(import "wasmgate" "secret_get""#,
        )?,
    )?;
    site.replace(
        "v1.wat",
        guest_variant(
            "greet_v2",
            "(func (export \"wasmgate_abi_version\") (result i32) (i32.const 2))",
            "(func (export \"wasmgate_abi_version\") (result i32) (i32.const 1))",
        )?,
    )?;
    let mut config = String::from("[server]\nwatch = true\nwatch_debounce = \"50ms\"\n");
    for plugin in ["greet", "granted", "unknown", "v1"] {
        config += &format!(
            "[plugins.{plugin}]\nwasm = \"{plugin}.wat\"\n[[routes]]\nmethod = \"GET\"\npath = \"/{plugin}\"\nplugin = \"{plugin}\"\n"
        );
    }
    // Every plugin but `greet` is granted variables, so each is refused for one reason only.
    for plugin in ["granted", "unknown", "v1"] {
        config += &format!("[plugins.{plugin}.vars]\ngreeting = \"hello\"\n");
    }
    site.replace("wasmgate.toml", &config)?;
    let server = site.start()?;

    let metrics = server.metrics();
    for (plugin, says) in [
        (
            "greet",
            "import `wasmgate.var_get` is not granted: add a `[plugins.greet.vars]` table",
        ),
        (
            "unknown",
            "import `wasmgate.secret_get` is not a wasmgate host function",
        ),
        (
            "v1",
            "import `wasmgate.var_get` needs ABI v2 (export `wasmgate_abi_version` returning 2)",
        ),
    ] {
        let resp = server.get(&format!("/{plugin}"))?;
        assert_eq!(resp.status, 503, "{plugin}: {}", resp.text());
        assert_eq!(resp.json()?["error"], "not_loaded", "{plugin}");
        let line = load_error(&metrics, plugin)
            .with_context(|| format!("no load error exported for {plugin}:\n{metrics}"))?;
        assert!(
            line.contains("kind=\"abi\"") && line.contains(says),
            "{plugin}: {line}"
        );
        assert!(
            plugin_hash(&metrics, plugin).is_none(),
            "{plugin} never loaded"
        );
    }
    let resp = server.get("/granted")?;
    assert_eq!((resp.status, resp.text().as_str()), (200, "hello"));
    assert!(load_error(&metrics, "granted").is_none(), "{metrics}");

    // `wasmgate check` with the same configuration says the same, and fails.
    let cfg = site.path("wasmgate.toml");
    let cfg = cfg.to_str().context("a UTF-8 path")?;
    let check = |module: &str| -> anyhow::Result<(i32, String, String)> {
        let path = site.path(module);
        wasmgate(
            &["check", "--config", cfg, path.to_str().context("UTF-8")?],
            site.dir(),
        )
    };
    let (code, _, err) = check("greet.wat")?;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "import `wasmgate.var_get` is not granted: add a `[plugins.greet.vars]` table"
        ),
        "{err}"
    );
    let (code, _, err) = check("unknown.wat")?;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("`wasmgate.secret_get`"), "{err}");
    let (code, out, err) = check("granted.wat")?;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("ABI version 2") && out.contains("wasmgate::var_get"),
        "{out}"
    );

    // Doing what the message says is enough: an empty table is the grant, and the plugin loads
    // (it answers 404: it has no variable `greeting`).
    site.replace("wasmgate.toml", format!("{config}[plugins.greet.vars]\n"))?;
    let loaded = try_eventually(Duration::from_secs(10), || {
        Ok(server.get("/greet")?.status == 404)
    })?;
    assert!(loaded, "greet loads once granted\n{}", server.metrics());
    let (code, _, err) = check("greet.wat")?;
    assert_eq!(code, 0, "{err}");
    Ok(())
}

/// `POST /auth` with `password` as the body: the status.
fn try_password(addr: SocketAddr, password: &str) -> anyhow::Result<u16> {
    let (resp, _) = send(
        addr,
        &format!(
            "POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{password}",
            password.len()
        ),
    )?;
    Ok(resp.status)
}

#[test]
fn a_secret_rotated_by_sighup_is_seen_by_the_next_request_and_shown_nowhere() -> anyhow::Result<()>
{
    let site = Site::new("abi-secret")?;
    site.copy_guest("password_v2", "auth.wat")?;
    let unique = format!("{}-{:?}", std::process::id(), std::time::SystemTime::now());
    let old = format!("old-s3cret-{unique}");
    let new = format!("new-s3cret-{unique}");
    let old = old.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "");
    let new = new.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "");
    site.replace("secret", format!("{old}\n"))?;
    site.replace(
        "wasmgate.toml",
        format!(
            "[plugins.auth]\nwasm = \"auth.wat\"\n[plugins.auth.vars]\npassword = {{ file = \"{}\", secret = true }}\n\
             [[routes]]\nmethod = \"POST\"\npath = \"/auth\"\nplugin = \"auth\"\n",
            site.path("secret").display()
        ),
    )?;
    let server = site.serve()?;
    let addr = server.addr();
    assert_eq!(try_password(addr, &old)?, 200, "the secret opens the route");
    assert_eq!(try_password(addr, &new)?, 403);
    assert_eq!(try_password(addr, "")?, 403);

    // `wasmgate check` of the configured plugin does not show the value either.
    let cfg = site.path("wasmgate.toml");
    let module = site.path("auth.wat");
    let (code, out, err) = wasmgate(
        &[
            "check",
            "--config",
            cfg.to_str().context("UTF-8")?,
            module.to_str().context("UTF-8")?,
        ],
        site.dir(),
    )?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("wasmgate::var_get"), "{out}");
    assert!(!out.contains(&old) && !err.contains(&old), "{out}\n{err}");

    // Rotate: write the file, send SIGHUP; the next requests see the new value.
    site.replace("secret", format!("{new}\n"))?;
    server.signal(libc::SIGHUP)?;
    let rotated = try_eventually(Duration::from_secs(10), || {
        Ok(try_password(addr, &new)? == 200)
    })?;
    assert!(rotated, "the new secret opens the route after SIGHUP");
    assert_eq!(try_password(addr, &old)?, 403, "the old one no longer does");
    let reloads = |result: &str| -> anyhow::Result<f64> {
        metric(
            &scrape(addr)?,
            &format!("wasmgate_config_reloads_total{{result=\"{result}\"}}"),
        )
        .context("wasmgate_config_reloads_total is exported")
    };
    assert_eq!(reloads("ok")?, 1.0);

    // The secret file vanishes: that reload is refused whole and the value in force stays.
    std::fs::remove_file(site.path("secret"))?;
    server.signal(libc::SIGHUP)?;
    let refused = try_eventually(Duration::from_secs(10), || Ok(reloads("refused")? == 1.0))?;
    assert!(refused, "the reload without the secret is refused");
    assert_eq!(try_password(addr, &new)?, 200, "the running value stays");
    assert_eq!(try_password(addr, &old)?, 403);

    let metrics = scrape(addr)?;
    assert!(
        metrics.contains("wasmgate_plugin_calls_total{plugin=\"auth\""),
        "the scrape covers the plugin"
    );
    for secret in [&old, &new] {
        assert!(!metrics.contains(secret.as_str()), "a secret in /metrics");
    }
    server.signal(libc::SIGTERM)?;
    let exited = server.wait(Duration::from_secs(10))?;
    assert_eq!(exited.code, Some(0), "{}", exited.stderr);
    let log = &exited.stderr;
    assert!(
        log.contains("config reload refused") && log.contains("`password`"),
        "the refused reload is logged, naming the variable:\n{log}"
    );
    for secret in [&old, &new] {
        assert!(
            !log.contains(secret.as_str()),
            "a secret in the log:\n{log}"
        );
    }
    Ok(())
}

/// A server with the mirror on `GET /who` and `server` settings `settings`.
fn mirror_server(settings: &str) -> anyhow::Result<TestServer> {
    TestServer::start(&format!(
        "[server]\n{settings}\n[plugins.mirror]\nwasm = \"tests/guests/mirror_v2.wat\"\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/who\"\nplugin = \"mirror\"\n"
    ))
}

#[test]
fn trusted_proxies_are_believed_and_anyone_else_cannot_spoof_the_client() -> anyhow::Result<()> {
    let client = |server: &TestServer, extra: &str| -> anyhow::Result<String> {
        let (seen, local) = mirrored(server.addr(), "/who", extra)?;
        assert_eq!(seen.fields.get(&PEER_ADDR), Some(&local.to_string()));
        seen.fields
            .get(&CLIENT_ADDR)
            .cloned()
            .context("no client_addr field")
    };

    // The peer (127.0.0.1) is a trusted proxy: the client is the first untrusted hop from the
    // right, `Forwarded` first, else `X-Forwarded-For`.
    let trusted = mirror_server(r#"trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]"#)?;
    assert_eq!(client(&trusted, "")?, "127.0.0.1", "no header: the peer");
    assert_eq!(
        client(&trusted, "X-Forwarded-For: 203.0.113.7, 10.1.2.3\r\n")?,
        "203.0.113.7",
        "a trusted hop is skipped"
    );
    assert_eq!(
        client(
            &trusted,
            "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-For: 198.51.100.4\r\n"
        )?,
        "198.51.100.4",
        "repeated fields are one list; the untrusted hop nearest to us wins"
    );
    assert_eq!(
        client(
            &trusted,
            "Forwarded: for=198.51.100.9;proto=https\r\nX-Forwarded-For: 203.0.113.7\r\n"
        )?,
        "198.51.100.9",
        "Forwarded is preferred"
    );
    assert_eq!(
        client(&trusted, "Forwarded: for=\"[2001:db8::1]:4711\"\r\n")?,
        "2001:db8::1"
    );

    // The peer is not trusted: whatever it claims, the client is the peer.
    let spoofed = "X-Forwarded-For: 203.0.113.7\r\nForwarded: for=198.51.100.9\r\n";
    let untrusted = mirror_server(r#"trusted_proxies = ["10.0.0.0/8", "127.0.0.2"]"#)?;
    assert_eq!(client(&untrusted, spoofed)?, "127.0.0.1");
    let none = mirror_server("")?;
    assert_eq!(
        client(&none, spoofed)?,
        "127.0.0.1",
        "no trusted proxies: nobody is believed"
    );
    Ok(())
}

/// The `request_id` of every captured log line of `plugin`'s guest output.
fn logged_request_ids(plugin: &str) -> Vec<String> {
    let plugin_field = format!("plugin=\"{plugin}\"");
    logs()
        .lines()
        .filter(|l| l.contains("logged_v2: answered one request") && l.contains(&plugin_field))
        .filter_map(|l| {
            let rest = &l[l.find("request_id=")? + "request_id=".len()..];
            Some(rest.split_whitespace().next()?.to_string())
        })
        .collect()
}

#[test]
fn the_route_pattern_and_the_request_id_reach_the_guest_its_log_line_and_the_client()
-> anyhow::Result<()> {
    let server = TestServer::start(
        r#"
[plugins.traced]
wasm = "tests/guests/logged_v2.wat"
[[routes]]
method = "GET"
path = "/r/exact"
plugin = "traced"
[[routes]]
method = "GET"
path = "/r/:id"
plugin = "traced"
[[routes]]
method = "GET"
path = "/files/*path"
plugin = "traced"
"#,
    )?;
    let mut ids = Vec::new();
    for (target, pattern) in [
        ("/r/exact", "/r/exact"),
        ("/r/42", "/r/:id"),
        ("/files/a/b.txt", "/files/*path"),
    ] {
        let (resp, _) = send(
            server.addr(),
            &format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n"),
        )?;
        assert_eq!(resp.status, 200, "{target}: {}", resp.text());
        let seen = decode(&resp.body, 2)?;
        assert_eq!(
            seen.fields.get(&ROUTE).map(String::as_str),
            Some(pattern),
            "{target}"
        );
        let id = seen.fields.get(&REQUEST_ID).context("no request_id")?;
        assert!(is_request_id(id), "{id}");
        assert_eq!(resp.header("x-request-id"), Some(id.as_str()), "{target}");
        ids.push(id.clone());
    }
    // One log line per request (the guest's stdout), each carrying its request's id.
    let logged = eventually(Duration::from_secs(2), || {
        logged_request_ids("traced").len() >= ids.len()
    });
    assert!(logged, "the guest's lines are logged:\n{}", logs());
    let mut logged = logged_request_ids("traced");
    logged.sort();
    ids.sort();
    assert_eq!(
        logged, ids,
        "the log lines carry the ids the guest and client saw"
    );

    // `request_id_header = ""`: no header, but the guest and the log still have the id.
    let quiet = TestServer::start(
        "[server]\nrequest_id_header = \"\"\n[plugins.quiet]\nwasm = \"tests/guests/logged_v2.wat\"\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/q\"\nplugin = \"quiet\"\n",
    )?;
    let resp = quiet.get("/q")?;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-request-id"), None, "{:?}", resp.headers);
    let seen = decode(&resp.body, 2)?;
    let id = seen.fields.get(&REQUEST_ID).context("no request_id")?;
    assert!(is_request_id(id), "{id}");
    let logged = eventually(Duration::from_secs(2), || {
        logged_request_ids("quiet") == [id.clone()]
    });
    assert!(logged, "the log line has the id:\n{}", logs());
    Ok(())
}

/// The `toml` block of the "Configuration" section of plugins/hello-c/README.md.
fn hello_c_readme_config() -> anyhow::Result<String> {
    let readme = std::fs::read_to_string(repo_root().join("plugins/hello-c/README.md"))?;
    let section = readme
        .split_once("## Configuration")
        .context("the README's Configuration section")?
        .1;
    let block = section
        .split_once("```toml\n")
        .context("a toml block in the Configuration section")?
        .1;
    Ok(block
        .split_once("```")
        .context("the end of the toml block")?
        .0
        .to_string())
}

#[test]
fn the_c_plugin_builds_with_its_command_and_serves_its_variable_and_metadata() -> anyhow::Result<()>
{
    let toml = hello_c_readme_config()?;
    // Its build command, run the way `wasmgate build` runs it (from the config's directory: the
    // repository root, where the README's relative paths point).
    let config = Config::parse(&toml, Path::new("plugins/hello-c/README.md"), &repo_root())?;
    let commands: Vec<(String, String)> = config
        .plugins
        .iter()
        .filter_map(|p| Some((p.name.clone(), p.build.clone()?)))
        .collect();
    ensure!(
        commands.len() == 1 && commands[0].1.contains("clang"),
        "the README configures one clang build command: {commands:?}"
    );
    wasmgate::builder::run_build_commands(&config.base_dir, &commands)
        .context("the C toolchain (test.sh installs it)")?;

    let server = TestServer::start(&toml)?;
    let (resp, _) = send(
        server.addr(),
        "GET /c/hello/ada HTTP/1.1\r\nHost: x\r\n\r\n",
    )?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let id = resp.header("x-request-id").context("x-request-id")?;
    assert_eq!(
        resp.json()?,
        json!({"message": "Hello, ada!", "client": "127.0.0.1", "route": "/c/hello/:name", "id": id})
    );

    // The greeting is the variable (not the plugin's built-in default, also "Hello").
    let servus = toml.replace("greeting = \"Hello\"", "greeting = \"Servus\"");
    ensure!(servus != toml, "the README sets `greeting = \"Hello\"`");
    let server = TestServer::start(&servus)?;
    let resp = server.get("/c/hello/J%C3%BCrgen")?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()?["message"], "Servus, Jürgen!");

    // Without the vars table, the module's `var_get` import is not granted.
    let ungranted = toml.replace("[plugins.hello-c.vars]", "");
    let server = TestServer::start(&ungranted.replace("greeting = \"Hello\"", ""))?;
    assert_eq!(server.get("/c/hello/ada")?.status, 503);
    let line = load_error(&server.metrics(), "hello-c").context("hello-c's load error")?;
    assert!(
        line.contains("add a `[plugins.hello-c.vars]` table"),
        "{line}"
    );

    // It imports exactly what its README says.
    let site = Site::new("abi-c-check")?;
    let wasm = repo_root().join("plugins/target/c/hello-c.wasm");
    site.replace(
        "wasmgate.toml",
        toml.replace(
            "wasm = \"plugins/target/c/hello-c.wasm\"",
            &format!("wasm = \"{}\"", wasm.display()),
        ),
    )?;
    let cfg = site.path("wasmgate.toml");
    let (code, out, err) = wasmgate(
        &[
            "check",
            "--config",
            cfg.to_str().context("UTF-8")?,
            wasm.to_str().context("UTF-8")?,
        ],
        site.dir(),
    )?;
    assert_eq!(code, 0, "{err}");
    let mut imports: Vec<&str> = out
        .split_once("imports:\n")
        .context("an imports list")?
        .1
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    imports.sort_unstable();
    assert_eq!(
        imports,
        ["wasi_snapshot_preview1::fd_write", "wasmgate::var_get"],
        "{out}"
    );
    Ok(())
}

/// The repository's `wasmgate.toml` with `from` replaced by `to` (which must be there), served.
fn default_config_with(from: &str, to: &str) -> anyhow::Result<TestServer> {
    let text = std::fs::read_to_string(repo_root().join("wasmgate.toml"))?;
    if !text.contains(from) {
        bail!("wasmgate.toml no longer contains {from:?}");
    }
    TestServer::start(&text.replacen(from, to, 1))
}

#[test]
fn whoami_routes_three_patterns_with_the_sdk_router() -> anyhow::Result<()> {
    sample_plugins_built();
    const VARS: &str = "[plugins.whoami.vars]\ngreeting = \"Hello\"\n";
    let json_of = |server: &TestServer, target: &str| -> anyhow::Result<(u16, Value)> {
        let resp = server.get(target)?;
        Ok((resp.status, resp.json()?))
    };

    let server = default_config_with(VARS, VARS)?;
    let (resp, local) = send(
        server.addr(),
        "GET /whoami HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n",
    )?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let id = resp.header("x-request-id").context("x-request-id")?;
    assert_eq!(
        resp.json()?,
        json!({"client": "127.0.0.1", "peer": local.to_string(), "route": "/whoami", "id": id})
    );
    assert_eq!(
        json_of(&server, "/whoami/greeting")?,
        (200, json!({"greeting": "Hello"}))
    );
    assert_eq!(
        json_of(&server, "/whoami/J%C3%BCrgen")?,
        (200, json!({"message": "Hello, Jürgen!"}))
    );
    let resp = crate::support::exchange(
        server.addr(),
        b"POST /whoami HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )?;
    assert_eq!(resp.status, 405, "{}", resp.text());

    // The variable unset (the table stays: it is the grant): 404 on its route, the default
    // greeting on the other.
    let server = default_config_with(VARS, "[plugins.whoami.vars]\n")?;
    let (status, body) = json_of(&server, "/whoami/greeting")?;
    assert_eq!(
        (status, &body["error"]),
        (404, &json!("not_found")),
        "{body}"
    );
    assert_eq!(
        json_of(&server, "/whoami/ada")?,
        (200, json!({"message": "Hello, ada!"}))
    );

    let server = default_config_with(VARS, "[plugins.whoami.vars]\ngreeting = \"Hi\"\n")?;
    assert_eq!(
        json_of(&server, "/whoami/greeting")?,
        (200, json!({"greeting": "Hi"}))
    );
    assert_eq!(
        json_of(&server, "/whoami/ada")?,
        (200, json!({"message": "Hi, ada!"}))
    );
    Ok(())
}
