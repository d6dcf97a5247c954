//! Pre-initialization at load, seen from outside: a guest whose `_initialize` costs more fuel
//! than a request may burn (`tests/guests/slow_init.wat`) answers every request when its start-up
//! ran once at load, and fails every request with `preinitialize = false`, where it runs per
//! request. `wasmgate check` says which.

use crate::support::{Site, TestServer};

/// Plugin `s` (slow_init.wat) on `GET /s`, with a per-request fuel below its `_initialize`.
fn start(site: &Site, extra: &str) -> anyhow::Result<TestServer> {
    site.copy_guest("slow_init", "slow_init.wat")?;
    site.replace(
        "wasmgate.toml",
        format!(
            "[plugins.s]\nwasm = \"slow_init.wat\"\nfuel = 1000000\n{extra}\
             [[routes]]\nmethod = \"GET\"\npath = \"/s\"\nplugin = \"s\"\n"
        ),
    )?;
    site.start()
}

#[test]
fn start_up_work_runs_once_at_load_and_not_in_each_request() -> anyhow::Result<()> {
    let site = Site::new("preinit-on")?;
    let server = start(&site, "")?;
    for _ in 0..3 {
        let resp = server.get("/s")?;
        assert_eq!((resp.status, resp.text().as_str()), (200, "ready\n"));
    }
    Ok(())
}

#[test]
fn turned_off_start_up_work_runs_in_every_request() -> anyhow::Result<()> {
    let site = Site::new("preinit-off")?;
    let server = start(&site, "preinitialize = false\n")?;
    let resp = server.get("/s")?;
    assert_eq!(resp.status, 504, "{}", resp.text());
    assert_eq!(
        server.metric(r#"wasmgate_plugin_calls_total{plugin="s",outcome="fuel_exhausted"}"#),
        1.0,
        "{}",
        server.metrics()
    );
    Ok(())
}

#[test]
fn check_says_whether_a_module_is_pre_initialized() -> anyhow::Result<()> {
    let site = Site::new("preinit-check")?;
    site.copy_guest("slow_init", "slow_init.wat")?;
    site.replace(
        "wasmgate.toml",
        "[plugins.on]\nwasm = \"slow_init.wat\"\n[plugins.off]\nwasm = \"slow_init.wat\"\npreinitialize = false\n",
    )?;
    let (code, stdout, stderr) =
        crate::authoring::wasmgate(&["check", "slow_init.wat"], site.dir())?;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("plugin `on` in")
            && stdout.contains("pre-initialized: yes")
            && stdout.contains("pre-initialized: off (preinitialize = false)"),
        "{stdout}"
    );
    Ok(())
}
