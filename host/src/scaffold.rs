//! `wasmgate new`: a new plugin crate on the SDK, and its route in the config.
//!
//! Owns the templates (a handler, a native unit test, a README, a plugin workspace on the SDK copy
//! `sdk.rs` writes) and the edit of the config file. What the user typed goes into the config as
//! quoted TOML values, and the result is checked with the real config parser (reading no
//! variable's value: an unset one is not `new`'s business) before anything is written, so a name
//! or route that would conflict is refused with the parser's own reason (or, for the very same
//! route, whose it is) and a refusal leaves no file behind. A plugin the config names whose crate
//! does not exist gets its crate. It must not build or load anything.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use wasmgate_server::config::{Config, PluginSource, Values};

use crate::sdk;

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPlugin {
    /// Crate and plugin name: lowercase letters, digits, `-` and `_`, starting with a letter.
    pub name: String,
    /// Route pattern; defaults to `/NAME`.
    pub route: Option<String>,
    /// Route method; defaults to `GET`.
    pub method: Option<String>,
}

/// Why nothing was created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "`{0}` is not a valid plugin name: use lowercase letters, digits, `-` and `_`, starting with a letter (e.g. `todo-api`)"
    )]
    InvalidName(String),
    #[error("a plugin named `{name}` already exists ({where_})")]
    Exists { name: String, where_: String },
    /// The configuration file is invalid as it is.
    #[error("{0}")]
    Config(#[from] wasmgate_server::config::ConfigError),
    /// The route (or plugin) to add would make the configuration invalid. The message is the
    /// parser's, without a position: the offending text is the addition, not the file.
    #[error("cannot add `{method} {route}` to {}: {message}; nothing was changed", config.display())]
    Refused {
        method: String,
        route: String,
        config: PathBuf,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} has no `members = [...]` list to add the plugin to")]
    NoMembers(PathBuf),
    /// The configuration names a crate directory outside `plugins/`, which `new` cannot make a
    /// member of the plugin workspace.
    #[error(
        "plugin `{name}`'s crate is configured at {}, outside plugins/: create it there yourself, \
         or point `crate` into plugins/", dir.display()
    )]
    OutsideWorkspace { name: String, dir: PathBuf },
    #[error(transparent)]
    Sdk(#[from] sdk::SdkError),
}

/// What was created, for the message that follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The new crate; `None` when a route was added to a plugin whose crate already existed.
    pub crate_dir: Option<PathBuf>,
    pub config: PathBuf,
    /// The route added (method, pattern); `None` when only a configured plugin's missing crate
    /// was created.
    pub route: Option<(String, String)>,
}

/// Creates `plugins/NAME` under `root` and adds it and its route to `config_path` (created when
/// missing). When the configuration already has a plugin `NAME`, adds the given route to it (one
/// plugin serving several routes, dispatching with the SDK's `Router`), and creates its crate when
/// the configuration names a crate directory that does not exist yet.
pub fn new_plugin(
    root: &Path,
    config_path: &Path,
    spec: &NewPlugin,
) -> Result<Created, ScaffoldError> {
    let name = &spec.name;
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        return Err(ScaffoldError::InvalidName(name.clone()));
    }
    let method = spec.method.clone().unwrap_or_else(|| "GET".to_string());
    let route = spec.route.clone().unwrap_or_else(|| format!("/{name}"));
    let old = match std::fs::read_to_string(config_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(ScaffoldError::Io {
                path: config_path.to_path_buf(),
                source,
            });
        }
    };
    let base = config_path.parent().unwrap_or(Path::new("."));
    // The authoring view: an unset environment variable of some plugin is not `new`'s business.
    let current = Config::parse_with(&old, config_path, base, Values::Declared)?;
    // TOML strings, quoted and escaped: what the user typed is a value, never more config.
    let quoted = |s: &str| toml::Value::String(s.to_string()).to_string();
    let route_entry = format!(
        "\n[[routes]]\nmethod = {}\npath = {}\nplugin = \"{name}\"\n",
        quoted(&method),
        quoted(&route)
    );
    // The real parser decides: bad pattern, conflicting route, bad method -> refused, with why.
    let with = |addition: &str| -> Result<String, ScaffoldError> {
        let refused = |message: String| ScaffoldError::Refused {
            method: method.clone(),
            route: route.clone(),
            config: config_path.to_path_buf(),
            message,
        };
        // The exact route already there: say whose it is (the parser would only say it conflicts
        // with itself).
        let same = |r: &&wasmgate_server::config::RouteConfig| {
            r.pattern == route
                && (r.methods.iter().any(|m| m.eq_ignore_ascii_case(&method))
                    || (r.methods.is_empty() && method == "*"))
        };
        if let Some(existing) = current.routes.iter().find(same) {
            return Err(refused(format!(
                "it is already there (line {}), routed to plugin `{}`",
                existing.line, existing.plugin
            )));
        }
        let new_config = format!("{}\n{addition}", old.trim_end_matches('\n'));
        Config::parse_with(&new_config, config_path, base, Values::Declared)
            .map(|_| new_config)
            .map_err(|err| refused(err.message))
    };
    let plugins = root.join("plugins");
    if let Some(plugin) = current.plugin(name) {
        // A crate the configuration names but nobody created yet.
        let missing_crate = match &plugin.source {
            PluginSource::Crate { dir, .. } if !dir.join("Cargo.toml").exists() => Some(dir),
            _ => None,
        };
        if spec.route.is_none() && missing_crate.is_none() {
            return Err(ScaffoldError::Exists {
                name: name.clone(),
                where_: format!(
                    "[plugins.{name}] in {}; give `--route PATTERN` to add a route to it",
                    config_path.display()
                ),
            });
        }
        let new_config = match spec.route {
            Some(_) => with(&route_entry)?,
            None => old.clone(),
        };
        let crate_dir = match missing_crate {
            Some(dir) => {
                // The handler's example is the route being added, else the plugin's first one.
                let (method, route) = match (
                    &spec.route,
                    current.routes.iter().find(|r| &r.plugin == name),
                ) {
                    (None, Some(first)) => (
                        first.methods.first().cloned().unwrap_or_else(|| "*".into()),
                        first.pattern.clone(),
                    ),
                    _ => (method.clone(), route.clone()),
                };
                let member =
                    member_path(&plugins, dir).ok_or_else(|| ScaffoldError::OutsideWorkspace {
                        name: name.clone(),
                        dir: dir.clone(),
                    })?;
                create_crate(root, dir, &member, name, &method, &route)?;
                Some(dir.clone())
            }
            None => None,
        };
        if spec.route.is_some() {
            write(config_path, &new_config)?;
        }
        return Ok(Created {
            crate_dir,
            config: config_path.to_path_buf(),
            route: spec.route.is_some().then_some((method, route)),
        });
    }
    let crate_dir = plugins.join(name);
    if crate_dir.exists() {
        return Err(ScaffoldError::Exists {
            name: name.clone(),
            where_: crate_dir.display().to_string(),
        });
    }
    let new_config = with(&format!(
        "[plugins.{name}]\ncrate = \"plugins/{name}\"\n{route_entry}"
    ))?;
    create_crate(root, &crate_dir, name, name, &method, &route)?;
    write(config_path, &new_config)?;
    Ok(Created {
        crate_dir: Some(crate_dir),
        config: config_path.to_path_buf(),
        route: Some((method, route)),
    })
}

/// Writes the crate `name` at `crate_dir` (member `member` of the workspace `<root>/plugins`,
/// which is created when missing, on the SDK this binary carries) for `method route`.
fn create_crate(
    root: &Path,
    crate_dir: &Path,
    member: &str,
    name: &str,
    method: &str,
    route: &str,
) -> Result<(), ScaffoldError> {
    let workspace = root.join("plugins/Cargo.toml");
    let manifest = match std::fs::read_to_string(&workspace) {
        Ok(text) => {
            add_member(&text, member).ok_or_else(|| ScaffoldError::NoMembers(workspace.clone()))?
        }
        Err(_) => {
            // Build output is not source: keep it out of the user's version control.
            write(&root.join("plugins/.gitignore"), "/target/\n")?;
            new_workspace(member)
        }
    };
    if sdk::is_used_by(&manifest) {
        sdk::ensure(root)?;
    }
    let params = route_params(route);
    write(&crate_dir.join("Cargo.toml"), &cargo_toml(name))?;
    write(
        &crate_dir.join("src/lib.rs"),
        &handler(name, method, route, &params),
    )?;
    write(&crate_dir.join("README.md"), &readme(name, method, route))?;
    if !root.join("plugins/.cargo/config.toml").exists() {
        write(&root.join("plugins/.cargo/config.toml"), CARGO_CONFIG)?;
    }
    write(&workspace, &manifest)
}

/// `dir` as a member of the workspace at `plugins` (`"todo"` for `plugins/todo`), when it is
/// inside it.
fn member_path(plugins: &Path, dir: &Path) -> Option<String> {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let rel = absolute(dir)
        .strip_prefix(absolute(plugins))
        .ok()?
        .to_path_buf();
    let text = rel.to_str()?.replace('\\', "/");
    (!text.is_empty() && !text.split('/').any(|s| s == "..")).then_some(text)
}

fn write(path: &Path, text: &str) -> Result<(), ScaffoldError> {
    let io = |source| ScaffoldError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("wasmgate-new.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// `text` with `"name"` appended to its `members = [...]` list.
fn add_member(text: &str, name: &str) -> Option<String> {
    let start = text.find("members")?;
    let close = start + text[start..].find(']')?;
    let inside = text[text[..close].rfind('[')? + 1..close].trim();
    let sep = if inside.is_empty() || inside.ends_with(',') {
        ""
    } else {
        ", "
    };
    Some(format!(
        "{}{sep}\"{name}\"{}",
        text[..close].trim_end(),
        &text[close..]
    ))
}

/// The `:param` and `*rest` names of a pattern.
fn route_params(route: &str) -> Vec<String> {
    route
        .split('/')
        .filter_map(|s| s.strip_prefix(':').or_else(|| s.strip_prefix('*')))
        .map(str::to_string)
        .collect()
}

fn new_workspace(name: &str) -> String {
    format!(
        "# Plugins: a workspace of its own, built for wasm32-wasip1 (see .cargo/config.toml).\n\
         [workspace]\nmembers = [\"{name}\"]\nresolver = \"3\"\n\n\
         [workspace.package]\nedition = \"2024\"\nversion = \"0.1.0\"\npublish = false\n\n\
         # The SDK `wasmgate` carries, written beside plugins/ (refreshed by `wasmgate build`).\n\
         [workspace.dependencies]\nwasmgate-sdk = {{ path = \"{}\" }}\n\n\
         [profile.release]\nopt-level = 3\nlto = true\ncodegen-units = 1\npanic = \"abort\"\nstrip = \"debuginfo\"\n",
        sdk::WORKSPACE_DEPENDENCY_PATH
    )
}

/// The plugins workspace's cargo config: the wasm target by default, native test aliases, and a
/// 128 KiB shadow stack (Rust's default is 1 MiB): a smaller initial memory for every request's
/// instance (docs/writing-plugins.md, "What you control").
const CARGO_CONFIG: &str = "[build]\ntarget = \"wasm32-wasip1\"\n\n[alias]\n\
    test-native = \"test --target host-tuple\"\nclippy-native = \"clippy --target host-tuple --all-targets\"\n\n\
    # A 128 KiB stack instead of 1 MiB; a plugin's build.rs may set its own (-zstack-size=N).\n\
    [target.wasm32-wasip1]\nrustflags = [\"-C\", \"link-arg=-zstack-size=131072\"]\n";

fn cargo_toml(name: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nedition.workspace = true\nversion.workspace = true\npublish.workspace = true\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nwasmgate-sdk.workspace = true\n\
         # `#[derive(Serialize, Deserialize)]` for request and response bodies.\n\
         serde = {{ version = \"1\", features = [\"derive\"] }}\n"
    )
}

fn handler(name: &str, method: &str, route: &str, params: &[String]) -> String {
    let example_path: String = route
        .split('/')
        .map(|s| {
            if s.starts_with(':') || s.starts_with('*') {
                "42"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    let mut json_params = String::new();
    let mut builder_params = String::new();
    let mut asserts = String::new();
    for p in params {
        let _ = writeln!(json_params, "            \"{p}\": req.param(\"{p}\"),");
        let _ = write!(builder_params, "\n            .param(\"{p}\", \"42\")");
        let _ = writeln!(
            asserts,
            "        assert_eq!(body[\"params\"][\"{p}\"], \"42\");"
        );
    }
    format!(
        r#"//! `{method} {route}`: scaffolded by `wasmgate new`. Edit `handle`; `cargo test-native` in
//! plugins/ runs the test below natively, `wasmgate up --watch` rebuilds and hot-swaps on save.

use wasmgate_sdk::serde_json::json;
use wasmgate_sdk::{{Request, Response}};

fn handle(req: Request) -> Response {{
    Response::json(
        200,
        &json!({{
            "plugin": "{name}",
            "path": req.path(),
            "params": {{
{json_params}            }},
        }}),
    )
}}

wasmgate_sdk::handler!(handle);

#[cfg(test)]
mod tests {{
    use super::*;
    use wasmgate_sdk::serde_json::Value;

    #[test]
    fn answers_with_its_route_params() {{
        let req = Request::builder()
            .method("{method}")
            .path("{example_path}"){builder_params}
            .build();
        let resp = handle(req);
        assert_eq!(resp.status(), 200);
        let body: Value = resp.body_json().unwrap();
        assert_eq!(body["plugin"], "{name}");
{asserts}    }}
}}
"#
    )
}

fn readme(name: &str, method: &str, route: &str) -> String {
    format!(
        "# {name}\n\nA wasmgate plugin answering `{method} {route}`, scaffolded by `wasmgate new`.\n\n\
         - `src/lib.rs`: the handler (see docs/writing-plugins.md for the SDK).\n\
         - `cd plugins && cargo test-native -p {name}`: its unit tests, natively.\n\
         - `wasmgate up --watch`: build, serve, and rebuild + hot-swap on every save.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("wasmgate-scaffold-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn spec(name: &str, route: Option<&str>) -> NewPlugin {
        NewPlugin {
            name: name.into(),
            route: route.map(Into::into),
            method: None,
        }
    }

    #[test]
    fn creates_the_crate_the_workspace_and_the_route() {
        let root = temp("create");
        let config = root.join("wasmgate.toml");
        let created = new_plugin(&root, &config, &spec("todo", Some("/todos/:id"))).unwrap();
        assert_eq!(
            created.route,
            Some(("GET".to_string(), "/todos/:id".to_string()))
        );
        let lib = std::fs::read_to_string(root.join("plugins/todo/src/lib.rs")).unwrap();
        assert!(
            lib.contains("\"id\": req.param(\"id\")") && lib.contains(".param(\"id\", \"42\")"),
            "{lib}"
        );
        let parsed = Config::from_file(&config).unwrap();
        assert_eq!(parsed.routes[0].pattern, "/todos/:id");
        assert!(parsed.plugin("todo").is_some());
        new_plugin(&root, &config, &spec("second", None)).unwrap();
        let ws = std::fs::read_to_string(root.join("plugins/Cargo.toml")).unwrap();
        assert!(ws.contains("members = [\"todo\", \"second\"]"), "{ws}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn refuses_existing_names_conflicting_routes_and_bad_names_leaving_nothing() {
        let root = temp("refuse");
        let config = root.join("wasmgate.toml");
        new_plugin(&root, &config, &spec("todo", Some("/todos/:id"))).unwrap();
        let before = std::fs::read_to_string(&config).unwrap();
        let err = new_plugin(&root, &config, &spec("todo", None))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("already exists") && err.contains("--route"),
            "{err}"
        );
        let err = new_plugin(&root, &config, &spec("other", Some("/todos/:key")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("use one name"), "{err}");
        let err = new_plugin(&root, &config, &spec("other", Some("/todos/:id")))
            .unwrap_err()
            .to_string();
        // The refusal is about the addition: the route once, and whose it already is.
        assert!(err.starts_with("cannot add `GET /todos/:id` to "), "{err}");
        assert!(
            err.contains("already there (line 5), routed to plugin `todo`"),
            "{err}"
        );
        assert_eq!(err.matches("/todos/:id").count(), 1, "{err}");
        let err = new_plugin(&root, &config, &spec("other", Some("/todos/:key/x")))
            .unwrap_err()
            .to_string();
        // The parser's reason, once, without a position in a file that does not contain it.
        assert!(
            !(0..10).any(|d| err.contains(&format!(".toml:{d}"))),
            "no line number: {err}"
        );
        assert_eq!(err.matches("use one name").count(), 1, "{err}");
        let err = new_plugin(&root, &config, &spec("other", Some("no-slash")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("must start with `/`"), "{err}");
        assert!(
            new_plugin(&root, &config, &spec("Bad Name", None))
                .unwrap_err()
                .to_string()
                .contains("not a valid plugin name")
        );
        assert_eq!(
            std::fs::read_to_string(&config).unwrap(),
            before,
            "config untouched"
        );
        assert!(!root.join("plugins/other").exists(), "no crate left behind");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_route_is_added_to_an_existing_plugin_and_its_crate_left_alone() {
        let root = temp("add-route");
        let config = root.join("wasmgate.toml");
        new_plugin(&root, &config, &spec("links", Some("/links"))).unwrap();
        let lib = root.join("plugins/links/src/lib.rs");
        let source = std::fs::read_to_string(&lib).unwrap();
        let added = new_plugin(&root, &config, &spec("links", Some("/l/:code"))).unwrap();
        assert_eq!(added.crate_dir, None);
        let parsed = Config::from_file(&config).unwrap();
        let routes: Vec<(&str, &str)> = parsed
            .routes
            .iter()
            .map(|r| (r.pattern.as_str(), r.plugin.as_str()))
            .collect();
        assert_eq!(routes, [("/links", "links"), ("/l/:code", "links")]);
        assert_eq!(parsed.plugins.len(), 1);
        assert_eq!(std::fs::read_to_string(&lib).unwrap(), source);
        // The same route twice is refused, and the file stays as it was.
        let before = std::fs::read_to_string(&config).unwrap();
        let err = new_plugin(&root, &config, &spec("links", Some("/l/:code")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nothing was changed"), "{err}");
        assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_route_or_method_cannot_inject_config() {
        let root = temp("inject");
        let config = root.join("wasmgate.toml");
        // Unquoted, each would have written a valid config with a second plugin in it.
        let evil =
            "\nplugin = \"x\"\n[plugins.evil]\nwasm = \"evil.wat\"\n[[routes]]\nmethod = \"GET\"";
        for (route, method) in [
            (format!("/x\"{evil}\npath = \"/evil"), None),
            (
                "/x".to_string(),
                Some(format!("GET\"{evil}\npath = \"/evil\"\nmethod = \"GET")),
            ),
        ] {
            let spec = NewPlugin {
                name: "x".into(),
                route: Some(route),
                method,
            };
            let err = new_plugin(&root, &config, &spec).unwrap_err().to_string();
            assert!(err.contains("nothing was changed"), "{err}");
            assert!(!config.exists() && !root.join("plugins").exists());
        }
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_configured_plugin_without_its_crate_gets_one() {
        let root = temp("missing-crate");
        let config = root.join("wasmgate.toml");
        std::fs::write(
            &config,
            "[plugins.snippets]\ncrate = \"plugins/snippets\"\n\n[[routes]]\nmethod = \"POST\"\n\
             path = \"/snippets\"\nplugin = \"snippets\"\n",
        )
        .unwrap();
        let before = std::fs::read_to_string(&config).unwrap();
        // No route given: the crate is created for the plugin's configured route, the config
        // stays as it is.
        let created = new_plugin(&root, &config, &spec("snippets", None)).unwrap();
        assert_eq!(created.crate_dir, Some(root.join("plugins/snippets")));
        assert_eq!(created.route, None);
        assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
        let lib = std::fs::read_to_string(root.join("plugins/snippets/src/lib.rs")).unwrap();
        assert!(lib.contains("`POST /snippets`"), "{lib}");
        let ws = std::fs::read_to_string(root.join("plugins/Cargo.toml")).unwrap();
        assert!(ws.contains("members = [\"snippets\"]"), "{ws}");
        // Now it exists: the same command is refused.
        let err = new_plugin(&root, &config, &spec("snippets", None))
            .unwrap_err()
            .to_string();
        assert!(err.contains("already exists"), "{err}");
        std::fs::remove_dir_all(root).unwrap();

        // With a route: both the route and the crate.
        let root = temp("missing-crate-route");
        let config = root.join("wasmgate.toml");
        std::fs::write(&config, "[plugins.api]\ncrate = \"plugins/api\"\n").unwrap();
        let created = new_plugin(&root, &config, &spec("api", Some("/api/:id"))).unwrap();
        assert_eq!(created.crate_dir, Some(root.join("plugins/api")));
        assert!(Config::from_file(&config).unwrap().routes[0].pattern == "/api/:id");
        assert!(root.join("plugins/api/src/lib.rs").is_file());
        std::fs::remove_dir_all(root).unwrap();

        // A crate configured outside plugins/ cannot become a member: refused, nothing written.
        let root = temp("outside");
        let config = root.join("wasmgate.toml");
        std::fs::write(&config, "[plugins.api]\ncrate = \"elsewhere/api\"\n").unwrap();
        let err = new_plugin(&root, &config, &spec("api", Some("/api")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside plugins/"), "{err}");
        assert!(!root.join("plugins").exists() && !root.join("elsewhere").exists());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_workspace_from_nothing_builds_on_the_sdk_copy_it_writes() {
        let root = temp("sdk-copy");
        new_plugin(&root, &root.join("wasmgate.toml"), &spec("todo", None)).unwrap();
        let ws = std::fs::read_to_string(root.join("plugins/Cargo.toml")).unwrap();
        assert!(
            ws.contains("wasmgate-sdk = { path = \"../.wasmgate/sdk/wasmgate-sdk\" }"),
            "{ws}"
        );
        assert!(root.join(".wasmgate/sdk/wasmgate-sdk/Cargo.toml").is_file());
        assert!(!ws.contains(env!("CARGO_MANIFEST_DIR")), "{ws}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn the_scaffold_depends_on_serde_with_derive() {
        assert!(cargo_toml("x").contains("serde = { version = \"1\", features = [\"derive\"] }"));
    }

    #[test]
    fn members_lists_are_extended_in_place() {
        assert_eq!(
            add_member("members = []\n", "a").unwrap(),
            "members = [\"a\"]\n"
        );
        assert_eq!(
            add_member("members = [\"x\", \"y\"]\nresolver = \"3\"", "a").unwrap(),
            "members = [\"x\", \"y\", \"a\"]\nresolver = \"3\""
        );
        assert_eq!(add_member("[workspace]\n", "a"), None);
        assert_eq!(route_params("/a/:id/b/*rest"), ["id", "rest"]);
    }
}
