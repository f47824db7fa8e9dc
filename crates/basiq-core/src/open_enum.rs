//! A private macro for the policy modules' open string enums.
//!
//! Basiq's enums are not closed (basiq-api.md §10: connection `init`/`deleted`, job code
//! `authorization-failed` are missing from the specs), so every enum here keeps an unknown value as
//! `Other(String)` instead of failing — a new value from Basiq never breaks a running app.
//! Unlike the generated models' macro, this one accepts aliases, because Basiq spells the same
//! value two ways (`open-banking` / `openbanking`).

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident => $wire:literal $(| $alias:literal)*,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this SDK version does not know yet, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The value as Basiq spells it (the first spelling when Basiq uses several).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Other(s) => s,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $($wire $(| $alias)* => Self::$variant,)*
                    _ => Self::Other(s),
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                match v {
                    $name::Other(s) => s,
                    other => other.as_str().to_owned(),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use open_enum;
