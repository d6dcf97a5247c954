//! No secret value reaches a person: a `secret = true` variable or a URL's password in an invalid
//! config is masked in what `wasmgate check` and `wasmgate serve` print, and in the log line of a
//! refused SIGHUP reload, whatever the error on its line.

use std::time::Duration;

use crate::authoring::{serve_config, wasmgate};
use crate::support::{ChildOptions, ChildServer, Site, metric, repo_root, scrape, try_eventually};

const SECRET: &str = "pw-9f8e7d6c";
const CONFIG_RELOADS_REFUSED: &str = r#"wasmgate_config_reloads_total{result="refused"}"#;

/// A valid config: plugin `g` with a secret variable and a Redis store whose URL has a password.
fn valid() -> String {
    format!(
        "[plugins.g]\nwasm = \"greet.wat\"\n[plugins.g.vars]\ngreeting = {{ value = \"{SECRET}\", secret = true }}\n\
         [stores.r]\nbackend = \"redis\"\nurl = \"redis://:{SECRET}@127.0.0.1:1/0\"\n"
    )
}

/// Invalid configs, each with a secret on the offending line: an unknown key beside it, a TOML
/// syntax error (the file cannot be parsed), a Redis URL the message quotes.
fn invalid() -> Vec<String> {
    let base = "[plugins.g]\nwasm = \"greet.wat\"\n";
    vec![
        format!(
            "{base}[plugins.g.vars]\ngreeting = {{ value = \"{SECRET}\", secret = true, typo = 1 }}\n"
        ),
        // A misspelled `secret`: the error names the key, and the value it meant to hide stays
        // hidden.
        format!("{base}[plugins.g.vars]\ngreeting = {{ value = \"{SECRET}\", secert = true }}\n"),
        format!("{base}[plugins.g.vars]\ngreeting = {{ value = \"{SECRET}\" secret = true }}\n"),
        format!("{base}[stores.r]\nbackend = \"redis\"\nurl = \"http://u:{SECRET}@127.0.0.1:1\"\n"),
        format!(
            "{base}[stores.r]\nbackend = \"redis\"\nurl = \"redis://u:{SECRET}@127.0.0.1:1\" ; oops\n"
        ),
    ]
}

fn site(name: &str) -> anyhow::Result<Site> {
    let site = Site::new(name)?;
    std::fs::copy(
        repo_root().join("tests/guests/greet_v2.wat"),
        site.path("greet.wat"),
    )?;
    Ok(site)
}

#[test]
fn check_and_serve_never_print_a_secret_of_an_invalid_config() -> anyhow::Result<()> {
    let site = site("secrets-cli")?;
    for config in invalid() {
        site.replace("wasmgate.toml", &config)?;
        let (code, out, err) = wasmgate(&["check", "greet.wat"], site.dir())?;
        assert_eq!(code, 2, "check refuses\n{config}\n{out}{err}");
        assert!(err.contains("wasmgate.toml:"), "the error is shown\n{err}");
        assert!(
            !out.contains(SECRET) && !err.contains(SECRET),
            "check:\n{config}\n{out}{err}"
        );
        let (code, out, err) = serve_config(site.dir())?;
        assert_eq!(code, 2, "serve refuses\n{config}\n{out}{err}");
        assert!(err.contains("wasmgate.toml:"), "the error is shown\n{err}");
        assert!(
            !out.contains(SECRET) && !err.contains(SECRET),
            "serve:\n{config}\n{out}{err}"
        );
    }
    Ok(())
}

/// `check` reads no variable's value, so shows none: a secret file beside the module, a secret
/// literal, and an unrelated plugin whose environment variable is unset fail nothing and print
/// nothing secret. `serve` of the same file with the secret file gone says which file is missing
/// and that `optional = true` exists, and still no value.
#[test]
fn check_reads_no_secret_and_a_missing_secret_file_is_named() -> anyhow::Result<()> {
    let site = site("secrets-check")?;
    site.replace("token", format!("{SECRET}\n"))?;
    site.replace(
        "wasmgate.toml",
        format!(
            "[plugins.g]\nwasm = \"greet.wat\"\n[plugins.g.vars]\ngreeting = {{ file = \"token\" }}\n\
             literal = {{ value = \"{SECRET}\", secret = true }}\n\
             [plugins.other]\nwasm = \"other.wat\"\n[plugins.other.vars]\n\
             key = {{ env = \"WASMGATE_IT_SURELY_UNSET\" }}\n"
        ),
    )?;
    let (code, out, err) = wasmgate(&["check", "greet.wat"], site.dir())?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("greeting (file "), "{out}");
    assert!(
        !out.contains(SECRET) && !err.contains(SECRET),
        "check shows no value:\n{out}{err}"
    );

    std::fs::remove_file(site.path("token"))?;
    let (code, out, err) = wasmgate(&["check", "greet.wat"], site.dir())?;
    assert_eq!(code, 0, "a check is not a deploy: {out}{err}");
    assert!(
        out.contains("note: variable `greeting`: the file") && out.contains("does not exist here"),
        "{out}"
    );
    let (code, out, err) = serve_config(site.dir())?;
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(
            "variable `greeting` reads the file ./token, which does not exist (add `optional = \
             true` to allow that)"
        ),
        "{err}"
    );
    assert!(!err.contains(SECRET) && !out.contains(SECRET), "{out}{err}");
    Ok(())
}

#[test]
fn a_refused_sighup_reload_never_logs_a_secret() -> anyhow::Result<()> {
    let site = site("secrets-reload")?;
    site.replace("wasmgate.toml", valid())?;
    let server = ChildServer::start(ChildOptions::serve(site.path("wasmgate.toml")))?;
    let addr = server.addr();
    for (n, config) in invalid().into_iter().enumerate() {
        site.replace("wasmgate.toml", config)?;
        server.signal(libc::SIGHUP)?;
        let refused = (n + 1) as f64;
        assert!(try_eventually(Duration::from_secs(10), || Ok(metric(
            &scrape(addr)?,
            CONFIG_RELOADS_REFUSED
        ) >= Some(
            refused
        )))?);
    }
    server.signal(libc::SIGTERM)?;
    let exited = server.wait(Duration::from_secs(10))?;
    assert_eq!(exited.code, Some(0), "{}", exited.stderr);
    assert_eq!(
        exited.stderr.matches("config reload refused").count(),
        invalid().len(),
        "{}",
        exited.stderr
    );
    assert!(
        exited.stderr.contains("***"),
        "masked, not dropped:\n{}",
        exited.stderr
    );
    assert!(!exited.stderr.contains(SECRET), "{}", exited.stderr);
    Ok(())
}
