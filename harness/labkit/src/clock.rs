//! The lab's clock: a wall-clock epoch plus the time elapsed on tokio's clock.
//!
//! Sans-IO cores never read a clock; they are handed `now` as a [`time::OffsetDateTime`]. The tokio
//! drivers get that `now` from a [`LabClock`]. Under a paused tokio runtime
//! (`tokio::time::pause`, `#[tokio::test(start_paused = true)]`) time only moves when every task
//! waits on a timer, so two days of retries pass in milliseconds and every run sees the same times.

use time::OffsetDateTime;
use tokio::time::Instant;

/// Maps tokio's (possibly paused) clock onto a wall-clock epoch.
#[derive(Debug, Clone, Copy)]
pub struct LabClock {
    epoch: OffsetDateTime,
    origin: Instant,
}

impl LabClock {
    /// A clock that reads `epoch` now and advances with tokio's clock.
    #[allow(clippy::disallowed_methods)] // the lab clock is where drivers read tokio's clock
    pub fn starting_at(epoch: OffsetDateTime) -> Self {
        Self {
            epoch,
            origin: Instant::now(),
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
        self.epoch + (Instant::now() - self.origin)
    }

    /// The tokio instant at which the lab clock reads `at` (for timers); times in the past map to now.
    pub fn instant_at(&self, at: OffsetDateTime) -> Instant {
        let offset = at - self.epoch;
        if offset.is_negative() {
            return self.origin;
        }
        self.origin + offset.unsigned_abs()
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
}
