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

/// A list Basiq sometimes sends as its one item: a string or an object reads as a list of one
/// (Basiq's webhook examples send `subscribedEvents: "user.created"`, and a webhook list whose
/// `data` is the one subscription); `null` or a missing list is empty, a list is itself. Errors
/// inside an item stay the item's own.
pub fn one_or_many<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer, StrDeserializer};
    use serde::de::{MapAccess, SeqAccess, Visitor};

    struct OneOrMany<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrMany<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list, one string or object, or null")
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Vec<T>, D2::Error> {
            d.deserialize_any(self)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<T>, A::Error> {
            Vec::deserialize(SeqAccessDeserializer::new(seq))
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map)).map(|one| vec![one])
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Vec<T>, E> {
            T::deserialize(StrDeserializer::new(s)).map(|one| vec![one])
        }
    }

    d.deserialize_any(OneOrMany(std::marker::PhantomData))
}

/// An optional object Basiq sometimes sends wrapped in a list (its events list shows an event's
/// `links` as `[{"self": …}]`): a list of one reads as that object, an empty list or `null` as
/// `None`. A list of more than one is an error rather than all but one silently dropped.
pub fn one_from_list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    // `one_or_many` reads the object, the list or `null`; only the length is left to check.
    let mut items = one_or_many::<D, T>(d)?;
    if items.len() > 1 {
        return Err(serde::de::Error::invalid_length(
            items.len(),
            &"a list of at most one",
        ));
    }
    Ok(items.pop())
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

    #[test]
    fn a_list_of_one_reads_as_its_object() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Links {
            #[serde(rename = "self")]
            self_: String,
        }
        #[derive(Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "one_from_list")]
            links: Option<Links>,
        }
        let read = |s: &str| serde_json::from_str::<T>(s).map(|t| t.links);
        let links = Some(Links { self_: "s".into() });
        assert_eq!(read(r#"{"links":{"self":"s"}}"#).unwrap(), links);
        assert_eq!(read(r#"{"links":[{"self":"s"}]}"#).unwrap(), links);
        assert_eq!(read(r#"{"links":[]}"#).unwrap(), None);
        assert_eq!(read(r#"{"links":null}"#).unwrap(), None);
        assert_eq!(read(r#"{}"#).unwrap(), None);
        let two = read(r#"{"links":[{"self":"a"},{"self":"b"}]}"#).unwrap_err();
        assert!(two.to_string().contains("at most one"), "{two}");
        assert!(read(r#"{"links":"s"}"#).is_err());
    }

    #[test]
    fn one_item_reads_as_a_list_of_one() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Item {
            id: String,
        }
        #[derive(Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "one_or_many")]
            events: Vec<String>,
            #[serde(default, deserialize_with = "one_or_many")]
            data: Vec<Item>,
        }
        let read = |s: &str| serde_json::from_str::<T>(s).map(|t| (t.events, t.data));
        let item = |id: &str| Item { id: id.into() };
        assert_eq!(
            read(r#"{"events":"user.created","data":{"id":"w1"}}"#).unwrap(),
            (vec!["user.created".to_owned()], vec![item("w1")])
        );
        assert_eq!(
            read(r#"{"events":["a","b"],"data":[{"id":"w1"},{"id":"w2"}]}"#).unwrap(),
            (
                vec!["a".to_owned(), "b".to_owned()],
                vec![item("w1"), item("w2")]
            )
        );
        assert_eq!(read(r#"{"events":null}"#).unwrap(), (vec![], vec![]));
        assert_eq!(read(r#"{}"#).unwrap(), (vec![], vec![]));
        assert!(read(r#"{"events":7}"#).is_err());
        assert!(
            read(r#"{"events":{"id":"w1"}}"#).is_err(),
            "an object is no string"
        );
        let err = read(r#"{"data":{"name":"w1"}}"#).err().unwrap().to_string();
        assert!(
            err.contains("missing field `id`"),
            "the item's own error: {err}"
        );
    }
}
