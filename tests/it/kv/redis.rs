//! Key-value stores on Redis (a real `redis-server` per test): two processes on one server see
//! each other's writes at once and count every click; an outage (the server hung, then killed,
//! then back) costs each request the plugin's 503 within its deadline and service resumes by
//! itself; a required store that is down makes `/ready` say so.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};

use super::{
    Bounds, Client, DEADLINE, MARGIN, Reply, counts_every_click_from_two_processes,
    ensure_links_reported_down, kv_ops, limit_creations, limits_creations_across_processes,
    reads_its_writes_across_processes, redis_site, store_up, two_processes,
};
use crate::support::{RedisServer, exclusive_network, get, scrape, try_eventually};

#[test]
fn a_link_created_on_one_process_is_read_at_once_on_another() -> anyhow::Result<()> {
    let (site, _redis) = redis_site("kv-redis-ryw", "", Bounds::Patient)?;
    let (a, b) = two_processes(&site)?;
    reads_its_writes_across_processes(&a, &b)
}

#[test]
fn two_processes_share_one_rate_limit_window_and_answer_429_with_retry_after() -> anyhow::Result<()>
{
    let (site, _redis) = redis_site("kv-redis-limit", "", Bounds::Patient)?;
    limit_creations(&site, 3)?;
    let (a, b) = two_processes(&site)?;
    limits_creations_across_processes(&a, &b)
}

#[test]
fn two_processes_count_8000_concurrent_clicks_exactly() -> anyhow::Result<()> {
    let _calm = exclusive_network();
    let (site, _redis) = redis_site("kv-redis-clicks", "", Bounds::Patient)?;
    let (a, b) = two_processes(&site)?;
    counts_every_click_from_two_processes(&a, &b)
}

/// One answer under the outage, and how long it took.
struct Timed {
    at: Instant,
    took: Duration,
    reply: Reply,
}

#[test]
fn stopped_mid_load_costs_a_503_within_the_deadline_then_service_resumes_by_itself()
-> anyhow::Result<()> {
    const CLIENTS: usize = 4;
    let _calm = exclusive_network();
    let (site, mut redis) = redis_site("kv-redis-outage", "", Bounds::Defaults)?;
    let port = redis.port();
    let server = site.serve()?;
    let addr = server.addr();
    let url = "https://example.org/outage";
    Client::new(addr).create(url, Some("outage"))?;

    let stop = AtomicBool::new(false);
    let (answers, phases) = std::thread::scope(|s| -> anyhow::Result<(Vec<Timed>, Phases)> {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<Vec<Timed>> {
                    let mut client = Client::new(addr);
                    let mut answers = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        let at = Instant::now();
                        let reply = client
                            .get("/l/outage")
                            .with_context(|| format!("after {} answers", answers.len()))?;
                        answers.push(Timed {
                            at,
                            took: at.elapsed(),
                            reply,
                        });
                    }
                    Ok(answers)
                })
            })
            .collect();
        let phases = (|| -> anyhow::Result<Phases> {
            std::thread::sleep(Duration::from_millis(300));
            // Hung: the server accepts and never answers (SIGSTOP), so every operation waits for
            // its bound. Then down: the process is gone (SIGKILL), connections are refused.
            let hung = Instant::now();
            redis.signal(libc::SIGSTOP)?;
            std::thread::sleep(Duration::from_millis(1500));
            outage_checks(addr, "redis-server hung")?;
            let down = Instant::now();
            redis.stop(libc::SIGKILL)?;
            std::thread::sleep(Duration::from_millis(1000));
            outage_checks(addr, "redis-server down")?;
            // Back on the same port, empty (it keeps nothing on disk): the link is gone, so the
            // clients get 404 until it is created again, then 302. wasmgate is not touched.
            let back = Instant::now();
            redis = RedisServer::start_on(port, site.dir())?;
            let recreated = try_eventually(Duration::from_secs(10), || {
                let reply = Client::new(addr).post_link(url, Some("outage"))?;
                match reply.status {
                    201 => Ok(true),
                    503 => Ok(false),
                    _ => bail!("re-creating the link: {reply:?}"),
                }
            })?;
            ensure!(
                recreated,
                "the store did not come back within 10 s of redis-server"
            );
            println!(
                "kv: the store answered again {:?} after redis-server restarted",
                back.elapsed()
            );
            std::thread::sleep(Duration::from_millis(300));
            Ok(Phases { hung, down, back })
        })();
        stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        for c in clients {
            all.extend(
                c.join()
                    .map_err(|_| anyhow::anyhow!("a client thread panicked"))??,
            );
        }
        Ok((all, phases?))
    })?;

    // Every answer within the deadline (and the margin), and the one its moment calls for: 302
    // before the outage; 302 or the plugin's 503 during it; 404 (the link went with the data), 503
    // or 302 after redis-server is back; 302 at the end.
    let mut counts: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    for Timed { at, took, reply } in &answers {
        ensure!(
            *took < DEADLINE + MARGIN,
            "an answer took {took:?} (deadline {DEADLINE:?}): {reply:?}"
        );
        let done = *at + *took;
        let phase = if done < phases.hung {
            "before"
        } else if done < phases.down {
            "hung"
        } else if done < phases.back {
            "down"
        } else {
            "back"
        };
        let expected = match (phase, reply.status) {
            (_, 302) => true,
            ("hung" | "down" | "back", 503) => {
                reply.error_kind().as_deref() == Some("store_unavailable")
                    && reply.retry_after.is_some()
            }
            ("back", 404) => true,
            _ => false,
        };
        ensure!(
            expected,
            "{phase}: {reply:?} ({:?} after the start of the outage)",
            done.saturating_duration_since(phases.hung)
        );
        *counts.entry((phase, reply.status)).or_insert(0) += 1;
    }
    for phase in ["hung", "down"] {
        ensure!(
            counts.get(&(phase, 503)).is_some_and(|n| *n >= 1),
            "no 503 while redis-server was {phase}: {counts:?}"
        );
    }
    let last = answers.iter().max_by_key(|t| t.at).context("no answers")?;
    ensure!(
        last.reply.status == 302,
        "served again at the end: {:?}",
        last.reply
    );
    println!(
        "kv: redis outage: answers by (phase, status) {counts:?}, slowest {:?}",
        answers.iter().map(|t| t.took).max()
    );
    // Up again at the next health check (every 2 s), not at the first answer.
    let up = try_eventually(Duration::from_secs(5), || {
        Ok(store_up(&scrape(addr)?) == Some(1.0))
    })?;
    ensure!(up, "the store is not reported up again");
    let metrics = scrape(addr)?;
    let failed = kv_ops(&metrics, "get", "unavailable") + kv_ops(&metrics, "get", "timeout");
    ensure!(failed >= 1.0, "failed gets counted:\n{metrics}");
    drop(redis);
    Ok(())
}

/// When redis-server was stopped (SIGSTOP), killed (SIGKILL) and started again.
struct Phases {
    hung: Instant,
    down: Instant,
    back: Instant,
}

/// During an outage: alive, and the store reported down.
fn outage_checks(addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    let health = get(addr, "/health")?;
    ensure!(health.status == 200, "{what}: /health {}", health.status);
    let metrics = scrape(addr)?;
    ensure!(
        store_up(&metrics) == Some(0.0),
        "{what}: store up?\n{metrics}"
    );
    Ok(())
}

#[test]
fn a_required_store_that_is_down_makes_ready_503_until_it_is_back() -> anyhow::Result<()> {
    let (site, mut redis) = redis_site("kv-required", "required = true", Bounds::Defaults)?;
    let port = redis.port();
    let server = site.serve()?;
    let addr = server.addr();
    ensure!(get(addr, "/ready")?.status == 200);

    redis.stop(libc::SIGKILL)?;
    ensure_links_reported_down(addr, "with the required store down")?;

    let _redis = RedisServer::start_on(port, site.dir())?;
    let ready_again = try_eventually(Duration::from_secs(10), || {
        Ok(get(addr, "/ready")?.status == 200)
    })?;
    ensure!(
        ready_again,
        "/ready did not return to 200 with the store back"
    );
    ensure!(store_up(&scrape(addr)?) == Some(1.0));
    Ok(())
}
