//! Stores, grants and variables applied by a reload (issue 21, items 3 and 6): a server started
//! from a config file on disk through the shipped start path, reloaded the way SIGHUP reloads it
//! (`Running::reload`), and judged by what its routes answer, its `/metrics` and the reload's
//! report and log line.
//!
//! The kv plugin is `tests/guests/kv_incr_v2.wat`: each request adds 1 to a counter in the store
//! `snippets` and answers the new count, so an answer shows both that the store is bound and that
//! its data survived.

use anyhow::{Context as _, ensure};

use crate::support::{Site, TestServer, current_version, logs, logs_contain, versioned_guest};

/// `wasmgate_kv_store_up` of the store `snippets`.
const SNIPPETS_UP: &str = r#"wasmgate_kv_store_up{store="snippets"}"#;

/// Plugin `v` (v.wat) on `GET /v`, then `extra`. Not watched: each test reloads when it means to.
fn config(extra: &str) -> String {
    format!(
        "[plugins.v]\nwasm = \"v.wat\"\n[[routes]]\nmethod = \"GET\"\npath = \"/v\"\nplugin = \"v\"\n{extra}"
    )
}

/// `[stores.snippets]` in the SQLite file `path` (relative to the site), and plugin `k`
/// (kv.wat) granted it on `GET /k`.
fn with_store(path: &str) -> String {
    format!(
        "[stores.snippets]\npath = {path:?}\n[plugins.k]\nwasm = \"kv.wat\"\nkv = [\"snippets\"]\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/k\"\nplugin = \"k\"\n"
    )
}

/// A site with `v.wat` (version 1) and `kv.wat`, serving `config(extra)`.
fn start(name: &str, extra: &str) -> anyhow::Result<(Site, TestServer)> {
    let site = Site::new(name)?;
    site.replace("v.wat", versioned_guest(1))?;
    site.copy_guest("kv_incr_v2", "kv.wat")?;
    site.replace("wasmgate.toml", config(extra))?;
    // `start` returns once the first load is done.
    let server = site.start()?;
    Ok((site, server))
}

/// `GET /k`'s count (the store's counter after this request), or its failure.
fn count(server: &TestServer) -> anyhow::Result<i64> {
    let answer = server.get("/k")?;
    ensure!(
        answer.status == 200,
        "GET /k: {} {:?}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    let bytes: [u8; 8] = answer.body[..].try_into().context("an 8-byte count")?;
    Ok(i64::from_le_bytes(bytes))
}

/// The issue's case: a running server, then `[stores.snippets]` and a plugin granted it added to
/// its config. The reload opens the store and binds the plugin: it answers 200 and counts, with
/// no "next restart" warning; unchanged reloads keep the store and its data; removing the store
/// with its plugin takes its up gauge off `/metrics`.
#[test]
fn a_store_added_by_a_reload_serves_the_plugin_granted_it() -> anyhow::Result<()> {
    let (site, server) = start("reload-store-added", "")?;
    ensure!(server.get("/k")?.status == 404, "no /k yet");
    ensure!(!server.metrics().contains(SNIPPETS_UP));

    site.replace("wasmgate.toml", config(&with_store("snippets.sqlite")))?;
    let report = server.reload()?;
    ensure!(report.stores_opened == ["snippets"], "{report:?}");
    ensure!(
        report.loaded == ["k"] && report.refused.is_empty(),
        "{report:?}"
    );
    ensure!(count(&server)? == 1);
    ensure!(count(&server)? == 2);
    ensure!(
        site.path("snippets.sqlite").exists(),
        "the file the config names"
    );
    ensure!(server.metric(SNIPPETS_UP) == 1.0, "{}", server.metrics());
    ensure!(
        logs_contain(&["reload done; stores opened: snippets"]),
        "{}",
        logs()
    );
    // No section of this config needs a restart any more; no test of this binary changes a
    // restart-only section with `section="stores"` or `"outbound"` either.
    ensure!(
        !logs().lines().any(|l| l.contains("next restart")
            && (l.contains(r#"section="stores""#) || l.contains(r#"section="outbound""#))),
        "{}",
        logs()
    );

    // Unchanged: same store, same data.
    let report = server.reload()?;
    ensure!(report.stores_opened.is_empty(), "{report:?}");
    ensure!(count(&server)? == 3, "the data survived the reload");

    // Removed with its plugin: the route goes, and so does the store's gauge.
    site.replace("wasmgate.toml", config(""))?;
    let report = server.reload()?;
    ensure!(report.stores_closed == ["snippets"], "{report:?}");
    ensure!(server.get("/k")?.status == 404);
    ensure!(
        !server.metrics().contains(SNIPPETS_UP),
        "{}",
        server.metrics()
    );

    // And back: the same file, so the count goes on.
    site.replace("wasmgate.toml", config(&with_store("snippets.sqlite")))?;
    server.reload()?;
    ensure!(count(&server)? == 4, "the file kept the data");
    Ok(())
}

/// A store redefined to a path that cannot be opened (its directory is a file): the plugin
/// granted it is refused with the store's error and its running version keeps serving on the
/// store it had; the other plugins reload.
#[test]
fn a_store_that_cannot_be_opened_refuses_only_the_plugins_granted_it() -> anyhow::Result<()> {
    let (site, server) = start("reload-store-unopenable", &with_store("snippets.sqlite"))?;
    ensure!(count(&server)? == 1);
    site.replace("not-a-dir", "")?;
    site.replace("v.wat", versioned_guest(2))?;
    site.replace(
        "wasmgate.toml",
        config(&with_store("not-a-dir/snippets.sqlite")),
    )?;
    let report = server.reload()?;
    ensure!(report.loaded == ["v"], "the others reload: {report:?}");
    let [refused] = &report.refused[..] else {
        anyhow::bail!("k refused: {report:?}")
    };
    ensure!(
        refused.plugin == "k" && refused.kind == "grant",
        "{refused:?}"
    );
    ensure!(
        refused.message.contains(
            "grant `kv = [\"snippets\"]` cannot be honoured: store `snippets` cannot be opened"
        ),
        "{}",
        refused.message
    );
    ensure!(
        refused.message.contains("not-a-dir"),
        "the store's error: {}",
        refused.message
    );
    ensure!(current_version(server.addr())? == 2);
    ensure!(
        count(&server)? == 2,
        "the running version serves, on its store"
    );
    ensure!(
        server
            .metrics()
            .contains(r#"wasmgate_plugin_last_error_info{plugin="k",kind="grant""#),
        "{}",
        server.metrics()
    );
    ensure!(
        server.metric(SNIPPETS_UP) == 1.0,
        "the served store's state"
    );

    // Fixed: a new file, a fresh count.
    site.replace("wasmgate.toml", config(&with_store("other.sqlite")))?;
    let report = server.reload()?;
    ensure!(
        report.refused.is_empty() && report.stores_opened == ["snippets"],
        "{report:?}"
    );
    ensure!(count(&server)? == 1, "bound to the new file");
    Ok(())
}

/// A store removed while a plugin is still granted it: the config is refused whole (no plugin is
/// ever loaded with a dangling grant), and everything keeps serving as it was.
#[test]
fn a_store_removed_while_granted_is_refused() -> anyhow::Result<()> {
    let (site, server) = start("reload-store-removed", &with_store("snippets.sqlite"))?;
    ensure!(count(&server)? == 1);
    let granted_only = "[plugins.k]\nwasm = \"kv.wat\"\nkv = [\"snippets\"]\n\
                        [[routes]]\nmethod = \"GET\"\npath = \"/k\"\nplugin = \"k\"\n";
    site.replace("wasmgate.toml", config(granted_only))?;
    let err = server.reload().expect_err("refused");
    let message = err.to_string();
    ensure!(
        message
            .contains("plugin `k` is granted store `snippets`, which no [stores.*] table defines"),
        "{message}"
    );
    ensure!(count(&server)? == 2, "still bound, still counting");
    ensure!(server.metric(SNIPPETS_UP) == 1.0);
    Ok(())
}

/// A reload whose only change is a variable's value (here a secret file's content: the config
/// itself is unchanged) says so in its report and log line, and the plugin answers the new value.
#[test]
fn a_reload_that_changes_only_a_variable_says_so_and_applies_it() -> anyhow::Result<()> {
    let greet = "[plugins.greeter]\nwasm = \"greet.wat\"\n[plugins.greeter.vars]\n\
                 greeting = { file = \"greeting.txt\" }\n\
                 [[routes]]\nmethod = \"GET\"\npath = \"/g\"\nplugin = \"greeter\"\n";
    let site = Site::new("reload-vars")?;
    site.replace("v.wat", versioned_guest(1))?;
    site.copy_guest("greet_v2", "greet.wat")?;
    site.replace("greeting.txt", "hello\n")?;
    site.replace("wasmgate.toml", config(greet))?;
    let server = site.start()?;
    ensure!(server.get("/g")?.body == b"hello");

    site.replace("greeting.txt", "bonjour\n")?;
    let report = server.reload()?;
    ensure!(report.vars_changed == ["greeter"], "{report:?}");
    ensure!(report.loaded.is_empty(), "nothing recompiled: {report:?}");
    ensure!(server.get("/g")?.body == b"bonjour");
    ensure!(
        logs_contain(&["reload done; variables changed for greeter"]),
        "{}",
        logs()
    );
    // The line names the plugin, never the value.
    ensure!(!logs().contains("bonjour"), "a secret in the log");

    let report = server.reload()?;
    ensure!(
        report.vars_changed.is_empty(),
        "nothing changed: {report:?}"
    );
    Ok(())
}
