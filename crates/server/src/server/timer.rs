//! A connection's one timer: per-request deadlines without per-request timer registrations.
//!
//! Every wait of a keep-alive connection has a deadline (the head's, the idle one), so arming a
//! fresh `tokio::time::Sleep` per wait puts an insert into and a removal from tokio's timer wheel,
//! each under its lock, on every request: ~11% of the server's CPU on `/health` under load
//! (docs/decisions/0003-performance.md). Instead a connection owns one `Sleep` for its whole life
//! and moves it lazily: a wait whose deadline is *later* than where the timer is armed leaves it
//! alone, and when it fires early, re-arms it once for the later deadline. Moving the deadline
//! later on every request — the common case, the idle deadline of the next request — is free.
//!
//! It owns only the timer; what a deadline means (408, idle close) is `conn.rs`'s business.

use std::pin::Pin;

use tokio::time::{Instant, Sleep, sleep_until};

pub(super) struct Timer {
    /// Boxed so that the connection can hold it across awaits (and its many states) by pointer.
    sleep: Pin<Box<Sleep>>,
}

impl Timer {
    /// A timer first armed at `deadline`.
    pub(super) fn new(deadline: Instant) -> Timer {
        Timer {
            sleep: Box::pin(sleep_until(deadline)),
        }
    }

    /// Resolves at `deadline` (at once if it has passed). Dropping the future mid-wait leaves the
    /// timer armed: when it fires it wakes the connection's task once, which finds nothing to do.
    pub(super) async fn at(&mut self, deadline: Instant) {
        if self.sleep.deadline() > deadline {
            self.sleep.as_mut().reset(deadline);
        }
        loop {
            self.sleep.as_mut().await;
            if self.sleep.deadline() >= deadline {
                return;
            }
            // It fired for an earlier deadline than this wait's: re-arm it once, for ours.
            self.sleep.as_mut().reset(deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Paused time: every deadline is hit exactly, whichever way the timer has to move.
    #[tokio::test(start_paused = true)]
    async fn resolves_at_each_deadline_earlier_or_later_than_the_armed_one() {
        let start = Instant::now();
        let ms = |n| start + Duration::from_millis(n);
        let mut timer = Timer::new(ms(100));
        // Later than armed: fires early at 100, re-arms, resolves at 300.
        timer.at(ms(300)).await;
        assert_eq!(Instant::now(), ms(300));
        // Later again, the armed deadline already passed: resolves at 350 exactly.
        timer.at(ms(350)).await;
        assert_eq!(Instant::now(), ms(350));
        // A deadline in the past resolves at once.
        timer.at(ms(10)).await;
        assert_eq!(Instant::now(), ms(350));
        // Armed far away by an abandoned wait, then an earlier one: moved back, not waited out.
        let abandoned = tokio::time::timeout(Duration::from_millis(5), timer.at(ms(10_000)));
        assert!(abandoned.await.is_err());
        timer.at(ms(400)).await;
        assert_eq!(Instant::now(), ms(400));
    }
}
