//! The in-memory stand-in for `var_get`: the variables a plugin sees when it runs natively.
//!
//! It owns a per-thread table that tests fill with [`set_var`] and empty with [`clear_vars`],
//! and answers `var_get` from it at the ABI level (the value's bytes, or `not_found` with a
//! message), like the host answers from `[plugins.NAME.vars]`. It must not read the process
//! environment: a test's result must not depend on the machine running it.

use crate::outcome::Outcome;
use crate::wire::Errno;
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    static VARS: RefCell<HashMap<Vec<u8>, Vec<u8>>> = RefCell::new(HashMap::new());
}

/// Sets the variable `name` for this thread's stand-in, as `[plugins.NAME.vars]` would.
///
/// ```
/// wasmgate_sdk::testing::set_var("api_base", "https://api.example.com");
/// assert_eq!(wasmgate_sdk::var("api_base").as_deref(), Some("https://api.example.com"));
/// ```
pub fn set_var(name: &str, value: &str) {
    VARS.with_borrow_mut(|vars| vars.insert(name.as_bytes().to_vec(), value.as_bytes().to_vec()));
}

/// Removes every variable set with [`set_var`] on this thread.
///
/// ```
/// wasmgate_sdk::testing::set_var("a", "1");
/// wasmgate_sdk::testing::clear_vars();
/// assert_eq!(wasmgate_sdk::var("a"), None);
/// ```
pub fn clear_vars() {
    VARS.with_borrow_mut(HashMap::clear);
}

pub(crate) fn var_get(name: &[u8]) -> Outcome {
    match VARS.with_borrow(|vars| vars.get(name).cloned()) {
        Some(value) => Outcome::ok(value),
        None => Outcome::fail(
            Errno::NotFound,
            format!(
                "no variable `{}` (set it with testing::set_var)",
                String::from_utf8_lossy(name)
            ),
        ),
    }
}
