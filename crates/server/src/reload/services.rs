//! The host services of the next routing: the key-value stores and the outbound HTTP service
//! plugins are bound to, carried from one routing to the next by a reload.
//!
//! Owns the rule of a service across a reload: kept as it is when its configuration is unchanged
//! (same handles, so no store is reopened and no connection pool is lost), set up anew, off the
//! request path and before the swap, when it changed, and reported [`Unavailable`] when that
//! fails, so that `build` refuses the plugins granted it instead of loading them with a grant
//! they cannot use. It also retires what a routing no longer holds from `/metrics` and `/ready`.
//! It must not decide which plugin loads (`build` does) nor swap anything (the `Loader` does).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::config::Config;
use crate::kv::Stores;
use crate::logsummary::LogSummary;
use crate::metrics::Metrics;
use crate::native::Probe;
use crate::outbound::Outbound;

/// The host services plugins are bound to in one routing.
#[derive(Debug, Clone)]
pub(crate) struct Services {
    pub(crate) stores: Arc<Stores>,
    pub(crate) outbound: Arc<Outbound>,
}

/// The services of a configuration that could not be set up, with the error of each: a plugin
/// granted one is refused (its running version keeps serving).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Unavailable {
    /// Stores whose (new) definition could not be opened, by name.
    pub(crate) stores: BTreeMap<String, String>,
    /// Why the new `[outbound]` settings could not be applied (e.g. an unreadable `ca_file`).
    pub(crate) outbound: Option<String>,
}

/// What a reload starts its build from: the services (not yet wrapped: the build adds the stores
/// a refused plugin's running version still holds) and what could not be set up.
#[derive(Debug)]
pub(crate) struct Next {
    pub(crate) stores: Stores,
    pub(crate) outbound: Arc<Outbound>,
    pub(crate) unavailable: Unavailable,
    /// Stores opened anew (added, or redefined).
    pub(crate) opened: Vec<String>,
}

impl Next {
    /// The services of `current` as they are: the first load, whose configuration is the one
    /// they were opened from at start.
    pub(crate) fn same(current: &Services) -> Next {
        Next {
            stores: (*current.stores).clone(),
            outbound: current.outbound.clone(),
            unavailable: Unavailable::default(),
            opened: Vec::new(),
        }
    }

    /// The services of `config`, from the running `current`: unchanged stores and outbound
    /// settings kept, changed ones set up (stores opened and checked once) before any routing
    /// uses them.
    pub(crate) async fn of(
        config: &Config,
        current: &Services,
        metrics: &Arc<Metrics>,
        log: &Arc<LogSummary>,
    ) -> Next {
        let reopened = current.stores.reopen(&config.stores, metrics, log).await;
        let mut unavailable = Unavailable {
            stores: reopened.failed,
            outbound: None,
        };
        let outbound = if *current.outbound.settings() == config.outbound {
            current.outbound.clone()
        } else {
            match Outbound::new(&config.outbound, metrics.clone()) {
                Ok(outbound) => {
                    tracing::info!("[outbound] settings applied");
                    Arc::new(outbound)
                }
                Err(err) => {
                    tracing::error!(error = %err, "[outbound] settings cannot be applied; the plugins allowed outbound hosts are refused");
                    unavailable.outbound = Some(err.to_string());
                    current.outbound.clone()
                }
            }
        };
        Next {
            stores: reopened.stores,
            outbound,
            unavailable,
            opened: reopened.opened,
        }
    }
}

/// After a swap from `old` to `new`: `/ready` follows `new`'s required stores, every store of
/// `new` shows its own state on `wasmgate_kv_store_up`, and a store name `new` no longer has
/// leaves it. The names that left, for the reload's report.
pub(crate) fn retire(
    old: &Services,
    new: &Services,
    metrics: &Metrics,
    probe: &Probe,
) -> Vec<String> {
    probe.set_stores(&new.stores);
    for store in new.stores.all() {
        store.publish_up();
    }
    let kept: BTreeSet<&str> = new.stores.all().map(|s| s.name()).collect();
    let mut closed = Vec::new();
    for store in old.stores.all() {
        if !kept.contains(store.name()) {
            metrics.kv_store_forget(store.name());
            tracing::info!(
                store = store.name(),
                "store closed: no plugin is granted it any more"
            );
            closed.push(store.name().to_string());
        }
    }
    closed
}
