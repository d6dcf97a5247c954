//! The rate limit on `POST /links`: at most `create_limit_per_minute` creations per client and
//! fixed one-minute window, when that variable is set; unset or empty, creation is unlimited.
//!
//! One store call per request admits it: `incr_with_ttl` on the client's key opens the
//! window (the key expires with it) at the client's first creation and counts into it after.
//! Only a refusal makes a second call, `ttl`, for the `Retry-After` of the 429: the seconds left
//! in the window. The client is the host's `client_addr` (the forwarded client behind a trusted
//! proxy). It must not know about links themselves.

use std::time::Duration;

use wasmgate_sdk::{Request, Response};

use crate::store::{Links, failure};

/// The length of a window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// The variable that sets the limit (a positive integer; unset or empty: no limit).
pub(crate) const VAR: &str = "create_limit_per_minute";

/// Admits one creation by the request's client, or answers 429 with `Retry-After`. A limit that
/// is not a positive integer is the configuration's fault: 500, naming the variable, so a typo
/// never silently lifts the limit.
pub(crate) fn admit(req: &Request) -> Result<(), Response> {
    let Some(limit) = wasmgate_sdk::try_var(VAR)
        .map_err(Response::from)?
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(());
    };
    let limit: i64 = match limit.trim().parse() {
        Ok(n) if n > 0 => n,
        _ => {
            eprintln!("links: the variable `{VAR}` is {limit:?}, not a positive integer");
            return Err(Response::error(
                500,
                "misconfigured",
                format!("the variable `{VAR}` is not a positive integer"),
            ));
        }
    };
    let links = Links::open().map_err(failure)?;
    let client = req.client_addr().unwrap_or("unknown");
    if links.count_creation(client, WINDOW).map_err(failure)? <= limit {
        return Ok(());
    }
    // `None`: the window closed between the two calls; the client may try at once
    // (`Retry-After` is at least 1).
    let wait = links
        .window_left(client)
        .map_err(failure)?
        .unwrap_or_default();
    Err(Response::too_many_requests(wait))
}
