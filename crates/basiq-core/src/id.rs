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
    let printable_ascii = |b: u8| matches!(b, b'!'..=b'~');
    if value
        .bytes()
        .all(|b| printable_ascii(b) && !matches!(b, b'/' | b'\\' | b'?' | b'#' | b'%'))
    {
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

macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an id.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                validate_id(stringify!($name), &value)?;
                Ok(Self(value))
            }

            /// The id as sent to Basiq.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Unwraps the id.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
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
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidId;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<&String> for $name {
            type Error = InvalidId;
            fn try_from(s: &String) -> Result<Self, Self::Error> {
                Self::new(s.as_str())
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
                $name::new(self)
            }
        }

        impl IntoId<$name> for String {
            fn into_id(self) -> Result<$name, InvalidId> {
                $name::new(self)
            }
        }

        impl IntoId<$name> for &String {
            fn into_id(self) -> Result<$name, InvalidId> {
                $name::new(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Self::new(s).map_err(serde::de::Error::custom)
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
}
