//! The closed vocabulary of metric labels: every label value the server exports that is not a
//! configured name (route pattern, plugin, store) is a variant of one of these enums.
//!
//! Producers (connections, dispatch, the runtime, the loader, the admission guard) record with
//! these values and never with strings, so a label value cannot be misspelt, a family's help text
//! is generated from the same list it is recorded with (it cannot go stale), and every value can
//! be exported at zero before it first happens. This module owns the words and what they mean; it
//! must not record or encode anything (that is `mod.rs` and `scrape.rs`).

/// A label value of a closed vocabulary.
pub(crate) trait LabelValue: Copy + Eq + std::fmt::Debug + Send + Sync + 'static {
    /// Every value, in exposition order.
    const ALL: &'static [Self];
    /// The value as exported.
    fn label(self) -> &'static str;
    /// What the value means, as a short phrase for the help text.
    fn meaning(self) -> &'static str;
}

/// `"<what> (label: value1 = meaning; value2 = meaning; ...)"`, the help text of a family labelled
/// with `T`.
pub(crate) fn help<T: LabelValue>(what: &str, label: &str) -> String {
    let values: Vec<String> = T::ALL
        .iter()
        .map(|v| format!("{} = {}", v.label(), v.meaning()))
        .collect();
    format!("{what} ({label}: {})", values.join("; "))
}

/// Declares a vocabulary enum with its labels and meanings, and its [`LabelValue`] impl.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $label:literal, $meaning:literal; )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum $name { $( $(#[$vmeta])* $variant, )* }

        impl LabelValue for $name {
            const ALL: &'static [Self] = &[ $( $name::$variant, )* ];
            fn label(self) -> &'static str {
                match self { $( $name::$variant => $label, )* }
            }
            fn meaning(self) -> &'static str {
                match self { $( $name::$variant => $meaning, )* }
            }
        }
    };
}

vocabulary! {
    /// Which deadline ran out: the `kind` of `wasmgate_timeouts_total`.
    TimeoutKind {
        HeaderRead => "header_read", "a request head not received whole in time (408)";
        BodyRead => "body_read", "a body stalled, no byte for body_read (408)";
        BodyTotal => "body_total", "a body not received whole within body_total (408)";
        Idle => "idle", "a keep-alive connection idle past the idle timeout (closed)";
        Write => "write", "a client that stopped reading its response (closed)";
    }
}

vocabulary! {
    /// Why a connection ended: the `reason` of `wasmgate_connections_closed_total`.
    CloseReason {
        ClientClosed => "client_closed", "the client closed or reset it";
        Requested => "requested", "the request asked for it (Connection: close, HTTP/1.0)";
        IdleTimeout => "idle_timeout", "idle past the idle timeout";
        HeaderTimeout => "header_timeout", "a head not received in time";
        BodyTimeout => "body_timeout", "a body not received in time";
        WriteTimeout => "write_timeout", "the client stopped reading";
        BadRequest => "bad_request", "a request refused for its framing or syntax";
        Io => "io_error", "a socket error other than a reset";
        Shutdown => "shutdown", "the server is shutting down";
        MaxRequests => "max_requests", "max_requests_per_connection reached";
        Forced => "forced", "still open at the end of the shutdown grace period";
    }
}

vocabulary! {
    /// Where a live connection is in its request cycle: the `state` of `wasmgate_connections`.
    ConnState {
        ReadingHead => "reading_head", "receiving a request head";
        ReadingBody => "reading_body", "receiving a request body";
        Dispatching => "dispatching", "a handler is producing the response";
        Writing => "writing", "writing the response";
        Idle => "idle", "keep-alive, waiting for the next request";
    }
}

vocabulary! {
    /// How a request for a plugin ended: the `outcome` of `wasmgate_plugin_calls_total`.
    CallOutcome {
        Ok => "ok", "the plugin answered";
        Trap => "trap", "it trapped or panicked (500)";
        MemoryLimit => "memory_limit", "it hit max_memory_bytes (500)";
        FuelExhausted => "fuel_exhausted", "it burnt its fuel (504)";
        Deadline => "deadline", "it ran past its deadline (504)";
        InvalidResponse => "invalid_response", "it answered bytes the host refuses (502)";
        Instantiate => "instantiate", "the host could not create an instance (500)";
        NotLoaded => "not_loaded", "the plugin is not loaded (503)";
        Overloaded => "overloaded", "max_concurrency and max_queue are full, or a host pool is (503)";
        Quarantined => "quarantined", "its circuit breaker is open (503)";
    }
}

vocabulary! {
    /// Why a plugin was not loaded: the `kind` of `wasmgate_plugin_last_error_info`.
    LoadErrorKind {
        Io => "io", "the module file could not be read";
        Compile => "compile", "not valid wasm, or it does not compile";
        Abi => "abi", "it does not follow the plugin ABI";
        Limits => "limits", "it needs more memory or table space than its limits allow";
        Grant => "grant", "a grant of its configuration cannot be honoured";
        Link => "link", "its imports cannot be linked";
        Check => "check", "the load-time check call failed";
    }
}

vocabulary! {
    /// Why a request was refused before calling its plugin: the `reason` of
    /// `wasmgate_plugin_rejected_total`.
    RejectReason {
        Overloaded => "overloaded", "queue full";
        Quarantined => "quarantined", "circuit breaker open";
    }
}

vocabulary! {
    /// The result of a (re)load: the `result` of `wasmgate_plugin_reloads_total` and
    /// `wasmgate_config_reloads_total`.
    ReloadResult {
        Ok => "ok", "swapped in";
        Refused => "refused", "refused, the previous version kept serving";
    }
}

vocabulary! {
    /// Why `accept` failed: the `kind` of `wasmgate_connections_rejected_total`.
    AcceptErrorKind {
        Emfile => "emfile", "out of file descriptors (process)";
        Enfile => "enfile", "out of file descriptors (system)";
        NoMem => "nomem", "out of memory or buffers";
        Aborted => "aborted", "the client gave up before accept";
        Other => "other", "any other accept error";
    }
}

vocabulary! {
    /// A key-value store operation: the `op` of `wasmgate_kv_operations_total`.
    KvOp {
        Get => "get", "read a value";
        Set => "set", "write a value";
        Delete => "delete", "remove a key";
        Exists => "exists", "check a key";
        Incr => "incr", "atomic increment";
        IncrTtl => "incr_ttl", "atomic increment, a TTL for the key it creates";
        Ttl => "ttl", "remaining time to live";
        Cas => "cas", "compare-and-swap";
        List => "list", "list keys by prefix";
        Ping => "ping", "health check";
    }
}

vocabulary! {
    /// How a store operation ended: the `outcome` of `wasmgate_kv_operations_total` (the ABI
    /// error code's name the plugin saw).
    KvOutcome {
        Ok => "ok", "done";
        NotFound => "not_found", "done: the key is absent";
        Conflict => "conflict", "done: compare-and-swap found another value";
        Invalid => "invalid", "refused: a malformed argument or a non-integer increment";
        TooLarge => "too_large", "refused: a key or value over its limit";
        LimitReached => "limit_reached", "refused: max_ops_per_request reached";
        Denied => "denied", "refused: store not granted";
        Unavailable => "unavailable", "failed: the backend is down";
        Timeout => "timeout", "failed: no answer within the timeout or the deadline";
    }
}

vocabulary! {
    /// How a plugin's outbound HTTP call ended: the `outcome` of
    /// `wasmgate_outbound_calls_total` (the ABI error code's name the plugin saw).
    OutboundOutcome {
        Ok => "ok", "the upstream answered (any status)";
        Denied => "denied", "not on the plugin's allow-list; no connection made";
        AddressBlocked => "address_blocked", "a guarded address (SSRF guard); no connection made";
        Dns => "dns", "the name did not resolve";
        Connect => "connect", "no connection could be made";
        Timeout => "timeout", "the call's bound or the request's deadline passed";
        TooLarge => "too_large", "the request or the response was over its cap";
        LimitReached => "limit_reached", "max_outbound_calls reached";
        Busy => "busy", "the plugin's max_outbound_concurrency was reached";
        Protocol => "protocol", "invalid HTTP, TLS failure or too many redirects";
        Invalid => "invalid", "a malformed URL, method or header";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distinct<T: LabelValue>() {
        let mut labels: Vec<&str> = T::ALL.iter().map(|v| v.label()).collect();
        let n = labels.len();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), n, "{:?} has a repeated label", T::ALL);
        for v in T::ALL {
            let l = v.label();
            assert!(
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{v:?}: label `{l}` is not snake_case"
            );
        }
    }

    /// Every vocabulary's labels are distinct snake_case words: what a dashboard may rely on.
    #[test]
    fn labels_are_distinct_snake_case() {
        distinct::<TimeoutKind>();
        distinct::<CloseReason>();
        distinct::<ConnState>();
        distinct::<CallOutcome>();
        distinct::<LoadErrorKind>();
        distinct::<RejectReason>();
        distinct::<ReloadResult>();
        distinct::<AcceptErrorKind>();
        distinct::<KvOp>();
        distinct::<KvOutcome>();
        distinct::<OutboundOutcome>();
    }

    #[test]
    fn help_lists_every_value_with_its_meaning() {
        let h = help::<TimeoutKind>("Timeouts", "kind");
        for v in TimeoutKind::ALL {
            assert!(
                h.contains(&format!("{} = {}", v.label(), v.meaning())),
                "{h}"
            );
        }
        assert!(h.starts_with("Timeouts (kind: header_read = "), "{h}");
    }
}
