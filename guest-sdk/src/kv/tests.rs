//! The key-value contract of docs/ABI.md ("The functions"), pinned through the public
//! [`Store`](super::Store) API against the native stand-in. A host backend (SQLite, Redis) must
//! answer every one of these the same way; each test names the rule it pins.

use super::*;
use crate::testing::{self, advance_clock, kv_deny};

fn store() -> Store {
    Store::open("contract").unwrap()
}

const SEC: Duration = Duration::from_secs(1);

#[test]
fn get_set_overwrite_and_binary_values() {
    let s = store();
    assert_eq!(s.get("k").unwrap(), None);
    s.set("k", "v1").unwrap();
    s.set("k", "v2").unwrap();
    assert_eq!(s.get("k").unwrap(), Some(b"v2".to_vec()));
    // Keys and values are bytes: empty, NUL and non-UTF-8 are all fine.
    s.set([0u8, 0xff], []).unwrap();
    assert_eq!(s.get([0u8, 0xff]).unwrap(), Some(Vec::new()));
    assert!(s.exists([0u8, 0xff]).unwrap(), "an empty value is present");
}

#[test]
fn stores_are_separate_namespaces() {
    Store::open("a").unwrap().set("k", "in a").unwrap();
    assert_eq!(Store::open("b").unwrap().get("k").unwrap(), None);
    assert_eq!(
        Store::open("a").unwrap().get_text("k").unwrap().as_deref(),
        Some("in a")
    );
}

#[test]
fn ttl_expires_when_the_clock_reaches_set_time_plus_ttl() {
    let s = store();
    s.set_with_ttl("k", "v", 2 * SEC).unwrap();
    advance_clock(2 * SEC - Duration::from_millis(1));
    assert_eq!(s.get("k").unwrap(), Some(b"v".to_vec()));
    advance_clock(Duration::from_millis(1));
    assert_eq!(s.get("k").unwrap(), None);
    assert!(!s.exists("k").unwrap());
    assert!(
        !s.delete("k").unwrap(),
        "an expired key is absent for delete too"
    );
}

#[test]
fn zero_ttl_means_no_expiry_and_set_clears_an_expiry() {
    let s = store();
    s.set_with_ttl("zero", "v", Duration::ZERO).unwrap();
    s.set_with_ttl("cleared", "v", SEC).unwrap();
    s.set("cleared", "w").unwrap();
    advance_clock(Duration::from_secs(1_000_000));
    assert!(s.exists("zero").unwrap());
    assert!(s.exists("cleared").unwrap());
}

#[test]
fn sub_millisecond_ttls_round_up_and_still_expire() {
    assert_eq!(ttl_ms(Duration::from_micros(1)), 1);
    assert_eq!(ttl_ms(Duration::from_micros(1500)), 2);
    assert_eq!(ttl_ms(Duration::from_millis(7)), 7);
    assert_eq!(ttl_ms(Duration::ZERO), 0);
    assert_eq!(ttl_ms(Duration::MAX), i64::MAX);
    let s = store();
    s.set_with_ttl("k", "v", Duration::from_micros(10)).unwrap();
    advance_clock(Duration::from_millis(1));
    assert!(!s.exists("k").unwrap());
}

#[test]
fn delete_reports_whether_something_was_deleted() {
    let s = store();
    assert!(!s.delete("k").unwrap());
    s.set("k", "v").unwrap();
    assert!(s.delete("k").unwrap());
    assert!(!s.exists("k").unwrap());
    assert!(!s.delete("k").unwrap());
}

#[test]
fn incr_counts_from_zero_and_stores_decimal_text() {
    let s = store();
    assert_eq!(s.incr("n", 5).unwrap(), 5);
    assert_eq!(s.incr("n", -7).unwrap(), -2);
    assert_eq!(s.get_text("n").unwrap().as_deref(), Some("-2"));
    assert_eq!(s.incr("n", 0).unwrap(), -2);
    // A value written as text by anyone is a counter too.
    s.set("m", "41").unwrap();
    assert_eq!(s.incr("m", 1).unwrap(), 42);
    // An expired counter starts over.
    s.set_with_ttl("t", "10", SEC).unwrap();
    advance_clock(SEC);
    assert_eq!(s.incr("t", 1).unwrap(), 1);
}

#[test]
fn incr_of_a_non_integer_or_an_overflow_is_invalid_and_changes_nothing() {
    let s = store();
    for bad in ["abc", "", " 1", "1.5", "+1", "01", "99999999999999999999"] {
        s.set("k", bad).unwrap();
        let err = s.incr("k", 1).unwrap_err();
        assert_eq!(err.errno, Errno::Invalid, "{bad:?}: {err}");
        assert_eq!(s.get_text("k").unwrap().as_deref(), Some(bad));
    }
    s.set("max", i64::MAX.to_string()).unwrap();
    assert_eq!(s.incr("max", 1).unwrap_err().errno, Errno::Invalid);
    assert_eq!(s.incr("max", -1).unwrap(), i64::MAX - 1);
}

#[test]
fn incr_keeps_an_expiry() {
    let s = store();
    s.set_with_ttl("k", "1", 2 * SEC).unwrap();
    advance_clock(SEC);
    assert_eq!(s.incr("k", 1).unwrap(), 2);
    advance_clock(SEC);
    assert!(
        !s.exists("k").unwrap(),
        "the expiry set before the incr still applies"
    );
}

#[test]
fn cas_with_none_creates_only_if_absent() {
    let s = store();
    assert!(s.compare_and_swap("k", None, "first").unwrap());
    assert!(!s.compare_and_swap("k", None, "second").unwrap());
    assert_eq!(s.get_text("k").unwrap().as_deref(), Some("first"));
    // An empty value is present: "absent" and "empty" differ.
    s.set("empty", "").unwrap();
    assert!(!s.compare_and_swap("empty", None, "x").unwrap());
}

#[test]
fn cas_with_a_value_swaps_only_on_an_exact_match() {
    let s = store();
    assert!(
        !s.compare_and_swap("k", Some(b"v"), "w").unwrap(),
        "absent is a conflict"
    );
    assert!(!s.exists("k").unwrap());
    s.set("k", "v").unwrap();
    assert!(!s.compare_and_swap("k", Some(b"V"), "w").unwrap());
    assert!(!s.compare_and_swap("k", Some(b"v "), "w").unwrap());
    assert!(s.compare_and_swap("k", Some(b"v"), "w").unwrap());
    assert_eq!(s.get_text("k").unwrap().as_deref(), Some("w"));
    s.set("e", "").unwrap();
    assert!(s.compare_and_swap("e", Some(b""), "filled").unwrap());
}

#[test]
fn cas_sees_expired_keys_as_absent_and_sets_its_own_ttl() {
    let s = store();
    s.set_with_ttl("k", "old", SEC).unwrap();
    advance_clock(SEC);
    assert!(!s.compare_and_swap("k", Some(b"old"), "new").unwrap());
    assert!(s.compare_and_swap_with_ttl("k", None, "new", SEC).unwrap());
    advance_clock(SEC);
    assert!(!s.exists("k").unwrap());
}

fn keys(page: &KeyPage) -> Vec<&str> {
    page.keys
        .iter()
        .map(|k| std::str::from_utf8(k).unwrap())
        .collect()
}

#[test]
fn list_is_ascending_byte_order_within_the_prefix() {
    let s = store();
    for k in ["b", "a/2", "a/10", "a/1", "a", "A", "a/\u{e9}", "ab"] {
        s.set(k, "").unwrap();
    }
    let all = s.list("", None, 100).unwrap();
    assert_eq!(
        keys(&all),
        ["A", "a", "a/1", "a/10", "a/2", "a/\u{e9}", "ab", "b"]
    );
    assert_eq!(all.next, None);
    let a = s.list("a/", None, 100).unwrap();
    assert_eq!(keys(&a), ["a/1", "a/10", "a/2", "a/\u{e9}"]);
    assert!(s.list("zzz", None, 10).unwrap().keys.is_empty());
}

#[test]
fn list_pages_strictly_after_the_cursor() {
    let s = store();
    for k in ["p1", "p2", "p3", "p4", "p5", "q"] {
        s.set(k, "").unwrap();
    }
    let first = s.list("p", None, 2).unwrap();
    assert_eq!(
        (keys(&first), first.next.as_deref()),
        (vec!["p1", "p2"], Some(&b"p2"[..]))
    );
    let second = s.list("p", first.next.as_deref(), 2).unwrap();
    assert_eq!(keys(&second), ["p3", "p4"]);
    let last = s.list("p", second.next.as_deref(), 2).unwrap();
    assert_eq!((keys(&last), last.next.as_deref()), (vec!["p5"], None));
    // An exactly full last page says there is nothing more.
    let exact = s.list("p", Some(b"p3"), 2).unwrap();
    assert_eq!(
        (keys(&exact), exact.next.as_deref()),
        (vec!["p4", "p5"], None)
    );
    // A cursor need not be a key: listing resumes after where it would sort.
    let between = s.list("", Some(b"p25"), 1).unwrap();
    assert_eq!(keys(&between), ["p3"]);
}

#[test]
fn list_skips_expired_keys() {
    let s = store();
    s.set("a", "").unwrap();
    s.set_with_ttl("b", "", SEC).unwrap();
    s.set("c", "").unwrap();
    advance_clock(SEC);
    assert_eq!(keys(&s.list("", None, 10).unwrap()), ["a", "c"]);
}

#[test]
fn list_pages_are_capped_by_max_list_keys_and_zero_asks_for_the_cap() {
    let s = store();
    let max = testing::KV_LIMITS.max_list_keys as usize;
    for i in 0..=max {
        s.set(format!("k{i:05}"), "").unwrap();
    }
    for limit in [0, u32::MAX] {
        let page = s.list("k", None, limit).unwrap();
        assert_eq!(page.keys.len(), max, "limit {limit}");
        assert_eq!(
            page.next.as_deref(),
            Some(format!("k{:05}", max - 1).as_bytes())
        );
    }
}

#[test]
fn a_ttl_past_max_ttl_is_too_large_and_writes_nothing() {
    let s = store();
    let max = testing::KV_LIMITS.max_ttl;
    s.set_with_ttl("k", "v", max).unwrap();
    let past = max + Duration::from_millis(1);
    for ttl in [past, Duration::MAX] {
        assert_eq!(
            s.set_with_ttl("t", "v", ttl).unwrap_err().errno,
            Errno::TooLarge
        );
        let err = s
            .compare_and_swap_with_ttl("t", None, "v", ttl)
            .unwrap_err();
        assert_eq!(err.errno, Errno::TooLarge);
    }
    assert!(!s.exists("t").unwrap());
    assert!(s.exists("k").unwrap());
}

#[test]
fn keys_and_values_over_the_limits_are_too_large() {
    let s = store();
    let limits = testing::KV_LIMITS;
    let key = vec![b'k'; limits.max_key_bytes];
    let value = vec![0u8; limits.max_value_bytes];
    s.set(&key, &value).unwrap();
    let long_key = vec![b'k'; limits.max_key_bytes + 1];
    let big_value = vec![0u8; limits.max_value_bytes + 1];
    assert_eq!(s.set(&long_key, "v").unwrap_err().errno, Errno::TooLarge);
    assert_eq!(s.set("k", &big_value).unwrap_err().errno, Errno::TooLarge);
    assert_eq!(s.get(&long_key).unwrap_err().errno, Errno::TooLarge);
    let err = s.compare_and_swap("k", None, &big_value).unwrap_err();
    assert_eq!(err.errno, Errno::TooLarge);
    assert_eq!(
        s.list(&long_key, None, 1).unwrap_err().errno,
        Errno::TooLarge
    );
    assert_eq!(
        s.list("", Some(&long_key), 1).unwrap_err().errno,
        Errno::TooLarge
    );
}

#[test]
fn one_request_may_make_a_bounded_number_of_operations_per_store() {
    let max = testing::KV_LIMITS.max_ops_per_request;
    // Outside a request (a test's own setup) nothing is counted.
    for _ in 0..=max {
        store().exists("k").unwrap();
    }
    let handler = |_req: crate::Request| -> Result<crate::Response, Error> {
        let s = Store::open("counted")?; // operation 1
        for _ in 1..max {
            s.incr("n", 1)?;
        }
        let refused = s.incr("n", 1).unwrap_err();
        assert_eq!(refused.errno, Errno::LimitReached);
        // Other stores have their own count.
        Store::open("other")?.set("k", "v")?;
        Ok(crate::Response::text(200, s.name().to_owned()))
    };
    let resp = testing::call(handler, crate::Request::builder().build());
    assert_eq!(resp.status(), 200);
    // The next request starts from zero.
    assert_eq!(
        testing::call(handler, crate::Request::builder().build()).status(),
        200
    );
    let counted = Store::open("counted").unwrap().get_text("n").unwrap();
    assert_eq!(counted, Some((2 * (max - 1)).to_string()));
}

#[test]
fn typed_helpers_report_bad_data_as_invalid() {
    let s = store();
    s.set_json("j", &serde_json::json!({"n": 1})).unwrap();
    let v: Option<serde_json::Value> = s.get_json("j").unwrap();
    assert_eq!(v.unwrap()["n"], 1);
    assert_eq!(s.get_json::<u32>("absent").unwrap(), None);
    s.set("bad", "{").unwrap();
    assert_eq!(
        s.get_json::<serde_json::Value>("bad").unwrap_err().errno,
        Errno::Invalid
    );
    s.set("bin", [0xffu8]).unwrap();
    assert_eq!(s.get_text("bin").unwrap_err().errno, Errno::Invalid);
}

#[test]
fn denied_stores_fail_every_operation() {
    kv_deny("secret");
    let err = Store::open("secret").unwrap_err();
    assert_eq!(err.errno, Errno::Denied);
    assert!(err.message.contains("secret"), "{err}");
    // A handle opened before the refusal fails too (the host checks every call).
    testing::kv_reset();
    let s = Store::open("secret").unwrap();
    kv_deny("secret");
    assert_eq!(s.get("k").unwrap_err().errno, Errno::Denied);
    assert_eq!(
        s.compare_and_swap("k", None, "v").unwrap_err().errno,
        Errno::Denied
    );
}

#[test]
fn kv_reset_forgets_data_and_refusals() {
    let s = store();
    s.set_with_ttl("k", "v", SEC).unwrap();
    kv_deny("d");
    testing::kv_reset();
    assert_eq!(s.get("k").unwrap(), None);
    assert!(Store::open("d").is_ok());
}

/// `incr_with_ttl` as the host's contract (kv::contract) has it: the TTL goes to the key the
/// call creates only; an existing key keeps its expiry or its lack of one; `max_ttl` is checked
/// first, key or no key; a refused call writes nothing.
#[test]
fn incr_with_ttl_gives_its_ttl_only_to_the_key_it_creates() {
    let s = store();
    assert_eq!(s.incr_with_ttl("w", 1, 10 * SEC).unwrap(), 1);
    advance_clock(4 * SEC);
    assert_eq!(s.incr_with_ttl("w", 1, 10 * SEC).unwrap(), 2);
    assert_eq!(s.ttl("w").unwrap(), Some(6 * SEC), "not extended");
    advance_clock(6 * SEC);
    assert_eq!(s.get("w").unwrap(), None, "closed on time");
    assert_eq!(
        s.incr_with_ttl("w", 5, 10 * SEC).unwrap(),
        5,
        "a new window"
    );
    s.set("forever", "1").unwrap();
    assert_eq!(s.incr_with_ttl("forever", 1, SEC).unwrap(), 2);
    assert_eq!(s.ttl("forever").unwrap(), None, "keeps having no expiry");
    assert_eq!(s.incr_with_ttl("zero", 1, Duration::ZERO).unwrap(), 1);
    assert_eq!(s.ttl("zero").unwrap(), None);
    let past = testing::KV_LIMITS.max_ttl + Duration::from_millis(1);
    for key in ["forever", "absent"] {
        assert_eq!(
            s.incr_with_ttl(key, 1, past).unwrap_err().errno,
            Errno::TooLarge
        );
    }
    assert_eq!(s.get_text("forever").unwrap().as_deref(), Some("2"));
    assert!(!s.exists("absent").unwrap());
    s.set("word", "ten").unwrap();
    assert_eq!(
        s.incr_with_ttl("word", 1, SEC).unwrap_err().errno,
        Errno::Invalid
    );
}

/// `ttl` rounds what is left up to whole milliseconds (a live key has at least 1 ms), and
/// tells "no expiry" (`None`) from "absent" (`not_found`).
#[test]
fn ttl_rounds_up_and_tells_forever_from_gone() {
    let s = store();
    s.set_with_ttl("k", "v", Duration::from_millis(10)).unwrap();
    advance_clock(Duration::from_micros(9_500));
    assert_eq!(s.ttl("k").unwrap(), Some(Duration::from_millis(1)));
    advance_clock(Duration::from_micros(500));
    assert_eq!(s.ttl("k").unwrap_err().errno, Errno::NotFound);
    s.set("f", "v").unwrap();
    assert_eq!(s.ttl("f").unwrap(), None);
    let long = "k".repeat(testing::KV_LIMITS.max_key_bytes + 1);
    assert_eq!(s.ttl(long).unwrap_err().errno, Errno::TooLarge);
}

/// One clock: `time::now` and the stores' expiries move together.
#[test]
fn the_clock_of_time_now_is_the_clock_of_expiries() {
    let s = store();
    let start = crate::time::now();
    s.set_with_ttl("k", "v", 90 * SEC).unwrap();
    advance_clock(30 * SEC);
    let elapsed = crate::time::now().duration_since(start).unwrap();
    assert_eq!(elapsed + s.ttl("k").unwrap().unwrap(), 90 * SEC);
    testing::reset();
    assert_eq!(crate::time::now(), start, "reset puts the clock back");
}
