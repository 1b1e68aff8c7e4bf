//! Closed sets of words on the wire (talker kinds, call states, ...): each is
//! an enum whose JSON is its word, with the same word for `as_str`, `Display`
//! and `FromStr`, so a database column or a TXT record can hold it too.

/// A word that is not one of the set a field takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {field} {word:?}: expected one of {expected}")]
pub struct UnknownWord {
    /// The field, e.g. `kind`.
    pub field: &'static str,
    /// What was given (at most 64 characters of it).
    pub word: String,
    /// The words accepted, separated by spaces.
    pub expected: &'static str,
}

impl UnknownWord {
    /// The error for `word`, cut to a length fit for a log line.
    pub fn new(field: &'static str, word: &str, expected: &'static str) -> Self {
        Self {
            field,
            word: word.chars().take(64).collect(),
            expected,
        }
    }
}

/// Defines an enum of wire words: serde, `ALL`, `as_str`, `parse` (an
/// `Option`), `FromStr` (an [`UnknownWord`]) and `Display`, all with the same
/// words. Extra derives (e.g. `clap::ValueEnum` behind a feature) go in the
/// attributes.
macro_rules! wire_words {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident as $field:literal {
            $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }

            /// The value a word names; `None` for any other word.
            pub fn parse(word: &str) -> Option<Self> {
                match word {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::word::UnknownWord;
            fn from_str(word: &str) -> Result<Self, Self::Err> {
                Self::parse(word).ok_or_else(|| {
                    $crate::word::UnknownWord::new($field, word, concat!($($word, " "),+).trim_ascii_end())
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use wire_words;
