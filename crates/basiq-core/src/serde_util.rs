//! Lenient deserializers for the places where Basiq's payloads vary.

use serde::{Deserialize, Deserializer};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

/// Parses an RFC 3339 timestamp, or a bare `YYYY-MM-DD` date (read as midnight UTC).
pub fn parse_timestamp(raw: &str) -> Option<OffsetDateTime> {
    let raw = raw.trim();
    if let Ok(t) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(t);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(raw, &date_format)
        .ok()
        .map(|d| d.midnight().assume_utc())
}

/// A timestamp as [`parse_timestamp`] reads it; `null` and `""` (Basiq sends it for
/// `expiryDate` on web connections) are `None`; anything else is a clear error, never dropped.
pub fn timestamp_or_empty<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<OffsetDateTime>, D::Error> {
    let Some(raw) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    if raw.trim().is_empty() {
        return Ok(None);
    }
    parse_timestamp(&raw).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!("{raw:?} is not an RFC 3339 timestamp or a date"))
    })
}

/// `null` or a missing list becomes an empty `Vec`.
pub fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Serializes a timestamp as RFC 3339.
pub fn serialize_timestamp<S: serde::Serializer>(
    t: &Option<OffsetDateTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => {
            let text = t.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
            s.serialize_some(&text)
        }
        None => s.serialize_none(),
    }
}
