//! Key-value stores on SQLite, the default backend: two processes sharing one file see each
//! other's writes at once and count every click; acknowledged writes survive SIGTERM and SIGKILL
//! (`sync = "full"`); the repository's own `wasmgate.toml` serves `links` on its default store; a
//! required store whose file has malformed pages makes `/ready` say so.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use wasmgate_server::config::{Config, SqliteSync, StoreBackend};

use super::{
    Bounds, Client, counts_every_click_from_two_processes, ensure_links_reported_down,
    limit_creations, limits_creations_across_processes, reads_its_writes_across_processes,
    serve_links, sqlite_site, two_processes,
};
use crate::support::{
    Site, TestServer, eventually, exclusive_network, get, logs, repo_root, sample_plugins_built,
    try_eventually,
};

#[test]
fn a_link_created_on_one_process_is_read_at_once_on_another() -> anyhow::Result<()> {
    let site = sqlite_site("kv-sqlite-ryw", Bounds::Patient)?;
    let (a, b) = two_processes(&site)?;
    reads_its_writes_across_processes(&a, &b)
}

#[test]
fn two_processes_count_8000_concurrent_clicks_exactly() -> anyhow::Result<()> {
    let _calm = exclusive_network();
    let site = sqlite_site("kv-sqlite-clicks", Bounds::Patient)?;
    let (a, b) = two_processes(&site)?;
    counts_every_click_from_two_processes(&a, &b)
}

#[test]
fn two_processes_share_one_rate_limit_window_and_answer_429_with_retry_after() -> anyhow::Result<()>
{
    let site = sqlite_site("kv-sqlite-limit", Bounds::Patient)?;
    limit_creations(&site, 3)?;
    let (a, b) = two_processes(&site)?;
    limits_creations_across_processes(&a, &b)
}

/// A database with malformed pages answers `SELECT 1` (what the health check used to be): a
/// required store on one must make `/ready` answer 503, while `/health` stays 200.
#[test]
fn a_required_store_with_malformed_pages_makes_ready_503() -> anyhow::Result<()> {
    let site = Site::new("kv-sqlite-corrupt")?;
    serve_links(
        &site,
        "path = \"links.sqlite\"\nrequired = true",
        // What is examined is the health check, not how fast a loaded machine writes.
        Bounds::Patient,
    )?;
    let server = site.serve()?;
    let mut client = Client::new(server.addr());
    for i in 0..50 {
        client.create(&format!("https://example.org/page/{i}"), None)?;
    }
    drop(client);
    ensure!(get(server.addr(), "/ready")?.status == 200);
    server.signal(libc::SIGTERM)?;
    let exited = server.wait(Duration::from_secs(10))?;
    ensure!(exited.code == Some(0), "exit {:?}", exited.code);

    // The schema (page 1) intact, every other page garbage.
    let path = site.path("links.sqlite");
    let mut bytes = std::fs::read(&path)?;
    ensure!(bytes.len() > 4096, "{} bytes", bytes.len());
    for (i, b) in bytes[4096..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    std::fs::write(&path, bytes)?;

    // In process: a child is started only once ready, which this one must never be.
    let server = site.start()?;
    ensure_links_reported_down(server.addr(), "on a corrupt database")
}

/// A required store whose file takes no write (immutable: `chattr +i`, which stops root too) is
/// down, with one log line, and `/ready` says so; when the file is writable again, the next
/// health check brings it back, with one line. No line per check in between.
#[test]
fn a_required_store_on_a_read_only_file_logs_one_line_down_and_one_up() -> anyhow::Result<()> {
    let site = Site::new("kv-sqlite-readonly")?;
    let path = site.path("ro.sqlite");
    let toml = format!(
        "[stores.readonly-check]\npath = {}\nrequired = true\n",
        toml::Value::String(path.to_string_lossy().into_owned())
    );
    // The file exists, with its schema: a store once served from it (its first health check
    // writes, so it is there once the server is ready).
    let server = TestServer::start(&toml)?;
    let made = try_eventually(Duration::from_secs(10), || {
        Ok(get(server.addr(), "/ready")?.status == 200)
    })?;
    ensure!(made && path.exists(), "the store's file was not made");
    server.stop();
    let chattr = |flag: &str| -> anyhow::Result<()> {
        let status = std::process::Command::new("chattr")
            .arg(flag)
            .arg(&path)
            .status()
            .context("chattr (the test needs it: root ignores permissions)")?;
        ensure!(status.success(), "chattr {flag}: {status}");
        Ok(())
    };
    chattr("+i")?;
    let started = TestServer::start(&toml);
    let checked = started.and_then(|server| {
        let addr = server.addr();
        let unready = try_eventually(Duration::from_secs(10), || {
            Ok(get(addr, "/ready")?.status == 503)
        })?;
        ensure!(unready, "/ready still 200 on a read-only file");
        // A few more health checks (every 2 s) while it stays down: still one line.
        std::thread::sleep(Duration::from_secs(5));
        ensure!(get(addr, "/ready")?.status == 503);
        chattr("-i")?;
        let ready = try_eventually(Duration::from_secs(10), || {
            Ok(get(addr, "/ready")?.status == 200)
        })?;
        ensure!(ready, "/ready not 200 again with the file writable");
        Ok(server)
    });
    let _ = chattr("-i");
    let server = checked?;
    let lines = |message: &str| {
        logs()
            .lines()
            .filter(|l| l.contains(message) && l.contains("readonly-check"))
            .count()
    };
    ensure!(lines("store down") == 1, "{}", logs());
    ensure!(lines("store up again") == 1, "{}", logs());
    drop(server);
    Ok(())
}

#[test]
fn links_and_clicks_survive_sigterm_and_a_restart() -> anyhow::Result<()> {
    let site = sqlite_site("kv-sigterm", Bounds::Patient)?;
    let server = site.serve()?;
    let mut client = Client::new(server.addr());
    let mut expected = BTreeMap::new();
    for i in 0..10 {
        let url = format!("https://example.org/kept/{i}");
        let code = client.create(&url, None)?;
        for _ in 0..i {
            client.follow(&code, &url)?;
        }
        expected.insert(code, (url, i));
    }
    drop(client);
    server.signal(libc::SIGTERM)?;
    let exited = server.wait(Duration::from_secs(10))?;
    ensure!(
        exited.code == Some(0),
        "exit {:?}: {}",
        exited.code,
        exited.stderr
    );

    let server = site.serve()?;
    let mut client = Client::new(server.addr());
    for (code, want) in &expected {
        let seen = client.stats(code)?;
        ensure!(seen == *want, "{code}: {seen:?}, want {want:?}");
    }
    Ok(())
}

/// What the writers of [`kill_9_loses_no_acknowledged_write`] were told: the codes they got
/// a 201 for, and for each, the clicks they got a 302 for.
type Acknowledged = BTreeMap<String, (String, i64)>;

#[test]
fn kill_9_loses_no_acknowledged_write() -> anyhow::Result<()> {
    const WRITERS: usize = 4;
    const CLICKS_PER_LINK: usize = 5;
    let site = sqlite_site("kv-kill", Bounds::Patient)?;
    let server = site.serve()?;
    let addr = server.addr();
    let killed = AtomicBool::new(false);
    let writes = AtomicUsize::new(0);
    let acknowledged = Mutex::new(Acknowledged::new());

    // Each writer creates a link, clicks it a few times, and again, until the server dies under
    // it. A failure before the kill (an error status, a dropped connection) fails the test, as
    // does a server still alive after a minute (so that a failed kill cannot hang the test).
    let give_up = Instant::now() + Duration::from_secs(60);
    let writer = |w: usize| -> anyhow::Result<()> {
        let mut client = Client::new(addr);
        for n in 0.. {
            ensure!(Instant::now() < give_up, "the server was not killed");
            let url = format!("https://example.org/kill/{w}/{n}");
            let reply = match client.post_link(&url, None) {
                Ok(reply) => reply,
                Err(_) if killed.load(Ordering::SeqCst) => return Ok(()),
                Err(e) => return Err(e.context("before the kill")),
            };
            ensure!(reply.status == 201, "{reply:?}");
            let code = reply.json()?["code"].as_str().context("a code")?.to_owned();
            acknowledged
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(code.clone(), (url.clone(), 0));
            writes.fetch_add(1, Ordering::SeqCst);
            for _ in 0..CLICKS_PER_LINK {
                let reply = match client.get(&format!("/l/{code}")) {
                    Ok(reply) => reply,
                    Err(_) if killed.load(Ordering::SeqCst) => return Ok(()),
                    Err(e) => return Err(e.context("before the kill")),
                };
                ensure!(reply.status == 302, "{reply:?}");
                if let Some(entry) = acknowledged
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_mut(&code)
                {
                    entry.1 += 1;
                }
                writes.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(())
    };
    let stderr = std::thread::scope(|s| -> anyhow::Result<String> {
        let writers: Vec<_> = (0..WRITERS).map(|w| s.spawn(move || writer(w))).collect();
        let busy = eventually(Duration::from_secs(20), || {
            writes.load(Ordering::SeqCst) >= 300 || writers.iter().any(|w| w.is_finished())
        });
        killed.store(true, Ordering::SeqCst);
        server.signal(libc::SIGKILL)?;
        let exited = server.wait(Duration::from_secs(10))?;
        for w in writers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a writer panicked"))??;
        }
        ensure!(
            busy,
            "the writers made {} writes in 20 s",
            writes.load(Ordering::SeqCst)
        );
        ensure!(exited.code.is_none(), "killed by a signal: {exited:?}");
        Ok(exited.stderr)
    })?;

    let acknowledged = acknowledged.into_inner().unwrap_or_else(|e| e.into_inner());
    let server = site.serve()?;
    let mut client = Client::new(server.addr());
    for (code, (url, clicks)) in &acknowledged {
        let (seen_url, seen_clicks) = client.stats(code).with_context(|| {
            format!("an acknowledged link; the killed process logged:\n{stderr}")
        })?;
        ensure!(
            seen_url == *url && seen_clicks >= *clicks,
            "{code}: {seen_url} with {seen_clicks} clicks; acknowledged: {url} with {clicks}; \
             the killed process logged:\n{stderr}"
        );
    }
    println!(
        "kv: {} links and {} clicks acknowledged before SIGKILL, all found after the restart",
        acknowledged.len(),
        acknowledged.values().map(|(_, c)| c).sum::<i64>()
    );
    Ok(())
}

/// Regression: the repository's `wasmgate.toml` (what `wasmgate up` serves) loads `links`: the
/// plugin imports `http_send`, so its entry must grant outbound hosts, or it is refused at load
/// and its routes answer 503. Its store is the default one: SQLite under `data_dir`, `sync =
/// "full"` (moved into a scratch directory here).
#[test]
fn the_repository_config_serves_links_on_its_default_store() -> anyhow::Result<()> {
    sample_plugins_built();
    let scratch = Site::new("kv-default")?;
    let text = std::fs::read_to_string(repo_root().join("wasmgate.toml"))?;
    let mut config = Config::parse(&text, &repo_root().join("wasmgate.toml"), &repo_root())?;
    let store = config
        .stores
        .iter_mut()
        .find(|s| s.name == "links")
        .context("a links store")?;
    ensure!(
        store.backend
            == StoreBackend::Sqlite {
                path: repo_root().join(".wasmgate/kv/links.sqlite"),
                sync: SqliteSync::Full,
            },
        "{:?}",
        store.backend
    );
    store.backend = StoreBackend::Sqlite {
        path: scratch.path("links.sqlite"),
        sync: SqliteSync::Full,
    };
    let server = TestServer::launch(config)?;
    let report = server.plugins_loaded().context("the first load")?;
    ensure!(report.refused.is_empty(), "{:?}", report.refused);
    let mut client = Client::new(server.addr());
    let url = "https://example.org/docs";
    let code = client.create(url, None)?;
    client.follow(&code, url)?;
    ensure!(client.stats(&code)? == (url.to_owned(), 1));
    ensure!(scratch.path("links.sqlite").exists());
    Ok(())
}
