//! Config parsing: the embedded default is the documented defaults, and every bad input is an
//! error that names the key, the line and what would be valid.

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("w.toml"), Path::new("/srv"))
}

fn error(text: &str) -> String {
    parse(text)
        .expect_err("config should be refused")
        .to_string()
}

const PLUGIN: &str = "[plugins.p]\nwasm = \"p.wat\"\n";

#[test]
fn embedded_default_is_exactly_the_documented_defaults() {
    let config = Config::embedded(Path::new(".")).unwrap();
    assert_eq!(config.server, ServerSettings::default());
    assert_eq!(config.timeouts, Timeouts::default());
    assert_eq!(config.http, HttpLimits::default());
    assert_eq!(config.runtime, RuntimeSettings::default());
    assert_eq!(config.plugin_defaults, PluginLimits::default());
    let names: Vec<&str> = config.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["echo", "hello", "links", "submit", "validate", "whoami"]
    );
    assert_eq!(config.routes.len(), 10);
    assert_eq!(config.outbound, OutboundSettings::default());
    let stores: Vec<&str> = config.stores.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(stores, ["links"]);
    assert_eq!(config.stores[0].limits, StoreLimits::default());
    assert!(
        config
            .plugins
            .iter()
            .all(|p| p.limits == PluginLimits::default())
    );
}

#[test]
fn an_empty_file_is_all_defaults_and_no_routes() {
    let config = parse("").unwrap();
    assert_eq!(config.timeouts, Timeouts::default());
    assert!(config.routes.is_empty() && config.plugins.is_empty());
}

#[test]
fn values_override_defaults_and_units_parse() {
    let text = format!(
        "[server]\nlisten = \"0.0.0.0:9000\"\n[timeouts]\nidle = \"250ms\"\nwrite = \"2m\"\n\
         [http]\nmax_body_bytes = \"2MiB\"\nmax_headers = 7\n[plugin_defaults]\nfuel = 5\n\
         {PLUGIN}deadline = \"20ms\"\nenv = [\"HOME\"]\ndirs = [{{ host = \"data\", guest = \"/data\" }}]\n\
         [[routes]]\nmethod = [\"GET\", \"POST\"]\npath = \"/p/:id\"\nplugin = \"p\"\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.server.listen, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(c.timeouts.idle, Duration::from_millis(250));
    assert_eq!(c.timeouts.write, Duration::from_secs(120));
    assert_eq!(c.http.max_body_bytes, 2 * 1024 * 1024);
    assert_eq!(c.http.max_headers, 7);
    let p = c.plugin("p").unwrap();
    assert_eq!(p.source, PluginSource::File(PathBuf::from("/srv/p.wat")));
    assert_eq!(
        (p.limits.fuel, p.limits.deadline),
        (5, Duration::from_millis(20))
    );
    assert_eq!(p.grants.env, ["HOME"]);
    assert_eq!(p.grants.dirs[0].host, PathBuf::from("/srv/data"));
    assert_eq!(c.routes[0].methods, ["GET", "POST"]);
    assert_eq!(c.routes[0].line, 16);
}

#[test]
fn crate_plugins_point_at_their_wasm32_build() {
    let c = parse("[plugins.my-api]\ncrate = \"plugins/my-api\"\n").unwrap();
    let PluginSource::Crate { dir, wasm } = &c.plugin("my-api").unwrap().source else {
        panic!()
    };
    assert_eq!(dir, &PathBuf::from("/srv/plugins/my-api"));
    assert_eq!(
        wasm,
        &PathBuf::from("/srv/plugins/target/wasm32-wasip1/release/my_api.wasm")
    );
}

#[test]
fn unknown_keys_name_the_key_the_line_and_the_valid_ones() {
    let err = error("[server]\nlisten = \"127.0.0.1:1\"\nmax_conections = 5\n");
    assert!(
        err.starts_with("w.toml:3:1: unknown field `max_conections`"),
        "{err}"
    );
    assert!(
        err.contains("max_connections"),
        "lists the valid keys: {err}"
    );
    assert!(
        err.contains("3 | max_conections = 5\n  | ^^^^^^^^^^^^^^"),
        "{err}"
    );
    assert!(error("[sever]\n").contains("unknown field `sever`"));
}

#[test]
fn bad_values_say_what_would_be_valid() {
    for (text, line, needle) in [
        ("[timeouts]\nidle = \"10\"\n", 2, "invalid duration `10`"),
        ("[timeouts]\nidle = \"0s\"\n", 2, "non-zero"),
        ("[timeouts]\nidle = 10\n", 2, "invalid type"),
        (
            "[http]\nmax_body_bytes = \"1MB\"\n",
            2,
            "unit B, KiB, MiB or GiB",
        ),
        ("[http]\nmax_body_bytes = 0\n", 2, "positive"),
        ("[http]\nmax_headers = -1\n", 2, "positive whole number"),
        (
            "[runtime]\nmax_instances = 4294967296\n",
            2,
            "whole number from 1 to 4294967295",
        ),
        (
            "[server]\nlisten = \"localhost:80\"\n",
            2,
            "expected IP:PORT",
        ),
        (
            "[server]\nmax_connections = 0\n",
            2,
            "positive whole number",
        ),
        ("[runtime]\nmax_stack_bytes = \"1TiB\"\n", 2, "invalid size"),
    ] {
        let err = error(text);
        assert!(err.starts_with(&format!("w.toml:{line}:")), "{text}: {err}");
        assert!(err.contains(needle), "{text}: {err}");
    }
}

#[test]
fn plugin_tables_are_checked() {
    assert!(error("[plugins.p]\n").contains("needs `crate = \"plugins/p\"`"));
    assert!(error("[plugins.p]\ncrate = \"a\"\nwasm = \"b\"\n").contains("sets both"));
    assert!(error("[plugins.\"1p\"]\nwasm = \"x\"\n").contains("not valid"));
    assert!(error("[plugins.p]\nwasm = \"x\"\nfeul = 3\n").contains("unknown field `feul`"));
    let err = error("[plugins.p]\nwasm = \"x\"\nmax_memory_bytes = \"1GiB\"\n");
    assert!(
        err.starts_with("w.toml:3:20:") && err.contains("pool slot size"),
        "{err}"
    );
}

#[test]
fn routes_are_checked_with_their_line() {
    let route = |m: &str, p: &str, plugin: &str| {
        format!("[[routes]]\nmethod = {m}\npath = \"{p}\"\nplugin = \"{plugin}\"\n")
    };
    let err = error(&format!("{PLUGIN}{}", route("\"GET\"", "/x", "nope")));
    assert!(
        err.starts_with("w.toml:6:") && err.contains("no [plugins.*] table defines (defined: p)"),
        "{err}"
    );
    let err = error(&format!(
        "{PLUGIN}{}{}",
        route("\"GET\"", "/a/:id", "p"),
        route("\"*\"", "/a/:id", "p")
    ));
    assert!(
        err.starts_with("w.toml:9:8:") && err.contains("conflicts with `GET /a/:id`"),
        "{err}"
    );
    let err = error(&format!("{PLUGIN}{}", route("\"GET\"", "/health", "p")));
    assert!(err.contains("`GET /health` is the server's own"), "{err}");
    let err = error(&format!("{PLUGIN}{}", route("\"GET\"", "no-slash", "p")));
    assert!(
        err.starts_with("w.toml:5:") && err.contains("must start with `/`"),
        "{err}"
    );
    assert!(
        error(&format!("{PLUGIN}{}", route("\"G ET\"", "/x", "p"))).contains("not an HTTP method")
    );
    assert!(error(&format!("{PLUGIN}{}", route("3", "/x", "p"))).contains("a method name"));
    assert!(
        error(&format!(
            "{PLUGIN}[[routes]]\npath = \"/x\"\nplugin = \"p\"\n"
        ))
        .contains("missing field `method`")
    );
}

#[test]
fn unreadable_file_is_an_error_naming_it() {
    let err = Config::from_file(Path::new("/nonexistent/w.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("/nonexistent/w.toml: cannot read the config file"),
        "{err}"
    );
}

#[test]
fn reuse_is_per_plugin_opt_in_with_a_default_idle_timeout() {
    let c = parse(&format!("{PLUGIN}reuse = {{ max_requests = 1000 }}\n")).unwrap();
    assert_eq!(
        c.plugin("p").unwrap().reuse,
        Some(ReuseSettings {
            max_requests: 1000,
            idle_timeout: ReuseSettings::DEFAULT_IDLE_TIMEOUT
        })
    );
    let c = parse(&format!(
        "{PLUGIN}reuse = {{ max_requests = 1, idle_timeout = \"250ms\" }}\n"
    ))
    .unwrap();
    assert_eq!(
        c.plugin("p").unwrap().reuse.unwrap().idle_timeout,
        Duration::from_millis(250)
    );
    assert_eq!(parse(PLUGIN).unwrap().plugin("p").unwrap().reuse, None);
    for (text, needle) in [
        ("reuse = { max_requests = 0 }", "from 1 to"),
        (
            "reuse = { idle_timeout = \"1s\" }",
            "missing field `max_requests`",
        ),
        (
            "reuse = { max_requests = 5, idle_timeout = \"0s\" }",
            "non-zero",
        ),
        (
            "reuse = { max_requests = 5, warm = 3 }",
            "unknown field `warm`",
        ),
        ("reuse = true", "invalid type"),
    ] {
        let err = error(&format!("{PLUGIN}{text}\n"));
        assert!(err.contains(needle), "{text}: {err}");
        assert!(err.starts_with("w.toml:3:"), "{text}: {err}");
    }
}

#[test]
fn preinitialization_is_on_unless_a_plugin_turns_it_off() {
    assert!(parse(PLUGIN).unwrap().plugin("p").unwrap().preinitialize);
    let c = parse(&format!("{PLUGIN}preinitialize = false\n")).unwrap();
    assert!(!c.plugin("p").unwrap().preinitialize);
    let err = error(&format!("{PLUGIN}preinitialize = \"no\"\n"));
    assert!(err.contains("invalid type"), "{err}");
    assert!(err.starts_with("w.toml:3:"), "{err}");
}

/// A secret value on the offending line (or in the offending value) never reaches the message or
/// the excerpt, whatever the error: the excerpt masks the secret's span, not a message's words.
#[test]
fn no_error_shows_a_secret_value() {
    const S: &str = "s3cr3t-Xq9";
    let var = |table: &str| format!("{PLUGIN}[plugins.p.vars]\n{table}\n");
    let cases = [
        // An unknown key beside the secret, on its line.
        var(&format!(
            "k = {{ value = \"{S}\", secret = true, bogus = 1 }}"
        )),
        // The secret's own value has the wrong type (an integer secret is still secret).
        var("k = { value = 918273645, secret = true }"),
        // The `secret` flag is malformed, or misspelled (the error names the key).
        var(&format!("k = {{ value = \"{S}\", secret = \"yes\" }}")),
        var(&format!("k = {{ value = \"{S}\", secert = true }}")),
        format!("{PLUGIN}[plugins.p.vars.k]\nvalue = \"{S}\"\nsecrte = true\n"),
        // Two sources.
        var(&format!(
            "k = {{ value = \"{S}\", env = \"HOME\", secret = true }}"
        )),
        // A table form, error on the value's own line (a bad variable name further on is fine).
        format!("{PLUGIN}[plugins.p.vars.k]\nvalue = \"{S}\"\nsecret = true\nnope = 1\n"),
        // TOML syntax errors: the file cannot be parsed, so what is secret is unknown.
        var(&format!("k = {{ value = \"{S}\", secret = true ")),
        var(&format!("k = {{ value = \"{S}\" secret = true }}")),
        var(&format!("k = {{ value = {S}, secret = true }}")),
        var(&format!("k = {{ value = \"{S}")),
        format!("{PLUGIN}[plugins.p.vars.k]\nvalue = '''\n{S} = \n'''\nsecret = true\n[[x\n"),
        format!("{PLUGIN}[plugins.p.vars.k]\nvalue = \"{S}\" x # {S}\nsecret = true\n"),
        // Redis URLs with a password: a bad scheme (the message quotes the URL), an unknown key
        // beside it, a wrong backend, a syntax error.
        format!("[stores.s]\nbackend = \"redis\"\nurl = \"http://:{S}@127.0.0.1:6379\"\n"),
        format!("[stores.s]\nbackend = \"redis\"\nurl = \"redis://u:{S}@127.0.0.1\"; x = 1\n"),
        format!(
            "[stores.s]\nbackend = \"redis\"\nurl = \"redis://u:{S}@127.0.0.1\"\nsync = \"full\"\n"
        ),
        format!("[stores.s]\nurl = \"redis://:{S}@127.0.0.1:6379/0\"\n"),
        format!("[stores.s]\nbackend = \"redis\"\nurl = \"redis://:{S}@h\" bad\n"),
        format!("[stores.s]\nbackend = \"redis\"\nbogus = 1\nurl = \"redis://:{S}@h\"\n"),
    ];
    for text in &cases {
        let err = parse(text).expect_err(text);
        let shown = format!("{err}\n{err:?}");
        assert!(!shown.contains(S), "secret shown for\n{text}\n---\n{shown}");
        assert!(
            !shown.contains("918273645"),
            "secret shown for\n{text}\n---\n{shown}"
        );
        assert!(
            err.line.is_some(),
            "the error still has a position: {shown}"
        );
    }
}

/// A misspelled key in a variable table is named, with the keys there are, the closest one and
/// its position; a key like no other gets no guess.
#[test]
fn an_unknown_key_in_a_variable_table_is_named_with_a_guess() {
    let err = error(&format!(
        "{PLUGIN}[plugins.p.vars]\ntoken = {{ file = \"t\", secert = true }}\n"
    ));
    assert!(
        err.starts_with(
            "w.toml:4:9: unknown key `secert` in a variable table: the keys are `value`, `env`, \
             `file`, `secret`, `optional` (did you mean `secret`?)"
        ),
        "{err}"
    );
    let err = error(&format!(
        "{PLUGIN}[plugins.p.vars.token]\nenv = \"T\"\noptinal = true\n"
    ));
    assert!(
        err.contains("unknown key `optinal`") && err.contains("(did you mean `optional`?)"),
        "{err}"
    );
    assert!(err.starts_with("w.toml:"), "a position: {err}");
    let err = error(&format!(
        "{PLUGIN}[plugins.p.vars]\nk = {{ env = \"T\", colour = 1 }}\n"
    ));
    assert!(
        err.contains("unknown key `colour`") && !err.contains("did you mean"),
        "{err}"
    );
    // A plain string and a wrong type still say what a variable is.
    let err = error(&format!("{PLUGIN}[plugins.p.vars]\nk = 1\n"));
    assert!(
        err.contains("a string, or a table with one of `value`, `env` or `file`"),
        "{err}"
    );
}

/// A configuration read without values fails on no absent source but on every syntax error.
#[test]
fn a_declared_read_needs_no_source_but_keeps_every_rule() {
    let text = format!(
        "{PLUGIN}[plugins.p.vars]\ntoken = {{ file = \"/no/such/secret\" }}\n\
         key = {{ env = \"WASMGATE_TEST_SURELY_UNSET_VARIABLE\" }}\n"
    );
    let err = error(&text);
    assert!(
        err.contains("reads the environment variable WASMGATE_TEST_SURELY_UNSET_VARIABLE")
            || err.contains(
                "reads the file /no/such/secret, which does not exist (add `optional = true`"
            ),
        "{err}"
    );
    let declared = file::parse(
        &text,
        Path::new("w.toml"),
        Path::new("/srv"),
        Resolve::Declared,
    )
    .unwrap();
    let vars = &declared.plugin("p").unwrap().vars;
    assert_eq!(vars.len(), 2);
    assert_eq!(vars.absent_here().len(), 2);
    let bad = format!("{PLUGIN}[plugins.p.vars]\nk = {{ env = \"T\", secert = true }}\n");
    assert!(
        file::parse(
            &bad,
            Path::new("w.toml"),
            Path::new("/srv"),
            Resolve::Declared
        )
        .is_err()
    );
}

/// What is not secret is still shown: a literal variable, a URL's user and host, other values.
#[test]
fn masking_keeps_what_is_not_secret() {
    let err = error(&format!(
        "{PLUGIN}[plugins.p.vars]\nplain = {{ value = \"visible\", bogus = 1 }}\n"
    ));
    assert!(err.contains("value = \"visible\""), "{err}");
    let err = error("[stores.s]\nbackend = \"redis\"\nurl = \"http://me:pw@db.local:6379\"\n");
    assert!(
        err.contains("http://me:***@db.local:6379") && !err.contains(":pw@"),
        "{err}"
    );
    // The underline still spans the offending value, masked or not.
    let err = error(&format!(
        "{PLUGIN}[plugins.p.vars]\nk = {{ value = \"long-secret\", secret = true, bogus = 1 }}\n"
    ));
    assert!(
        err.contains("4 | k = { value = ***, secret = true, bogus = 1 }\n  |     ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n")
            || err.ends_with("^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"),
        "{err}"
    );
}

/// A parsed Redis URL's password stays out of `Debug` (what a log of the config would show).
#[test]
fn a_redis_password_is_masked_in_debug() {
    let c =
        parse("[stores.s]\nbackend = \"redis\"\nurl = \"redis://u:hunter2@127.0.0.1\"\n").unwrap();
    let shown = format!("{c:?}");
    assert!(
        shown.contains("redis://u:***@127.0.0.1") && !shown.contains("hunter2"),
        "{shown}"
    );
}

#[test]
fn the_log_repeat_interval_is_a_duration_from_one_millisecond() {
    let c = parse("[server]\nlog_repeat_interval = \"1ms\"\n").unwrap();
    assert_eq!(c.server.log_repeat_interval, Duration::from_millis(1));
    let err = error("[server]\nlog_repeat_interval = \"0s\"\n");
    assert!(err.contains("w.toml:2:"), "{err}");
}
