//! The plugin's connections to one destination: never more than `max_outbound_concurrency` open
//! (idle pooled ones included), their places given back whenever they close, one destination's
//! connections never starving another's, and a call or connection past the cap failing `busy`.

use super::*;

/// `n` concurrent calls of `c` to `url`, each of which must answer 200.
async fn all_answer_200(c: &Arc<PluginClient>, url: &str, n: usize) {
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let (c, url) = (c.clone(), url.to_string());
            tokio::spawn(async move {
                c.send(get(&url), &Forwarded::default(), later(), None)
                    .await
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_cap_bounds_connections_to_the_upstream() {
    let up = Upstream::start(Script::Slow(Duration::from_millis(30))).await;
    let c = capped(4);
    let url = up.url("/");
    all_answer_200(&c, &url, 24).await;
    let peak = up.peak.load(Ordering::SeqCst);
    assert!(peak <= 4, "{peak} connections open at once");
    assert!(
        up.accepted() <= 4,
        "connections are reused: {}",
        up.accepted()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_never_opens_more_connections_to_one_upstream_than_the_cap() {
    // Many more calls than places, each answer complete a moment after it starts: the case where
    // hyper-util's pool, racing a new connect against a connection on its way back, opens one
    // more connection than the calls in flight. Without the connection's permit this opens 17 to
    // 24 connections here, every run.
    const CAP: u32 = 16;
    let up = Upstream::start(Script::Chunked).await;
    let c = capped(CAP);
    let url = up.url("/");
    for _round in 0..5 {
        all_answer_200(&c, &url, 200).await;
        assert!(open_to(&c, &url) <= CAP as usize);
    }
    let peak = up.peak.load(Ordering::SeqCst);
    assert!(peak <= CAP as usize, "{peak} connections open at once");
    assert!(
        up.accepted() <= CAP as usize,
        "connections are reused, none replaced: {}",
        up.accepted()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn places_come_back_when_connections_close_idle_or_by_the_upstream() {
    // The pool's idle timeout closes them: shortened here from 30 s.
    let up = Upstream::start(Script::Slow(Duration::from_millis(50))).await;
    let mut service =
        Outbound::new(&settings(|_| {}), Arc::new(Metrics::new(Sources::none()))).unwrap();
    service.idle_timeout = Duration::from_millis(300);
    let c = client_of(&service, |b| b.max_concurrency = 2, &["http://127.0.0.1:*"]);
    let url = up.url("/");
    let none = Forwarded::default();
    let (a, b) = tokio::join!(
        c.send(get(&url), &none, later(), None),
        c.send(get(&url), &none, later(), None)
    );
    assert_eq!((a.unwrap().status, b.unwrap().status), (200, 200));
    assert_eq!(
        open_to(&c, &url),
        2,
        "both connections idle in the pool, holding their places"
    );
    assert!(
        eventually(Duration::from_secs(3), || open_to(&c, &url) == 0).await,
        "{} places still taken after the idle timeout",
        open_to(&c, &url)
    );
    assert!(
        eventually(Duration::from_secs(1), || up.open.load(Ordering::SeqCst)
            == 0)
        .await,
        "the upstream saw them closed"
    );

    // The upstream closes them (after answering, without `Connection: close`).
    let up = Upstream::start(Script::OkThenClose).await;
    let c = client(&settings(|_| {}), &["http://127.0.0.1:*"]);
    let url = up.url("/");
    for _ in 0..3 {
        let answer = c
            .send(get(&url), &Forwarded::default(), later(), None)
            .await;
        assert_eq!(answer.unwrap().status, 200);
        assert!(
            eventually(Duration::from_secs(2), || open_to(&c, &url) == 0).await,
            "{} places still taken after the upstream closed",
            open_to(&c, &url)
        );
    }
    assert_eq!(up.accepted(), 3, "a closed connection is never reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_to_one_destination_do_not_starve_another() {
    let first = Upstream::start(Script::Slow(Duration::from_millis(50))).await;
    let second = Upstream::start(Script::Ok).await;
    let c = capped(2);
    let to_first = first.url("/");
    let none = Forwarded::default();
    let (a, b) = tokio::join!(
        c.send(get(&to_first), &none, later(), None),
        c.send(get(&to_first), &none, later(), None)
    );
    assert_eq!((a.unwrap().status, b.unwrap().status), (200, 200));
    assert_eq!(
        open_to(&c, &first.url("/")),
        2,
        "the first's places are all taken"
    );
    // Every place of the first destination is held by an idle connection for 30 s; the second
    // destination has places of its own.
    let started = Instant::now();
    let answer = c
        .send(get(&second.url("/")), &Forwarded::default(), later(), None)
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        open_to(&c, &first.url("/")),
        2,
        "and the first's were not closed for it"
    );
    assert_eq!(second.accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_the_cap_waits_until_its_bound_then_fails_busy() {
    let up = Upstream::start(Script::Slow(Duration::from_millis(1500))).await;
    let c = capped(1);
    let url = up.url("/");
    let first = {
        let (c, url) = (c.clone(), url.clone());
        tokio::spawn(async move {
            c.send(get(&url), &Forwarded::default(), later(), None)
                .await
        })
    };
    assert!(eventually(Duration::from_secs(2), || up.accepted() == 1).await);
    // The second call's bound (here the inbound deadline less the default 200 ms reserve kept for
    // the guest's answer) passes while the first holds the place.
    let started = Instant::now();
    let deadline = started + Duration::from_millis(500);
    let err = c
        .send(get(&url), &Forwarded::default(), deadline, None)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, OutboundError::Busy { .. }), "{err}");
    assert!(
        err.to_string().contains("max_outbound_concurrency"),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1200),
        "{took:?}"
    );
    assert_eq!(up.accepted(), 1, "the busy call made no connection");
    assert_eq!(first.await.unwrap().unwrap().status, 200);
    // A call that finds a place when one comes free before its bound is not busy.
    let answer = c
        .send(get(&url), &Forwarded::default(), later(), None)
        .await;
    assert_eq!(answer.unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_past_the_destinations_places_waits_connect_timeout_then_fails_busy() {
    // The connector alone, as hyper-util's pool calls it when it wants one more connection: the
    // calls' own cap keeps real calls from getting here while every place is held.
    use tower_service::Service as _;
    let up = Upstream::start(Script::Ok).await;
    let allow: Arc<[AllowEntry]> = [AllowEntry::parse("http://127.0.0.1:*").unwrap()].into();
    let places = Arc::new(connector::Places::new(2));
    let mut connector = connector::Connector::new(
        "p",
        GuardedResolver::new(Default::default(), allow),
        tls::client_config(None).unwrap(),
        Duration::from_millis(300),
        places.clone(),
    );
    let uri: hyper::Uri = up.url("/").parse().unwrap();
    let destination = connector::Destination::of(&uri).unwrap();
    let first = connector.call(uri.clone()).await.unwrap();
    let second = connector.call(uri.clone()).await.unwrap();
    assert_eq!(places.open(&destination), 2, "the cap reached");
    let started = Instant::now();
    let err = match connector.call(uri.clone()).await {
        Ok(_) => panic!("a third connection under a cap of 2"),
        Err(e) => e,
    };
    let took = started.elapsed();
    assert!(matches!(err, OutboundError::Busy { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("connections open to http://127.0.0.1:"),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(up.accepted(), 2, "the busy connect made no connection");
    // A connection closed gives its place back: the next connect gets it.
    drop(first);
    let third = connector.call(uri.clone()).await.unwrap();
    assert_eq!(places.open(&destination), 2);
    drop((second, third));
    assert_eq!(places.open(&destination), 0);
}

/// A place among the calls in flight that comes free only as the waiting call's bound passes is
/// no place: `busy`. Calls in flight often end at their own bounds, and a waiter that started in
/// the same timer tick has the same bound; before, `timeout_at` polled the wait first, handed the
/// waiter that place with no time left, and the call failed `timeout` a moment later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_place_freed_only_as_the_bound_passes_is_busy_never_timeout() {
    let up = Upstream::start(Script::Ok).await;
    let c = capped(1);
    let url = up.url("/");
    // A pooled connection, so the exchange would start at once if the call got its place.
    let warm = c
        .send(get(&url), &Forwarded::default(), later(), None)
        .await;
    assert_eq!(warm.unwrap().status, 200);
    for round in 0..3 {
        let held = c.calls.try_acquire().expect("the only place");
        let deadline = Instant::now() + Duration::from_millis(500);
        // The call's bound: the deadline less the reserve (its timeout is 5 s).
        let bound = deadline - c.bounds.reserve;
        let release = async move {
            tokio::time::sleep_until(bound.into()).await;
            drop(held);
        };
        let none = Forwarded::default();
        let call = c.send(get(&url), &none, deadline, None);
        let ((), result) = tokio::join!(biased; release, call);
        let err = result.expect_err("no place before the bound");
        assert!(
            matches!(err, OutboundError::Busy { .. }),
            "round {round}: {err}"
        );
        assert!(
            err.to_string().contains("outbound calls in flight"),
            "{err}"
        );
    }
    assert_eq!(
        up.received(),
        1,
        "no call past the cap reached the upstream"
    );
}

/// A call that has its place among the calls in flight but finds every connection place of its
/// destination taken (here held by the test, as a connection hyper has not closed yet holds it
/// after a call timed out mid-answer) waits for one until its own bound, not `connect_timeout`,
/// and then fails `busy`: it never got a connection, so it has not timed out. Before, the
/// connector waited up to `connect_timeout` (2 s) and the call's bound ended it as `timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_a_connection_place_by_its_bound_fails_busy_never_timeout() {
    let up = Upstream::start(Script::Ok).await;
    let c = capped(1);
    let url = up.url("/");
    let uri: hyper::Uri = url.parse().unwrap();
    let closing = c
        .connections
        .take(&connector::Destination::of(&uri).unwrap());
    let started = Instant::now();
    let deadline = started + Duration::from_millis(500);
    let err = c
        .send(get(&url), &Forwarded::default(), deadline, None)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, OutboundError::Busy { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("connections open to http://127.0.0.1:"),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1000),
        "{took:?}"
    );
    assert_eq!(up.accepted(), 0, "the busy call made no connection");
    // The place back, the next call connects.
    drop(closing);
    let answer = c
        .send(get(&url), &Forwarded::default(), later(), None)
        .await;
    assert_eq!(answer.unwrap().status, 200);
    assert_eq!(open_to(&c, &url), 1);
}
