//! Saturating conversions between `std::time::Duration` and `time`, so no policy can panic on
//! an absurd duration or date (policies must never panic on any input).

use std::time::Duration;

use time::OffsetDateTime;

/// `std` → `time`, saturating at `time::Duration::MAX`.
pub(crate) fn to_time(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// `time` → `std`; negative durations become zero.
pub(crate) fn to_std(d: time::Duration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

/// `at + d`, saturating at the end of representable time.
pub(crate) fn add(at: OffsetDateTime, d: Duration) -> OffsetDateTime {
    at.saturating_add(to_time(d))
}

/// `later - earlier` as a `std` duration, zero when `later` is not later.
pub(crate) fn since(later: OffsetDateTime, earlier: OffsetDateTime) -> Duration {
    to_std(later - earlier)
}

/// The start of the next UTC day after `now`.
pub(crate) fn next_utc_midnight(now: OffsetDateTime) -> OffsetDateTime {
    let day = now.to_offset(time::UtcOffset::UTC).date();
    match day.next_day() {
        Some(next) => next.midnight().assume_utc(),
        None => now,
    }
}

/// `first · factor`, never panicking, never above `cap`.
pub(crate) fn scale(d: Duration, factor: f64, cap: Duration) -> Duration {
    let factor = if factor.is_finite() && factor >= 0.0 {
        factor
    } else {
        1.0
    };
    Duration::try_from_secs_f64(d.as_secs_f64() * factor)
        .unwrap_or(cap)
        .min(cap)
}

/// A jitter value in `[0, 1]`; NaN and infinities become 0.
pub(crate) fn unit(jitter: f64) -> f64 {
    if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    }
}
