//! The examples of docs/writing-plugins.md ("A fixed-window rate limit in one call", "The
//! clock"), as written there, run natively against the SDK's stand-ins: if one stops working,
//! the docs are wrong.

mod rate_limit {
    use std::time::Duration;
    use wasmgate_sdk::{Request, Response, kv::Store};

    const LIMIT: i64 = 100;
    const WINDOW: Duration = Duration::from_secs(60);

    fn handle(req: Request) -> Result<Response, Response> {
        let limits = Store::open("ratelimit")?;
        let key = format!("rl:{}", req.client_addr().unwrap_or("unknown"));
        if limits.incr_with_ttl(&key, 1, WINDOW)? > LIMIT {
            let left = limits.ttl(&key).ok().flatten().unwrap_or(WINDOW);
            return Err(Response::too_many_requests(left)); // 429, Retry-After: whole seconds, rounded up
        }
        Ok(Response::text(200, "ok"))
    }

    #[test]
    fn the_101st_request_of_a_minute_waits_for_the_window_to_close() {
        use wasmgate_sdk::testing;
        let req = || Request::builder().client_addr("192.0.2.7").build();
        for _ in 0..100 {
            assert_eq!(testing::call(handle, req()).status(), 200);
        }
        testing::advance_clock(Duration::from_millis(20_500)); // one clock: TTLs and time::now
        let refused = testing::call(handle, req());
        assert_eq!(refused.status(), 429);
        assert_eq!(refused.header_value("retry-after"), Some("40")); // 39.5 s left
        testing::advance_clock(Duration::from_millis(39_500));
        assert_eq!(testing::call(handle, req()).status(), 200); // a new window
    }
}

mod clock {
    use std::time::{Duration, SystemTime};
    use wasmgate_sdk::{Request, Response, kv::Store, testing, time};

    /// A maintenance window stored as the Unix second it ends; 503 with the wait until then.
    fn handle(_req: Request) -> Result<Response, Response> {
        let until: Option<u64> = Store::open("flags")?
            .get_text("maintenance_until")?
            .and_then(|s| s.parse().ok());
        let end = until.map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        let wait = end.and_then(|end| end.duration_since(time::now()).ok());
        match wait.filter(|w| !w.is_zero()) {
            Some(wait) => Ok(Response::error(503, "maintenance", "back soon")
                .header("Retry-After", time::retry_after_secs(wait).to_string())),
            None => Ok(Response::text(200, "open")),
        }
    }

    #[test]
    fn retry_after_counts_down_with_the_clock() {
        let end = testing::CLOCK_START_UNIX_MS / 1000 + 120;
        Store::open("flags")
            .unwrap()
            .set("maintenance_until", end.to_string())
            .unwrap();
        let get = || testing::call(handle, Request::builder().build());
        assert_eq!(get().header_value("retry-after"), Some("120"));
        testing::advance_clock(Duration::from_secs(90));
        assert_eq!(get().header_value("retry-after"), Some("30"));
        testing::advance_clock(Duration::from_secs(30));
        assert_eq!(get().status(), 200);
    }
}
