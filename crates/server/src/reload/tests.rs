//! The loader's rules for services across reloads, on real config files and real stores: which
//! stores a reload keeps, opens, refuses and closes, the invariant that every grant of a served
//! plugin is bound to a service of its routing, what a reload reports, and which changes still
//! warn that they need a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Loader, Routing, restart_only_changes};
use crate::config::Config;
use crate::start::Parts;

/// A scratch directory holding a config file, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("wasmgate-reload-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn config(&self) -> PathBuf {
        self.path("wasmgate.toml")
    }

    /// Writes the config: plugin `v` (tests/guests/ok.wat) on `GET /v`, then `extra`.
    fn write(&self, extra: &str) {
        let text = format!(
            "[plugins.v]\nwasm = {:?}\n[[routes]]\nmethod = \"GET\"\npath = \"/v\"\nplugin = \"v\"\n{extra}",
            guest("ok")
        );
        std::fs::write(self.config(), text).unwrap();
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn guest(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/guests/{name}.wat"))
}

/// `[stores.snippets]` in the SQLite file `path`, and plugin `k` (kv_incr_v2.wat) granted it on
/// `GET /k`.
fn with_store(path: &Path) -> String {
    format!(
        "[stores.snippets]\npath = {path:?}\n[plugins.k]\nwasm = {:?}\nkv = [\"snippets\"]\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/k\"\nplugin = \"k\"\n",
        guest("kv_incr_v2")
    )
}

/// A loader serving `dir`'s config, first load done.
async fn loader(dir: &Dir) -> Arc<Loader> {
    let config = Config::from_file(&dir.config()).expect("a valid config");
    let parts = Parts::new(&config).expect("the server's parts");
    let report = parts.loader.load_all().await.expect("loads");
    assert!(report.refused.is_empty(), "{report:?}");
    parts.loader
}

/// The invariant of ARCHITECTURE.md: every grant of a served plugin names a service of the
/// routing it is served from, and its binding is that very service.
fn every_grant_is_bound(routing: &Routing) {
    for (name, served) in &routing.plugins {
        let grants = served.plugin.grants();
        for store in &grants.kv {
            let bound = served.env.kv.iter().find(|s| s.name() == store);
            let held = routing.services.stores.get(store);
            assert!(
                bound.zip(held).is_some_and(|(b, h)| Arc::ptr_eq(b, h)),
                "plugin `{name}` is granted store `{store}`: bound {bound:?}, routing holds {held:?}"
            );
        }
        assert_eq!(
            served.env.outbound.is_some(),
            !grants.outbound.is_empty(),
            "plugin `{name}`'s outbound client"
        );
    }
}

fn snippets(routing: &Routing) -> Arc<crate::kv::Store> {
    routing
        .services
        .stores
        .get("snippets")
        .expect("the routing holds the store")
        .clone()
}

#[tokio::test]
async fn stores_are_opened_kept_reopened_refused_and_closed_by_reloads() {
    let dir = Dir::new("stores");
    dir.write("");
    let loader = loader(&dir).await;
    every_grant_is_bound(&loader.current());

    // Added: opened before the swap, and the plugin granted it is bound to it.
    dir.write(&with_store(&dir.path("a.sqlite")));
    let report = loader.reload().await.unwrap();
    assert_eq!(report.stores_opened, ["snippets"], "{report:?}");
    assert_eq!(report.loaded, ["k"], "{report:?}");
    assert!(report.refused.is_empty(), "{report:?}");
    let routing = loader.current();
    every_grant_is_bound(&routing);
    let first = snippets(&routing);
    assert!(
        dir.path("a.sqlite").exists(),
        "opened and checked at reload"
    );

    // Unchanged: the same handle, nothing reopened.
    let report = loader.reload().await.unwrap();
    assert!(report.stores_opened.is_empty(), "{report:?}");
    assert_eq!(report.unchanged, ["k", "v"], "{report:?}");
    assert!(Arc::ptr_eq(&first, &snippets(&loader.current())));

    // Redefined (another file): a new store, and the unchanged module bound to it.
    dir.write(&with_store(&dir.path("b.sqlite")));
    let report = loader.reload().await.unwrap();
    assert_eq!(report.stores_opened, ["snippets"], "{report:?}");
    let routing = loader.current();
    every_grant_is_bound(&routing);
    let second = snippets(&routing);
    assert!(!Arc::ptr_eq(&first, &second));
    drop(routing);
    drop(first);

    // Redefined to a file that cannot be opened (its directory is a file): the plugin granted it
    // is refused with the store's error and keeps serving on the store it had.
    std::fs::write(dir.path("not-a-dir"), "").unwrap();
    dir.write(&with_store(&dir.path("not-a-dir/c.sqlite")));
    let report = loader.reload().await.unwrap();
    assert!(report.stores_opened.is_empty(), "{report:?}");
    assert_eq!(report.unchanged, ["v"], "{report:?}");
    let [refused] = &report.refused[..] else {
        panic!("k refused: {report:?}")
    };
    assert_eq!((refused.plugin.as_str(), refused.kind), ("k", "grant"));
    assert!(
        refused.message.contains(
            "grant `kv = [\"snippets\"]` cannot be honoured: store `snippets` cannot be opened"
        ),
        "{}",
        refused.message
    );
    let routing = loader.current();
    every_grant_is_bound(&routing);
    assert!(
        routing.plugins.contains_key("k"),
        "the running version serves"
    );
    assert!(Arc::ptr_eq(&second, &snippets(&routing)));
    drop(routing);

    // Removed with its plugin: closed, and gone from the routing.
    dir.write("");
    let report = loader.reload().await.unwrap();
    assert_eq!(report.stores_closed, ["snippets"], "{report:?}");
    let routing = loader.current();
    assert!(routing.services.stores.get("snippets").is_none());
    assert!(!routing.plugins.contains_key("k"));
    drop(routing);
    assert_eq!(
        Arc::strong_count(&second),
        1,
        "nothing else holds the removed store"
    );
}

/// A store that never opened refuses the plugin granted it, which (never loaded) stays absent;
/// the others reload; fixing the path brings both in.
#[tokio::test]
async fn a_new_store_that_cannot_be_opened_refuses_only_its_plugins() {
    let dir = Dir::new("unopenable");
    dir.write("");
    let loader = loader(&dir).await;
    std::fs::write(dir.path("not-a-dir"), "").unwrap();
    dir.write(&with_store(&dir.path("not-a-dir/s.sqlite")));
    let report = loader.reload().await.unwrap();
    assert_eq!(report.unchanged, ["v"], "{report:?}");
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert_eq!(report.refused[0].plugin, "k");
    let routing = loader.current();
    every_grant_is_bound(&routing);
    assert!(!routing.plugins.contains_key("k"));
    assert!(routing.services.stores.get("snippets").is_none());
    drop(routing);
    let metrics = loader.metrics.render();
    assert!(
        !metrics.contains(r#"wasmgate_kv_store_up{store="snippets"}"#),
        "{metrics}"
    );

    dir.write(&with_store(&dir.path("s.sqlite")));
    let report = loader.reload().await.unwrap();
    assert_eq!(report.loaded, ["k"], "{report:?}");
    assert_eq!(report.stores_opened, ["snippets"], "{report:?}");
    every_grant_is_bound(&loader.current());
}

#[tokio::test]
async fn a_reload_that_changes_only_variables_says_so_and_binds_them() {
    let dir = Dir::new("vars");
    let greet = |value: &str| {
        format!(
            "[plugins.g]\nwasm = {:?}\n[plugins.g.vars]\ngreeting = {value:?}\n\
             [[routes]]\nmethod = \"GET\"\npath = \"/g\"\nplugin = \"g\"\n",
            guest("greet_v2")
        )
    };
    dir.write(&greet("hello"));
    let loader = loader(&dir).await;
    let before = loader.current().plugins["g"].env.vars.clone();

    let report = loader.reload().await.unwrap();
    assert!(report.vars_changed.is_empty(), "{report:?}");
    assert_eq!(report.summary(), "reload done");

    dir.write(&greet("bonjour"));
    let report = loader.reload().await.unwrap();
    assert_eq!(report.vars_changed, ["g"], "{report:?}");
    assert_eq!(report.unchanged, ["g", "v"], "not recompiled: {report:?}");
    assert_eq!(report.summary(), "reload done; variables changed for g");
    assert_ne!(loader.current().plugins["g"].env.vars, before);
}

#[test]
fn only_restart_only_sections_warn_and_each_change_once() {
    let base = Config::parse("", Path::new("t.toml"), Path::new(".")).unwrap();
    let with = |text: &str| Config::parse(text, Path::new("t.toml"), Path::new(".")).unwrap();
    let timeouts = with("[timeouts]\nheader_read = \"3s\"\n");
    assert_eq!(restart_only_changes(&base, &base, &timeouts), ["timeouts"]);
    // Already reported: the running configuration has it.
    assert!(restart_only_changes(&base, &timeouts, &timeouts).is_empty());
    // Back to what the process runs with: nothing to say.
    assert!(restart_only_changes(&base, &timeouts, &base).is_empty());
    // Stores and outbound settings apply on reload.
    let services = with("[stores.s]\n[outbound]\nmax_redirects = 3\n");
    assert!(restart_only_changes(&base, &base, &services).is_empty());
}

/// A plugin refused while the store its running version uses leaves the configuration (here: its
/// grant is dropped, so its kv-importing module no longer validates): the running version keeps
/// its store, and so does the routing it is served from.
#[tokio::test]
async fn a_refused_plugins_running_version_keeps_a_removed_store() {
    let dir = Dir::new("retained");
    dir.write(&with_store(&dir.path("s.sqlite")));
    let loader = loader(&dir).await;
    let store = snippets(&loader.current());
    dir.write(&format!(
        "[plugins.k]\nwasm = {:?}\n[[routes]]\nmethod = \"GET\"\npath = \"/k\"\nplugin = \"k\"\n",
        guest("kv_incr_v2")
    ));
    let report = loader.reload().await.unwrap();
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert_eq!(report.refused[0].kind, "abi", "{report:?}");
    assert!(report.stores_closed.is_empty(), "{report:?}");
    let routing = loader.current();
    every_grant_is_bound(&routing);
    assert!(Arc::ptr_eq(&store, &snippets(&routing)));
}

/// `[outbound]` settings apply on reload; settings that cannot be applied (a `ca_file` that does
/// not exist) refuse the plugins allowed outbound hosts, whose running versions keep their client,
/// and no other plugin.
#[tokio::test]
async fn outbound_settings_apply_on_reload_or_refuse_the_plugins_that_call_out() {
    let dir = Dir::new("outbound");
    let caller = |outbound: &str| {
        format!(
            "[plugins.o]\nwasm = {:?}\nallowed_outbound_hosts = [\"http://127.0.0.1:*\"]\n\
             [[routes]]\nmethod = \"GET\"\npath = \"/o\"\nplugin = \"o\"\n[outbound]\n{outbound}",
            guest("ok")
        )
    };
    dir.write(&caller(""));
    let loader = loader(&dir).await;
    let first = loader.current().services.outbound.clone();

    dir.write(&caller(&format!(
        "ca_file = {:?}\n",
        dir.path("missing.pem")
    )));
    let report = loader.reload().await.unwrap();
    assert_eq!(report.unchanged, ["v"], "{report:?}");
    let [refused] = &report.refused[..] else {
        panic!("o refused: {report:?}")
    };
    assert_eq!((refused.plugin.as_str(), refused.kind), ("o", "grant"));
    assert!(
        refused.message.contains(
            "grant `allowed_outbound_hosts` cannot be honoured: the [outbound] settings cannot be applied"
        ),
        "{}",
        refused.message
    );
    let routing = loader.current();
    every_grant_is_bound(&routing);
    assert!(
        routing.plugins.contains_key("o"),
        "the running version serves"
    );
    assert!(Arc::ptr_eq(&first, &routing.services.outbound));
    drop(routing);

    dir.write(&caller("max_redirects = 2\n"));
    let report = loader.reload().await.unwrap();
    assert!(report.refused.is_empty(), "{report:?}");
    let routing = loader.current();
    every_grant_is_bound(&routing);
    assert_eq!(routing.services.outbound.settings().max_redirects, 2);
    assert!(!Arc::ptr_eq(&first, &routing.services.outbound));
}

/// A crate plugin added to the config before its first build (`wasmgate new` under `up --watch`)
/// is refused as not built yet, saying how to build it, not as an unreadable file; once its
/// module exists the next reload serves it.
#[tokio::test]
async fn a_crate_plugin_not_built_yet_is_refused_with_how_to_build_it() {
    let dir = Dir::new("not-built");
    dir.write("");
    let loader = loader(&dir).await;
    dir.write(
        "[plugins.other]\ncrate = \"plugins/other\"\n[[routes]]\nmethod = \"GET\"\npath = \"/o\"\nplugin = \"other\"\n",
    );
    let report = loader.reload().await.unwrap();
    let [refused] = &report.refused[..] else {
        panic!("{report:?}")
    };
    assert_eq!((refused.plugin.as_str(), refused.kind), ("other", "io"));
    assert!(
        refused.message.contains("not built yet") && refused.message.contains("wasmgate build"),
        "{}",
        refused.message
    );
    assert!(
        !refused.message.contains("cannot read"),
        "{}",
        refused.message
    );
    let module = dir.path("plugins/target/wasm32-wasip1/release/other.wasm");
    std::fs::create_dir_all(module.parent().unwrap()).unwrap();
    std::fs::write(&module, wat::parse_file(guest("ok")).unwrap()).unwrap();
    let report = loader.reload().await.unwrap();
    assert_eq!(report.loaded, ["other"], "{report:?}");
}
