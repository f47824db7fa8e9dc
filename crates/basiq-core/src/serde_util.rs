//! Lenient deserializers for the places where Basiq's payloads vary.

use serde::{Deserialize, Deserializer};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

/// Parses what Basiq sends as a timestamp: RFC 3339; a date-time without an offset
/// (`2022-03-26T06:56:44`, with `T` or a space, optional fraction), read as UTC; a bare
/// `YYYY-MM-DD` date or Basiq's `DD/MM/YYYY`, read as midnight UTC.
pub fn parse_timestamp(raw: &str) -> Option<OffsetDateTime> {
    let raw = raw.trim();
    if let Ok(t) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(t);
    }
    let local = time::macros::format_description!(
        version = 2,
        "[year]-[month]-[day][first [T][ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    if let Ok(t) = time::PrimitiveDateTime::parse(raw, &local) {
        return Some(t.assume_utc());
    }
    let iso = time::macros::format_description!("[year]-[month]-[day]");
    let australian = time::macros::format_description!("[day]/[month]/[year]");
    Date::parse(raw, &iso)
        .or_else(|_| Date::parse(raw, &australian))
        .ok()
        .map(|d| d.midnight().assume_utc())
}

/// An optional string that Basiq sometimes sends as a JSON number (`subClass.code: 722`): a
/// number reads as its text (`"722"`), `null` as `None`; anything else is an error.
pub fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Int(i64),
        Unsigned(u64),
        Float(f64),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        None => None,
        Some(Raw::Text(s)) => Some(s),
        Some(Raw::Int(n)) => Some(n.to_string()),
        Some(Raw::Unsigned(n)) => Some(n.to_string()),
        Some(Raw::Float(n)) => Some(n.to_string()),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_without_offset_and_australian_dates_read_as_utc() {
        let at = |s: &str| parse_timestamp(s).map(|t| t.unix_timestamp());
        let expected = time::macros::datetime!(2022-03-26 06:56:44 UTC).unix_timestamp();
        assert_eq!(at("2022-03-26T06:56:44"), Some(expected));
        assert_eq!(at("2022-03-26 06:56:44"), Some(expected));
        assert_eq!(at("2022-03-26T06:56:44.250"), Some(expected));
        assert_eq!(at("2022-03-26T06:56:44Z"), Some(expected));
        let midnight = time::macros::datetime!(2022-03-26 00:00 UTC).unix_timestamp();
        assert_eq!(at("26/03/2022"), Some(midnight));
        assert_eq!(at("2022-03-26"), Some(midnight));
        assert_eq!(
            at("03/26/2022"),
            None,
            "no 26th month: not silently swapped"
        );
        assert_eq!(at("yesterday"), None);
    }

    #[test]
    fn numbers_read_as_their_text() {
        #[derive(Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "string_or_number")]
            code: Option<String>,
        }
        let read = |s: &str| serde_json::from_str::<T>(s).map(|t| t.code);
        assert_eq!(read(r#"{"code":722}"#).unwrap().as_deref(), Some("722"));
        assert_eq!(read(r#"{"code":"411"}"#).unwrap().as_deref(), Some("411"));
        assert_eq!(read(r#"{"code":null}"#).unwrap(), None);
        assert_eq!(read(r#"{}"#).unwrap(), None);
        assert!(read(r#"{"code":[1]}"#).is_err());
    }
}
