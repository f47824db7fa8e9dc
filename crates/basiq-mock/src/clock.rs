//! The emulator's notion of "now".
//!
//! Everything time-dependent (token expiry, job progress, the 6-minute pause, the 7-day job
//! window, the OpenBanking daily quota) is computed lazily from this clock when a request reads
//! it, so tests move time with [`MockClock::advance`] and never sleep.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use basiq_core::clock::{Clock, ManualClock};
use time::OffsetDateTime;

#[derive(Debug)]
enum Source {
    /// Shared with the test (and possibly the SDK): whoever advances it moves everyone.
    Manual(ManualClock),
    /// Wall-clock time plus an offset, so `advance` also works on a server started without a
    /// virtual clock (e.g. `basiq mock`, driven through `/__admin/clock/advance`).
    System { offset: Mutex<time::Duration> },
}

/// A cheap, clonable handle on the emulator's clock.
#[derive(Debug, Clone)]
pub struct MockClock {
    source: Arc<Source>,
}

impl MockClock {
    /// Wall-clock time (advanceable by an offset).
    pub fn system() -> Self {
        Self {
            source: Arc::new(Source::System {
                offset: Mutex::new(time::Duration::ZERO),
            }),
        }
    }

    /// A virtual clock shared with `clock`: advancing either moves both.
    pub fn manual(clock: ManualClock) -> Self {
        Self {
            source: Arc::new(Source::Manual(clock)),
        }
    }

    /// The current (possibly virtual) time.
    pub fn now(&self) -> OffsetDateTime {
        match &*self.source {
            Source::Manual(c) => c.now(),
            Source::System { offset } => {
                let off = *offset.lock().unwrap_or_else(|p| p.into_inner());
                OffsetDateTime::now_utc().saturating_add(off)
            }
        }
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        match &*self.source {
            Source::Manual(c) => c.advance(by),
            Source::System { offset } => {
                let mut off = offset.lock().unwrap_or_else(|p| p.into_inner());
                *off =
                    off.saturating_add(time::Duration::try_from(by).unwrap_or(time::Duration::MAX));
            }
        }
    }
}

impl Clock for MockClock {
    fn now(&self) -> OffsetDateTime {
        MockClock::now(self)
    }
}

/// RFC 3339 with whole seconds, as Basiq prints timestamps ("2024-05-01T03:04:05Z").
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
