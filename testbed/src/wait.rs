//! Waiting for a condition nothing announces (a log line, a status field, a
//! registration): poll it until it holds, within a bound.
//!
//! Two forms, because tests come in two kinds: [`wait_until`] blocks its
//! thread (plain `#[test]`s, which drive child processes), and
//! [`wait_until_async`] sleeps on tokio's clock, so it never blocks a runtime
//! worker and honours paused time (`#[tokio::test(start_paused = true)]`).
//! Both poll at once, then back off from [`FIRST_PAUSE`] to [`LONGEST_PAUSE`]
//! between looks: a quick condition is seen within milliseconds, and a slow one
//! (an HTTP status request each time) is not asked more than a few times a
//! second.

use crate::{Error, Result};
use std::future::Future;
use std::time::Duration;

/// The pause after the first look.
pub const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause between two looks.
pub const LONGEST_PAUSE: Duration = Duration::from_millis(250);

/// The pauses between looks: doubling from [`FIRST_PAUSE`] up to [`LONGEST_PAUSE`].
fn pauses() -> impl Iterator<Item = Duration> {
    std::iter::successors(Some(FIRST_PAUSE), |p| Some((*p * 2).min(LONGEST_PAUSE)))
}

/// Polls `check` until it gives `Some`, blocking this thread between looks,
/// and returns what it gave.
///
/// # Errors
/// [`Error::Timeout`] naming `what` once `within` has passed without it
/// (`check` is always asked at least once, and once more at the deadline).
pub fn wait_until<T>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T> {
    let start = std::time::Instant::now();
    for pause in pauses() {
        if let Some(found) = check() {
            return Ok(found);
        }
        let left = within.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(pause.min(left));
    }
    Err(Error::Timeout {
        what: what.to_owned(),
        after: within,
    })
}

/// Polls `check` until its future gives `Some`, sleeping on tokio's clock
/// between looks, and returns what it gave. The bound is on that clock too, so
/// under paused time it passes as virtual time.
///
/// # Errors
/// [`Error::Timeout`] naming `what` once `within` has passed without it.
pub async fn wait_until_async<T, F, Fut>(what: &str, within: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    for pause in pauses() {
        if let Some(found) = check().await {
            return Ok(found);
        }
        let left = within.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(pause.min(left)).await;
    }
    Err(Error::Timeout {
        what: what.to_owned(),
        after: within,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test code: a panic is the failure report.
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn returns_what_the_check_found_as_soon_as_it_holds() {
        let looks = Cell::new(0);
        let found = wait_until("the third look", Duration::from_secs(5), || {
            looks.set(looks.get() + 1);
            (looks.get() == 3).then_some("here")
        })
        .unwrap();
        assert_eq!(found, "here");
        assert_eq!(looks.get(), 3);
    }

    #[test]
    fn a_condition_that_never_holds_times_out_naming_it() {
        let start = std::time::Instant::now();
        let err = wait_until("never", Duration::from_millis(100), || None::<()>).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(err.to_string().contains("never"), "{err}");
    }

    #[test]
    fn pauses_back_off_to_their_longest() {
        let firsts: Vec<Duration> = pauses().take(8).collect();
        assert_eq!(firsts[0], FIRST_PAUSE);
        assert!(firsts.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(firsts[7], LONGEST_PAUSE);
    }

    #[tokio::test(start_paused = true)]
    async fn the_async_bound_passes_on_tokio_time() {
        // An hour of paused time passes at once: the bound and the pauses are
        // on tokio's clock, not the wall clock.
        let wall = std::time::Instant::now();
        let err = wait_until_async("never", Duration::from_secs(3600), || async { None::<()> })
            .await
            .unwrap_err();
        assert!(wall.elapsed() < Duration::from_secs(30));
        assert!(err.to_string().contains("never"), "{err}");
        let mut looks = 0;
        let found = wait_until_async("the second look", Duration::from_secs(1), || {
            looks += 1;
            std::future::ready((looks == 2).then_some(looks))
        })
        .await
        .unwrap();
        assert_eq!(found, 2);
    }
}
