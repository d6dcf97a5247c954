//! Configuration variables: [`var`] and [`try_var`], the values of the plugin's
//! `[plugins.NAME.vars]` table (docs/ABI.md, `var_get`).
//!
//! This module owns the presentation of `var_get`: "not found" is `None`, the value is text. It
//! must not cache (an instance lives for one request, and the host may reload the
//! configuration between requests) nor read the process environment, which is WASI's and empty
//! unless granted. Natively the values come from [`testing::set_var`](crate::testing::set_var).

use crate::error::Error;
use crate::host;
use crate::wire::Errno;

/// The variable `name` from the plugin's `[plugins.NAME.vars]` table, or `None` when it has no
/// such variable.
///
/// Any other failure (the host refused the call) is also `None`, after a line on stderr, so
/// that a missing setting and a broken one degrade the same way; use [`try_var`] to tell them
/// apart. A plugin that imports this needs the table in its configuration, even empty: without
/// it the host refuses to load the plugin, naming the grant to add.
///
/// ```
/// use wasmgate_sdk::testing;
///
/// testing::set_var("greeting", "Hi");
/// assert_eq!(wasmgate_sdk::var("greeting").as_deref(), Some("Hi"));
/// assert_eq!(wasmgate_sdk::var("missing"), None);
/// ```
pub fn var(name: &str) -> Option<String> {
    match try_var(name) {
        Ok(value) => value,
        Err(e) => {
            eprintln!("wasmgate-sdk: reading variable `{name}` failed: {e}");
            None
        }
    }
}

/// The variable `name`: `Ok(None)` when the plugin has no such variable, `Err` when the host
/// could not answer (e.g. `invalid` for a name that is not UTF-8 on the host's side, or a value
/// that is not UTF-8 here).
///
/// ```
/// use wasmgate_sdk::{testing, try_var};
///
/// testing::set_var("limit", "10");
/// let limit: u32 = try_var("limit")?.map_or(Ok(5), |v| v.parse())?;
/// assert_eq!(limit, 10);
/// assert_eq!(try_var("nope")?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn try_var(name: &str) -> Result<Option<String>, Error> {
    match host::var_get(name) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|e| {
            Error::protocol(format!(
                "variable `{name}` is not UTF-8 text (the ABI promises text): {e}"
            ))
        }),
        Err(e) if e.errno == Errno::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn set_and_cleared_variables() {
        testing::set_var("a", "1");
        testing::set_var("a", "2");
        testing::set_var("empty", "");
        assert_eq!(var("a").as_deref(), Some("2"));
        assert_eq!(var("empty").as_deref(), Some(""));
        assert_eq!(var("A"), None, "names are exact");
        testing::clear_vars();
        assert_eq!(try_var("a"), Ok(None));
    }
}
