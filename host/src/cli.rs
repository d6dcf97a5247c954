//! The command line: parse flags, load the config, run a command.
//!
//! The binary's edge, kept in the library so the integration tests can build a binary with exactly
//! this behaviour (`main.rs` is three lines). The only module that uses `anyhow` and prints errors
//! for people; everything it calls returns typed errors. Exit codes: 0 on success (including a
//! graceful shutdown), 1 on a runtime failure (for `check`: the module is refused, by the ABI or
//! by a plugin mounting it), 2 on a usage or configuration error.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use wasmgate_server::config::{Config, PluginConfig, PluginLimits, Values, VarSource};

/// An HTTP/1.1 server whose routes are WebAssembly plugins.
#[derive(Parser, Debug)]
#[command(name = "wasmgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the configured routes.
    Serve(ServeArgs),
    /// Build the plugin crates the config names, for wasm32-wasip1.
    Build(ConfigArg),
    /// Build, then serve. With `--watch`, also rebuild a plugin when its source changes and
    /// hot-swap it.
    Up(ServeArgs),
    /// Scaffold a new plugin crate in plugins/NAME and add its route to the config.
    New(NewArgs),
    /// Validate a .wasm/.wat against the plugin ABI, list the grants its imports will need, and
    /// check it under each plugin of the config that mounts it (exit 1 if refused).
    Check(CheckArgs),
}

#[derive(clap::Args, Debug)]
struct NewArgs {
    /// Plugin (and crate) name: lowercase letters, digits, `-`, `_`.
    name: String,
    /// Route pattern, e.g. `/todos/:id` [default: /NAME]
    #[arg(long)]
    route: Option<String>,
    /// Route method, e.g. POST, or `*` for any [default: GET]
    #[arg(long)]
    method: Option<String>,
    /// The config file to add the route to [default: ./wasmgate.toml]
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// The module to check (.wasm or .wat).
    file: PathBuf,
    #[command(flatten)]
    config: ConfigArg,
}

#[derive(clap::Args, Debug)]
struct ConfigArg {
    /// The config file [default: ./wasmgate.toml if present, else the embedded default]
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Address to listen on, overriding the config's `server.listen` (port 0 picks a free port).
    #[arg(long, short)]
    listen: Option<SocketAddr>,
    /// Log output format.
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
    /// Log filter, e.g. `info` or `wasmgate=debug` [default: $RUST_LOG, else `info`]
    #[arg(long)]
    log_level: Option<String>,
    /// Reload changed plugin files and the config file while serving (as `server.watch = true`).
    #[arg(long)]
    watch: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Pretty,
    Json,
}

/// Runs the command line in `std::env::args`.
pub fn main() -> ExitCode {
    // First, while the process is still single-threaded (see the function's documentation).
    wasmgate_server::sys::quiet_library_backtraces();
    let cli = Cli::parse();
    let result = match cli.command {
        // Building needs the crate list, not a deployment's secrets.
        Command::Build(args) => load_config(&args, Values::Declared).and_then(|c| build(&c)),
        Command::Serve(args) => {
            load_config(&args.config, Values::Read).and_then(|c| serve(c, &args, false))
        }
        Command::Up(args) => load_config(&args.config, Values::Read).and_then(|c| {
            build(&c)?;
            serve(c, &args, true)
        }),
        Command::New(args) => new_plugin(&args),
        Command::Check(args) => {
            load_config(&args.config, Values::Declared).and_then(|c| check(&c, &args.file))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", report(&err));
            let config_error = err
                .chain()
                .any(|e| e.is::<wasmgate_server::config::ConfigError>());
            ExitCode::from(if config_error { 2 } else { 1 })
        }
    }
}

/// `err` and its causes, joined by `: ` like `{:#}`, but without a cause whose text the message
/// before it already quotes (many errors say "cannot X: {cause}" *and* expose the cause), so each
/// reason is printed once.
fn report(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The configuration `args` name: `--config FILE`, else `./wasmgate.toml`, else the embedded
/// default. `values`: whether variables are read (only to serve).
fn load_config(args: &ConfigArg, values: Values) -> anyhow::Result<Config> {
    let config = match &args.config {
        Some(path) => Config::from_file_with(path, values)?,
        None if Path::new("wasmgate.toml").exists() => {
            Config::from_file_with(Path::new("wasmgate.toml"), values)?
        }
        None => Config::embedded_with(&std::env::current_dir()?, values)?,
    };
    Ok(config)
}

fn build(config: &Config) -> anyhow::Result<()> {
    let crates = config.plugin_crates();
    let commands: Vec<(String, String)> = config
        .plugins
        .iter()
        .filter_map(|p| Some((p.name.clone(), p.build.clone()?)))
        .collect();
    if !crates.is_empty() {
        let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
        crate::builder::build_plugins(&config.base_dir, &crates, progress)
            .context("building plugins")?;
    }
    crate::builder::run_build_commands(&config.base_dir, &commands).context("building plugins")?;
    Ok(())
}

fn new_plugin(args: &NewArgs) -> anyhow::Result<()> {
    let config = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("wasmgate.toml"));
    let root = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let spec = crate::scaffold::NewPlugin {
        name: args.name.clone(),
        route: args.route.clone(),
        method: args.method.clone(),
    };
    let created = crate::scaffold::new_plugin(root, &config, &spec)?;
    if let Some(crate_dir) = &created.crate_dir {
        println!(
            "created {}: a handler in src/lib.rs, its test, a README",
            crate_dir.display()
        );
    }
    if let Some((method, route)) = &created.route {
        println!(
            "added route {method} {route} -> {} in {}",
            args.name,
            created.config.display()
        );
    }
    if created.crate_dir.is_some() {
        println!(
            "next: `wasmgate up --watch` builds and serves it, and rebuilds + hot-swaps on every save \
             (a running `up --watch` picks it up by itself)"
        );
    } else {
        println!(
            "next: the plugin now also gets these requests; dispatch on the matched route with \
             `wasmgate_sdk::Router` (docs/writing-plugins.md)"
        );
    }
    Ok(())
}

/// `wasmgate check FILE`: first the module on its own (the ABI verdict and the grants its imports
/// will need), then, for each plugin of the configuration that mounts it, the module under that
/// plugin's grants and limits. A module the ABI refuses, or a mounting plugin that refuses it (a
/// missing grant, a limit), fails the check; a grant is not an ABI matter while nothing mounts
/// the module.
///
/// No variable's value is read (the configuration is read with [`Values::Declared`]): a check
/// is not a deploy, and may run where production secrets are not, so an unset environment
/// variable or a missing secret file fails no check. For a mounting plugin they are reported as
/// notes, since serving there would refuse them.
fn check(config: &Config, file: &Path) -> anyhow::Result<()> {
    let runtime = wasmgate_server::runtime::Runtime::new(&config.runtime)?;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mounting: Vec<&PluginConfig> = config
        .plugins
        .iter()
        .filter(|p| {
            std::path::absolute(p.source.module_path()).ok() == std::path::absolute(file).ok()
        })
        .collect();
    // The module on its own. Unmounted, it is checked as a plugin of the defaults would run it;
    // mounted, within the largest memory any plugin may have (each mount's own limits come next).
    let (name, limits, preinitialize) = match mounting.first() {
        None => (
            file.file_stem()
                .map_or("plugin".into(), |s| s.to_string_lossy().into_owned()),
            config.plugin_defaults,
            true,
        ),
        Some(p) => (
            p.name.clone(),
            PluginLimits {
                max_memory_bytes: config.runtime.max_memory_bytes,
                ..p.limits
            },
            p.preinitialize,
        ),
    };
    let plugin = runtime
        .inspect_file_bytes(&name, file, &bytes, &limits, preinitialize)
        .with_context(|| format!("{} is not a valid wasmgate plugin", file.display()))?;
    print_module(file, &plugin);
    print_needs(&name, &plugin.needs());
    if mounting.is_empty() {
        println!(
            "not mounted by any plugin of {}: checked as [plugin_defaults], with no grants",
            config.source.display()
        );
        println!("  pre-initialized: {}", plugin.preinit());
        print_limits(&config.plugin_defaults);
        return Ok(());
    }
    drop(plugin);
    // Each plugin mounting the file is checked with its own grants and limits: one may accept
    // the module and another refuse it.
    let mut refused = Vec::new();
    for p in mounting {
        match runtime.load_file_bytes(&p.name, file, &bytes, &p.grants, &p.limits, p.preinitialize)
        {
            Ok(plugin) => {
                println!("plugin `{}` in {}: ok", p.name, config.source.display());
                println!("  pre-initialized: {}", plugin.preinit());
                print_limits(&p.limits);
                print_grants(p);
            }
            Err(err) => {
                println!(
                    "plugin `{}` in {}: refused",
                    p.name,
                    config.source.display()
                );
                refused.push(err.to_string());
            }
        }
    }
    anyhow::ensure!(
        refused.is_empty(),
        "{} is refused by the configuration: {}",
        file.display(),
        refused.join("; ")
    );
    Ok(())
}

/// The grants the module's imports call for, each with what to add to `[plugins.NAME]`.
fn print_needs(name: &str, needs: &[wasmgate_server::runtime::GrantNeed]) {
    if needs.is_empty() {
        println!("grants it will need: none");
        return;
    }
    println!(
        "grants it will need (from its imports, which name families only: the variables, stores \
         and hosts it uses are chosen at run time):"
    );
    for need in needs {
        println!(
            "  {} ({}): {}",
            need.family(),
            need.imports.join(", "),
            need.advice(name)
        );
    }
}

/// The module itself: version, hash, exports and imports.
fn print_module(file: &Path, plugin: &wasmgate_server::runtime::Plugin) {
    let (exports, imports) = plugin.describe();
    println!(
        "{}: ok, ABI version {}",
        file.display(),
        plugin.abi_version().number()
    );
    println!("sha256 {}", plugin.hash());
    println!("exports:");
    for (name, ty) in exports {
        println!("  {name:<24} {ty}");
    }
    println!("imports:");
    for (name, ty) in imports {
        println!("  {name:<40} {ty}");
    }
}

fn print_limits(limits: &PluginLimits) {
    println!(
        "  limits: fuel {}  deadline {:?}  memory {} bytes  response {} bytes",
        limits.fuel, limits.deadline, limits.max_memory_bytes, limits.max_response_bytes
    );
}

/// What the plugin is granted. Variables are listed by name and source; values never (a secret
/// must not reach a terminal or a CI log through `check`).
fn print_grants(p: &PluginConfig) {
    let g = &p.grants;
    let mut any = false;
    let mut line = |text: String| {
        any = true;
        println!("  grant: {text}");
    };
    if !g.env.is_empty() {
        line(format!("env {}", g.env.join(", ")));
    }
    for dir in &g.dirs {
        line(format!(
            "dir {} as {} (read-only)",
            dir.host.display(),
            dir.guest
        ));
    }
    if g.vars {
        let vars: Vec<String> = p
            .vars
            .describe()
            .map(|(name, source, secret)| {
                let secret = if secret { ", secret" } else { "" };
                format!("{name} ({source}{secret})")
            })
            .collect();
        line(format!("vars [{}]", vars.join(", ")));
    }
    if !g.kv.is_empty() {
        line(format!("kv {}", g.kv.join(", ")));
    }
    if !g.outbound.is_empty() {
        let hosts: Vec<String> = g.outbound.iter().map(ToString::to_string).collect();
        line(format!("allowed_outbound_hosts {}", hosts.join(", ")));
    }
    if !any {
        println!("  grants: none");
    }
    for (var, source) in p.vars.absent_here() {
        let what = match source {
            VarSource::Env(env) => format!("the environment variable {env} is not set"),
            VarSource::File(path) => format!("the file {} does not exist", path.display()),
            VarSource::Literal => continue,
        };
        println!(
            "  note: variable `{var}`: {what} here, so serving here would refuse the configuration \
             (`check` reads no values; add `optional = true` if it may be absent)"
        );
    }
}

/// Serves until SIGTERM/SIGINT. With `rebuild` (`up`) and watching, plugin sources are watched too.
fn serve(mut config: Config, args: &ServeArgs, rebuild: bool) -> anyhow::Result<()> {
    init_logging(args)?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    config.server.watch |= args.watch;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
        // Held for the server's life: dropping it stops watching the plugin sources.
        let _rebuilder = if rebuild && config.server.watch {
            crate::rebuild::spawn(&config, progress)
        } else {
            None
        };
        let running = wasmgate_server::Server::start(config).await?;
        running
            .handle_os_signals()
            .context("cannot install signal handlers")?;
        // A stable line on stdout, so scripts and tests can find the port when listening on :0.
        println!("wasmgate listening on http://{}", running.local_addr());
        running.stopped().await;
        Ok(())
    })
}

fn init_logging(args: &ServeArgs) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let directives = match &args.log_level {
        Some(level) => level.clone(),
        None => std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()),
    };
    let filter = EnvFilter::try_new(with_quiet_wasi_spans(&directives))
        .with_context(|| format!("invalid log filter `{directives}` (--log-level or RUST_LOG)"))?;
    // Colours only for a person at a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match args.log_format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
    Ok(())
}

/// `directives` plus `wasmtime_wasi=warn` unless they say something about `wasmtime_wasi`
/// themselves. wasmtime-wasi opens an INFO span around every WASI call (`fd_write{fd=Fd(1)
/// ciovs=*guest 0xffcb8/1}`): at the default level every line a guest prints would carry it, and
/// JSON logs a `span` of guest pointers. A guest's line should read as the guest wrote it, with
/// its plugin and request id; anyone debugging WASI itself can still ask for those spans.
fn with_quiet_wasi_spans(directives: &str) -> String {
    if directives.contains("wasmtime_wasi") {
        directives.to_string()
    } else if directives.trim().is_empty() {
        "wasmtime_wasi=warn".to_string()
    } else {
        format!("{directives},wasmtime_wasi=warn")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_the_message_already_quotes_is_printed_once() {
        let inner = std::io::Error::other("wasm trap: unreachable");
        let quoting = anyhow::Error::new(inner).context("guest trapped: wasm trap: unreachable");
        let err = quoting.context("x.wat is not a valid wasmgate plugin");
        assert_eq!(
            report(&err),
            "x.wat is not a valid wasmgate plugin: guest trapped: wasm trap: unreachable"
        );
        let plain = anyhow::Error::new(std::io::Error::other("denied")).context("cannot read a");
        assert_eq!(report(&plain), "cannot read a: denied");
    }

    #[test]
    fn wasi_call_spans_stay_quiet_unless_asked_for() {
        assert_eq!(with_quiet_wasi_spans("info"), "info,wasmtime_wasi=warn");
        assert_eq!(
            with_quiet_wasi_spans("debug,wasmtime_wasi=trace"),
            "debug,wasmtime_wasi=trace"
        );
        assert_eq!(with_quiet_wasi_spans(""), "wasmtime_wasi=warn");
    }
}
