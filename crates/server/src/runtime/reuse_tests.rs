//! Instance reuse: when a warm instance serves a request, and when it must not.

use std::sync::Arc;
use std::time::Duration;

use super::tests::{env, get, limits, runtime};
use super::*;
use crate::config::ReuseSettings;
use crate::request_id::RequestId;

fn guest(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/guests")
        .join(format!("{name}.wat"))
}

fn counter() -> Plugin {
    runtime()
        .load(
            "counter",
            &guest("counter_v2"),
            &PluginGrants::default(),
            &PluginLimits::default(),
        )
        .unwrap()
}

fn pool(max_requests: u32, idle_timeout: Duration) -> Arc<WarmPool> {
    WarmPool::new(
        ReuseSettings {
            max_requests,
            idle_timeout,
        },
        4,
    )
}

/// The counter the guest answered, and whether a warm instance answered.
async fn count(p: &Plugin, warm: Option<&Arc<WarmPool>>) -> Result<(u32, bool), CallError> {
    let resp = p
        .call(&get(""), &limits(), RequestId::from_bits(1), &env(), warm)
        .await?;
    let bytes: [u8; 4] = resp.body.as_slice().try_into().expect("a 4-byte body");
    Ok((u32::from_le_bytes(bytes), resp.reused))
}

async fn delete(p: &Plugin, warm: &Arc<WarmPool>) -> Result<GuestResponse, CallError> {
    let req = GuestRequest {
        method: b"DELETE",
        ..get("")
    };
    p.call(&req, &limits(), RequestId::from_bits(2), &env(), Some(warm))
        .await
}

#[tokio::test]
async fn a_reusable_guest_keeps_its_state_in_a_warm_instance_up_to_max_requests() {
    let p = counter();
    assert!(p.reusable());
    let warm = pool(3, Duration::from_secs(30));
    assert_eq!(count(&p, Some(&warm)).await.unwrap(), (1, false));
    assert_eq!(count(&p, Some(&warm)).await.unwrap(), (2, true));
    assert_eq!(count(&p, Some(&warm)).await.unwrap(), (3, true));
    assert_eq!(warm.idle(), 0, "served max_requests: thrown away");
    assert_eq!(count(&p, Some(&warm)).await.unwrap(), (1, false));
    // Without a pool (the operator did not opt in), every request is fresh.
    assert_eq!(count(&p, None).await.unwrap(), (1, false));
    assert_eq!(count(&p, None).await.unwrap(), (1, false));
}

#[tokio::test]
async fn a_trap_throws_the_instance_away_and_the_next_request_starts_fresh() {
    let p = counter();
    let warm = pool(100, Duration::from_secs(30));
    assert_eq!(count(&p, Some(&warm)).await.unwrap(), (1, false));
    assert_eq!(warm.idle(), 1);
    assert!(matches!(
        delete(&p, &warm).await,
        Err(CallError::Trap { .. })
    ));
    assert_eq!(warm.idle(), 0, "the instance that trapped is gone");
    assert_eq!(
        count(&p, Some(&warm)).await.unwrap(),
        (1, false),
        "nothing of the trapped request's state is seen"
    );
}

#[tokio::test]
async fn an_instance_idle_past_its_timeout_is_dropped_and_its_slot_freed() {
    let p = counter();
    let warm = pool(100, Duration::from_millis(100));
    assert_eq!(count(&p, Some(&warm)).await.unwrap(), (1, false));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(warm.idle(), 0, "the reaper dropped it without any request");
    assert_eq!(count(&p, Some(&warm)).await.unwrap(), (1, false));
}

#[tokio::test]
async fn a_module_that_does_not_declare_itself_reusable_is_never_reused() {
    // mirror_v2 is a v2 guest without `wasmgate_reusable`; ok.wat is v1.
    for name in ["mirror_v2", "ok"] {
        let p = runtime()
            .load(
                name,
                &guest(name),
                &PluginGrants::default(),
                &PluginLimits::default(),
            )
            .unwrap();
        assert!(!p.reusable(), "{name}");
        let warm = pool(100, Duration::from_secs(30));
        for _ in 0..3 {
            let resp = p
                .call(
                    &get(""),
                    &limits(),
                    RequestId::from_bits(3),
                    &env(),
                    Some(&warm),
                )
                .await
                .unwrap();
            assert!(!resp.reused, "{name}");
        }
        assert_eq!(warm.idle(), 0, "{name}");
    }
}

#[tokio::test]
async fn a_v1_module_exporting_the_declaration_is_still_never_reused() {
    let wat = std::fs::read_to_string(guest("counter_v2"))
        .unwrap()
        .replace("(result i32) (i32.const 2))", "(result i32) (i32.const 1))");
    let p = runtime()
        .load_bytes(
            "counter_v1",
            wat.as_bytes(),
            &PluginGrants::default(),
            &PluginLimits::default(),
        )
        .unwrap();
    assert_eq!(p.abi_version(), AbiVersion::V1);
    assert!(!p.reusable());
}

#[tokio::test]
async fn fuel_is_per_request_on_a_warm_instance() {
    let p = counter();
    let warm = pool(100, Duration::from_secs(30));
    let tight = PluginLimits {
        fuel: 10_000,
        ..limits()
    };
    for i in 1..=20u32 {
        let resp = p
            .call(
                &get(""),
                &tight,
                RequestId::from_bits(4),
                &env(),
                Some(&warm),
            )
            .await
            .unwrap();
        assert_eq!(
            resp.body,
            i.to_le_bytes(),
            "request {i} had its whole budget"
        );
        assert!(resp.fuel_used < 10_000);
    }
}

/// Idle warm instances hold instance slots; a fresh call of another plugin that finds none free
/// takes one back from them instead of waiting for their idle timeout (here: past its deadline).
#[tokio::test]
async fn idle_warm_instances_give_their_slots_to_a_fresh_call_that_needs_one() {
    let (_runtime, counter, warm, ok, _sleep) = one_slot();
    assert_eq!(count(&counter, Some(&warm)).await.unwrap(), (1, false));
    assert_eq!(warm.idle(), 1, "the only slot is held by an idle instance");
    let limits = PluginLimits {
        deadline: Duration::from_millis(500),
        ..limits()
    };
    let resp = ok
        .call(&get(""), &limits, RequestId::from_bits(3), &env(), None)
        .await
        .expect("the fresh call got the idle instance's slot");
    assert_eq!(resp.status, 200);
    assert_eq!(warm.idle(), 0, "evicted");
    assert_eq!(count(&counter, Some(&warm)).await.unwrap(), (1, false));
}

/// A runtime of one instance slot with `counter_v2` (reusable, with a warm pool), `ok` and
/// `sleep` loaded.
fn one_slot() -> (Runtime, Plugin, Arc<WarmPool>, Plugin, Plugin) {
    let runtime = Runtime::new(&RuntimeSettings {
        max_instances: 1,
        max_memory_bytes: 1024 * 1024,
        ..RuntimeSettings::default()
    })
    .unwrap();
    let load = |name: &str| {
        runtime
            .load(
                name,
                &guest(name),
                &PluginGrants::default(),
                &PluginLimits::default(),
            )
            .unwrap()
    };
    let (counter, ok, sleep) = (load("counter_v2"), load("ok"), load("sleep"));
    let warm = counter
        .warm_pool(
            ReuseSettings {
                max_requests: 100,
                idle_timeout: Duration::from_secs(3600),
            },
            4,
        )
        .expect("counter_v2 declares itself reusable");
    (runtime, counter, warm, ok, sleep)
}

/// A call waiting for the only slot gets it when the call ahead of it finishes, even when that
/// call's instance could be kept warm: an idle instance never holds a slot someone waits for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_for_a_slot_is_not_kept_waiting_by_an_instance_going_idle() {
    let (_runtime, counter, warm, ok, sleep) = one_slot();
    let (counter, ok, sleep) = (Arc::new(counter), Arc::new(ok), Arc::new(sleep));
    let slow = {
        let sleep = sleep.clone();
        tokio::spawn(async move {
            let req = GuestRequest {
                query: b"300",
                ..get("")
            };
            sleep
                .call(&req, &limits(), RequestId::from_bits(5), &env(), None)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let reusable = {
        let (counter, warm) = (counter.clone(), warm.clone());
        tokio::spawn(async move { count(&counter, Some(&warm)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let limits = PluginLimits {
        deadline: Duration::from_secs(2),
        ..limits()
    };
    let waiting = ok
        .call(&get(""), &limits, RequestId::from_bits(6), &env(), None)
        .await;
    assert_eq!(slow.await.unwrap().unwrap().status, 200);
    assert_eq!(reusable.await.unwrap().unwrap(), (1, false));
    assert_eq!(
        waiting.expect("the slot came to the waiting call").status,
        200
    );
}

/// Many calls on two workers through one slot: the slot goes back only after its instance is
/// gone, so no call ever finds the pool full once it holds a slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_is_given_back_only_after_its_instance_is_gone() {
    let (_runtime, counter, warm, ok, _sleep) = one_slot();
    let (counter, ok) = (Arc::new(counter), Arc::new(ok));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (counter, ok, warm) = (counter.clone(), ok.clone(), warm.clone());
            tokio::spawn(async move {
                for n in 0..100 {
                    if (i + n) % 2 == 0 {
                        count(&counter, Some(&warm)).await.map(|_| ())?;
                    } else {
                        ok.call(&get(""), &limits(), RequestId::from_bits(7), &env(), None)
                            .await
                            .map(|_| ())?;
                    }
                }
                Ok::<(), CallError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await
            .unwrap()
            .expect("every call found its slot's instance free");
    }
}
