//! The lab's clock: a wall-clock epoch plus the time elapsed on tokio's clock.
//!
//! Sans-IO cores never read a clock; they are handed `now` as a [`time::OffsetDateTime`]. The tokio
//! drivers get that `now` from a [`LabClock`]. Under a paused tokio runtime
//! (`tokio::time::pause`, `#[tokio::test(start_paused = true)]`) time only moves when every task
//! waits on a timer, so two days of retries pass in milliseconds and every run sees the same times.
//!
//! Over real sockets tokio's clock runs in real time; a driver that has nothing to wait for until
//! a later lab time (the next retry of a queue) moves the lab clock there with
//! [`LabClock::skip_to`] instead of sleeping. The skip is shared by every clone of the clock, so
//! the mock EOP and the sender see the same lab time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;
use tokio::time::Instant;

/// Maps tokio's (possibly paused) clock onto a wall-clock epoch, plus the time skipped forward.
///
/// Clones share the skipped time: skipping on one moves them all.
#[derive(Debug, Clone)]
pub struct LabClock {
    /// The lab time at `origin`.
    epoch: OffsetDateTime,
    /// The tokio instant the clock was made at.
    origin: Instant,
    /// Nanoseconds the clock was moved forward by [`LabClock::skip_to`] (shared by clones).
    skipped: Arc<AtomicU64>,
}

impl LabClock {
    /// A clock that reads `epoch` now and advances with tokio's clock.
    #[allow(clippy::disallowed_methods)] // the lab clock is where drivers read tokio's clock
    pub fn starting_at(epoch: OffsetDateTime) -> Self {
        Self {
            epoch,
            origin: Instant::now(),
            skipped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A clock that starts at the real current time (standalone `mock-eop serve`).
    pub fn system() -> Self {
        #[allow(clippy::disallowed_methods)] // the one place the lab reads the wall clock
        Self::starting_at(OffsetDateTime::now_utc())
    }

    /// The current lab time.
    #[allow(clippy::disallowed_methods)] // the lab clock is where drivers read tokio's clock
    pub fn now(&self) -> OffsetDateTime {
        self.epoch + (Instant::now() - self.origin) + self.skipped()
    }

    /// The tokio instant at which the lab clock reads `at` (for timers); times in the past map to now.
    pub fn instant_at(&self, at: OffsetDateTime) -> Instant {
        let offset = at - self.epoch - self.skipped();
        if offset.is_negative() {
            return self.origin;
        }
        self.origin + offset.unsigned_abs()
    }

    /// Moves the lab clock forward to `at` at once, without waiting on tokio's clock (nothing when
    /// the clock already reads `at` or later). Every clone sees the jump. Timers armed earlier
    /// through [`Self::instant_at`] keep their tokio instants, so skip only while nothing waits on
    /// one (between two sessions of a queue).
    pub fn skip_to(&self, at: OffsetDateTime) {
        let ahead = at - self.now();
        if ahead.is_positive() {
            let nanos = u64::try_from(ahead.whole_nanoseconds()).unwrap_or(u64::MAX);
            self.skipped.fetch_add(nanos, Ordering::SeqCst);
        }
    }

    /// The time skipped forward so far.
    fn skipped(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.skipped.load(Ordering::SeqCst))
    }

    /// The epoch the clock started from.
    pub fn epoch(&self) -> OffsetDateTime {
        self.epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn advances_with_paused_tokio_time() {
        let epoch = time::macros::datetime!(2026-05-02 06:30:00 UTC);
        let clock = LabClock::starting_at(epoch);
        assert_eq!(clock.now(), epoch);
        tokio::time::sleep(std::time::Duration::from_secs(2 * 86_400)).await;
        assert_eq!(clock.now(), epoch + time::Duration::days(2));
        assert_eq!(
            clock.instant_at(epoch + time::Duration::hours(1)) - clock.instant_at(epoch),
            std::time::Duration::from_secs(3600)
        );
    }

    #[tokio::test(start_paused = true)]
    #[allow(clippy::disallowed_methods)] // compares with tokio's own clock on purpose
    async fn skipping_moves_every_clone_and_the_timers_after_it() {
        let epoch = time::macros::datetime!(2026-05-02 06:30:00 UTC);
        let clock = LabClock::starting_at(epoch);
        let other = clock.clone();
        let retry = epoch + time::Duration::minutes(15);
        clock.skip_to(retry);
        assert_eq!(other.now(), retry);
        assert_eq!(clock.instant_at(retry), Instant::now());
        // skipping backwards does nothing
        clock.skip_to(epoch);
        assert_eq!(other.now(), retry);
        tokio::time::sleep_until(clock.instant_at(retry + time::Duration::seconds(30))).await;
        assert_eq!(clock.now(), retry + time::Duration::seconds(30));
    }
}
