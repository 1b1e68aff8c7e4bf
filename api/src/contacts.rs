//! `GET /v1/me/contacts`: the user's contacts, each with the server domains
//! where it can be reached — never the devices behind them.

use crate::word::wire_words;
use serde::{Deserialize, Serialize};

/// The answer: `{"contacts": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactList {
    /// The user's contacts.
    pub contacts: Vec<Contact>,
}

wire_words! {
    /// Who a contact is.
    pub enum ContactKind as "contact kind" {
        /// Another splitdial user (callable once both added each other).
        User = "user",
        /// A plain SIP address on a known server.
        Address = "address",
    }
}

/// One contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The name the user calls it by (what `callee` means in the API).
    pub name: String,
    /// A user or a plain address.
    pub kind: ContactKind,
    /// For a user contact, whether both sides accepted (an address: always).
    pub accepted: bool,
    /// Server domains where it can be reached (none for a user contact that
    /// has not accepted yet).
    #[serde(default)]
    pub servers: Vec<String>,
}
