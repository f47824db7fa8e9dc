//! Validated identifiers.
//!
//! Every id that ends up in a URL path is validated *before* any request exists, so that a
//! hostile or corrupted value (`"../users"`, `"a/b"`, `"x?filter=…"`) can never change which
//! resource a request addresses. Valid ids are also safe to log.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidIdReason {
    /// The id is empty.
    #[error("it is empty")]
    Empty,
    /// The id is `.` or `..`, which would walk the URL path.
    #[error("it is a relative path segment")]
    DotSegment,
    /// The id contains a character that is not allowed in an id.
    #[error("it contains the forbidden character {0:?}")]
    ForbiddenChar(char),
    /// The id is longer than any Basiq id can be.
    #[error("it is longer than {max} bytes")]
    TooLong {
        /// The maximum length.
        max: usize,
    },
}

/// An id that failed validation. The rejected value is kept (truncated) for diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {value:?} is refused because {reason}")]
pub struct InvalidId {
    /// Which id type refused it (for example `"UserId"`).
    pub kind: &'static str,
    /// The refused value, truncated to 64 characters.
    pub value: String,
    /// Why it was refused.
    pub reason: InvalidIdReason,
}

/// The longest id we accept. Basiq ids are UUIDs or short hex strings; 256 leaves ample room.
pub const MAX_ID_LEN: usize = 256;

/// Whether an id may hold `b` without a closer look: printable ASCII but for the five that
/// would change a URL's path (`/`, `\`, `?`, `#`, `%`).
fn is_plain_id_byte(b: u8) -> bool {
    (b'!'..=b'~').contains(&b) & !matches!(b, b'/' | b'\\' | b'?' | b'#' | b'%')
}

/// Whether every byte of `value` is [plain](is_plain_id_byte). Folded with `&`, not `all`: with
/// no early exit the comparisons vectorize, 32 bytes at a time for a UUID instead of one
/// (every request checks the ids in its path).
fn all_plain_id_bytes(value: &str) -> bool {
    value
        .bytes()
        .fold(true, |plain, b| plain & is_plain_id_byte(b))
}

/// Checks one id against the rules shared by every id type.
pub fn validate_id(kind: &'static str, value: &str) -> Result<(), InvalidId> {
    let fail = |reason| InvalidId {
        kind,
        value: value.chars().take(64).collect(),
        reason,
    };
    if value.is_empty() {
        return Err(fail(InvalidIdReason::Empty));
    }
    if value == "." || value == ".." {
        return Err(fail(InvalidIdReason::DotSegment));
    }
    if value.len() > MAX_ID_LEN {
        return Err(fail(InvalidIdReason::TooLong { max: MAX_ID_LEN }));
    }
    // Fast path: the ids Basiq issues are printable ASCII (no space, no control character).
    if all_plain_id_bytes(value) {
        return Ok(());
    }
    if let Some(c) = value
        .chars()
        .find(|c| matches!(c, '/' | '\\' | '?' | '#' | '%') || c.is_whitespace() || c.is_control())
    {
        return Err(fail(InvalidIdReason::ForbiddenChar(c)));
    }
    Ok(())
}

/// Anything a method taking an id accepts: the validated id by value or by reference, or text
/// (`&str`, `String`, `&String`) that is validated on the way in — so `user.id`, `&user.id`,
/// `"ea3a81"` and a `String` from a request all work, and `"../x"` is an [`InvalidId`] before any
/// request exists.
///
/// ```
/// use basiq_core::id::{IntoId, JobId};
/// fn follow(job: impl IntoId<JobId>) -> Result<JobId, basiq_core::id::InvalidId> {
///     job.into_id()
/// }
/// let job = JobId::new("61723").unwrap();
/// assert_eq!(follow(&job).unwrap(), job);
/// assert_eq!(follow(job.clone()).unwrap(), job);
/// assert_eq!(follow("61723").unwrap(), job);
/// assert_eq!(follow(String::from("61723")).unwrap(), job);
/// assert!(follow("../x").is_err());
/// ```
pub trait IntoId<T> {
    /// The validated id.
    fn into_id(self) -> Result<T, InvalidId>;
}

/// The text of an id, shared: cloning an id (into a plan, a log field, a request) bumps a
/// reference count instead of allocating and copying the string.
type IdText = std::sync::Arc<str>;

/// Validates `value` as a `kind` id and stores it (one allocation, the text copied once).
fn id_text(kind: &'static str, value: &str) -> Result<IdText, InvalidId> {
    validate_id(kind, value)?;
    Ok(IdText::from(value))
}

/// Deserializes an id from any string form (borrowed, transient or owned), validating it and
/// copying it once into the shared text (no intermediate `String`).
struct IdVisitor(&'static str);

impl serde::de::Visitor<'_> for IdVisitor {
    type Value = IdText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} string", self.0)
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<IdText, E> {
        id_text(self.0, value).map_err(E::custom)
    }

    /// UTF-8 bytes, as `String` accepts them (binary formats).
    fn visit_bytes<E: serde::de::Error>(self, value: &[u8]) -> Result<IdText, E> {
        let text = std::str::from_utf8(value)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Bytes(value), &self))?;
        self.visit_str(text)
    }
}

macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(IdText);

        impl $name {
            /// Validates and wraps an id.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                id_text(stringify!($name), &value.into()).map(Self)
            }

            /// The id as sent to Basiq.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Unwraps the id (a copy of its text: the id's own is shared with its clones).
            pub fn into_string(self) -> String {
                String::from(&*self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                id_text(stringify!($name), s).map(Self)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidId;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                id_text(stringify!($name), s).map(Self)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                id_text(stringify!($name), &s).map(Self)
            }
        }

        impl TryFrom<&String> for $name {
            type Error = InvalidId;
            fn try_from(s: &String) -> Result<Self, Self::Error> {
                id_text(stringify!($name), s).map(Self)
            }
        }

        impl TryFrom<&$name> for $name {
            type Error = InvalidId;
            fn try_from(s: &$name) -> Result<Self, Self::Error> {
                Ok(s.clone())
            }
        }

        impl IntoId<$name> for $name {
            fn into_id(self) -> Result<$name, InvalidId> {
                Ok(self)
            }
        }

        impl IntoId<$name> for &$name {
            fn into_id(self) -> Result<$name, InvalidId> {
                Ok(self.clone())
            }
        }

        impl IntoId<$name> for &str {
            fn into_id(self) -> Result<$name, InvalidId> {
                id_text(stringify!($name), self).map($name)
            }
        }

        impl IntoId<$name> for String {
            fn into_id(self) -> Result<$name, InvalidId> {
                id_text(stringify!($name), &self).map($name)
            }
        }

        impl IntoId<$name> for &String {
            fn into_id(self) -> Result<$name, InvalidId> {
                id_text(stringify!($name), self).map($name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer
                    .deserialize_str(IdVisitor(stringify!($name)))
                    .map(Self)
            }
        }
    };
}

define_id!(
    /// A Basiq user id.
    UserId
);
define_id!(
    /// A Basiq job id.
    JobId
);
define_id!(
    /// A Basiq connection id.
    ConnectionId
);
define_id!(
    /// A Basiq account id.
    AccountId
);
define_id!(
    /// A Basiq transaction id.
    TransactionId
);
define_id!(
    /// A Basiq institution (connector) id such as `AU00000`.
    InstitutionId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_path_tricks() {
        for bad in [
            "", ".", "..", "../x", "a/b", "a?b", "a#b", "a%2F", "a b", "a\nb", "a\\b",
        ] {
            assert!(UserId::new(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    /// Every character the fast path turns away is judged by the full rule: forbidden ones
    /// are refused, by name, and the rest (non-ASCII letters, `~`) accepted.
    #[test]
    fn each_character_gets_the_rule_whichever_path_checks_it() {
        let candidates = (0u32..0x250).chain([0x2028, 0x3000, 0xfeff]);
        for c in candidates.filter_map(char::from_u32) {
            let id = format!("a{c}b");
            let forbidden =
                matches!(c, '/' | '\\' | '?' | '#' | '%') || c.is_whitespace() || c.is_control();
            match validate_id("UserId", &id) {
                Ok(()) => assert!(!forbidden, "{c:?} should be refused"),
                Err(e) => {
                    assert!(forbidden, "{c:?} should be accepted: {e}");
                    assert_eq!(e.reason, InvalidIdReason::ForbiddenChar(c));
                }
            }
        }
    }

    #[test]
    fn accepts_real_ids() {
        for good in [
            "ea3a81",
            "0b2c3d4e-5f60-4172-8394-a5b6c7d8e9f0",
            "AU00000",
            "a.b",
            "...",
        ] {
            assert_eq!(
                UserId::new(good).map(|u| u.to_string()),
                Ok(good.to_string())
            );
        }
    }

    #[test]
    fn error_names_kind_and_reason() {
        let err = JobId::new("a/b").unwrap_err();
        assert_eq!(err.kind, "JobId");
        assert_eq!(err.reason, InvalidIdReason::ForbiddenChar('/'));
        assert!(err.to_string().contains("JobId"));
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<UserId>("\"../x\"").is_err());
        assert!(serde_json::from_str::<UserId>("\"abc\"").is_ok());
    }

    #[test]
    fn deserializes_from_every_string_form_and_validates_each() {
        use serde::de::value::{
            BorrowedStrDeserializer, BytesDeserializer, Error, StringDeserializer,
        };
        use serde::de::IntoDeserializer;
        let want = JobId::new("61723").unwrap();
        // Borrowed (serde_json without escapes), transient (with escapes), owned, bytes.
        assert_eq!(serde_json::from_str::<JobId>("\"61723\"").unwrap(), want);
        assert_eq!(
            serde_json::from_str::<JobId>("\"6172\\u0033\"").unwrap(),
            want
        );
        let owned: StringDeserializer<Error> = String::from("61723").into_deserializer();
        assert_eq!(JobId::deserialize(owned).unwrap(), want);
        let borrowed = BorrowedStrDeserializer::<Error>::new("61723");
        assert_eq!(JobId::deserialize(borrowed).unwrap(), want);
        assert_eq!(
            JobId::deserialize(BytesDeserializer::<Error>::new(b"61723")).unwrap(),
            want
        );
        assert!(JobId::deserialize(BytesDeserializer::<Error>::new(b"\xff")).is_err());
        let escaped_slash = serde_json::from_str::<JobId>("\"a\\/b\"").unwrap_err();
        assert!(
            escaped_slash
                .to_string()
                .contains("forbidden character '/'"),
            "{escaped_slash}"
        );
        assert!(
            serde_json::from_str::<JobId>("61723").is_err(),
            "a number is not an id"
        );
        // Serialized as the plain string, in a map key too.
        assert_eq!(serde_json::to_string(&want).unwrap(), "\"61723\"");
        let map = std::collections::BTreeMap::from([(want.clone(), 1)]);
        assert_eq!(serde_json::to_string(&map).unwrap(), r#"{"61723":1}"#);
    }

    #[test]
    fn clones_share_the_text_and_compare_hash_and_order_by_it() {
        use std::hash::BuildHasher;
        let id = ConnectionId::new(String::from("c-2")).unwrap();
        let clone = id.clone();
        assert!(
            std::sync::Arc::ptr_eq(&id.0, &clone.0),
            "a clone allocates nothing"
        );
        let other = ConnectionId::new("c-2").unwrap();
        assert!(!std::sync::Arc::ptr_eq(&id.0, &other.0));
        assert_eq!(id, other);
        let hasher = std::collections::hash_map::RandomState::new();
        assert_eq!(hasher.hash_one(&id), hasher.hash_one(&other));
        assert_eq!(hasher.hash_one(&id), hasher.hash_one(String::from("c-2")));
        let mut ids = [
            ConnectionId::new("c-3").unwrap(),
            ConnectionId::new("c-10").unwrap(),
            clone,
        ];
        ids.sort();
        let texts: Vec<&str> = ids.iter().map(ConnectionId::as_str).collect();
        assert_eq!(texts, ["c-10", "c-2", "c-3"], "ordered as strings");
        assert_eq!(format!("{id:?}"), r#"ConnectionId("c-2")"#);
        assert_eq!(id.to_string(), "c-2");
        assert_eq!(id.into_string(), "c-2");
        assert_eq!("c-2".parse::<ConnectionId>().unwrap(), other);
        assert_eq!(ConnectionId::try_from(String::from("c-2")).unwrap(), other);
        assert!(ConnectionId::try_from("a/b").is_err());
        assert!(IntoId::<ConnectionId>::into_id(String::from("..")).is_err());
    }
}
