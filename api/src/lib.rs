//! splitdial's wire contracts: the JSON of the matcher's HTTP API and of a
//! talker's local status API, written once and shared by the side that
//! produces each body and the side that reads it — the matcher, the dialer
//! (`tui/`) and the talker agent. `docs/matcher.md` and
//! `docs/talker-agent.md` describe the endpoints; this crate is their code.
//!
//! One module per resource:
//!
//! | module | endpoint | types |
//! |---|---|---|
//! | [`talker`] | (the vocabulary) | [`TalkerKind`], [`Media`], [`TalkerSoftware`] |
//! | [`me`] | `GET /v1/me` | [`Me`] |
//! | [`talkers`] | `GET /v1/me/talkers` | [`TalkerList`], [`RegisteredTalker`], [`RegisteredAccount`] |
//! | [`contacts`] | `GET /v1/me/contacts` | [`ContactList`], [`Contact`], [`ContactKind`] |
//! | [`routes`] | `GET /v1/routes` | [`Routes`], [`RouteView`] |
//! | [`calls`] | `POST /v1/calls`, `GET`/`DELETE /v1/calls/{id}`, `/events`, `/parties` | [`NewCall`], [`Call`], [`CallState`], [`CallEvent`], [`EventDetail`], [`PartyState`], [`NewParty`], [`PartyAdded`] |
//! | [`enrollment`] | `POST /v1/talkers` | [`EnrollRequest`], [`EnrollAccount`], [`EnrollReply`] |
//! | [`heartbeat`] | `POST /v1/talkers/{id}/heartbeat` | [`Heartbeat`], [`HeartbeatAccount`], [`TalkerState`], [`HeartbeatReply`] |
//! | [`keys`] | (in enrollment and heartbeat replies) | [`MatcherKey`], [`KeySetSignature`], [`key_set_signing_input`] |
//! | [`owner_tokens`] | `POST /v1/talkers/{id}/owner-tokens` | [`OwnerTokenRequest`], [`OwnerAction`], [`OwnerToken`] |
//! | [`health`] | `GET /healthz` | [`Health`] |
//! | [`errors`] | every error answer, both APIs | [`ErrorBody`], [`ErrorDetail`] |
//! | [`status`] | a talker's `GET /v1/status`, `POST /v1/challenge`, `POST /v1/calls/{id}/{action}` | [`TalkerStatus`], [`StatusAccount`], [`AccountState`], [`TalkerCall`], [`Held`], [`TalkerCallKind`], [`TalkerCallState`], [`ChallengeRequest`], [`ChallengeAnswer`], [`OwnerActionRequest`], [`OwnerActionAccepted`] |
//!
//! Closed sets of words (kinds, media, states, actions) are enums whose JSON
//! is the word; each also has `as_str`, `parse` and `FromStr` with the same
//! words, so a database column or a DNS-SD TXT record holds them too. With
//! the `clap` feature, [`TalkerKind`] and [`Media`] are `clap::ValueEnum`s for
//! the command lines that take them.
//!
//! Request bodies refuse unknown fields (a typo is an error, not a default);
//! answers are read leniently where the reader can do without a field.
//! `tests/wire.rs` pins every body to the exact JSON the API sends.

pub mod calls;
pub mod contacts;
pub mod enrollment;
pub mod errors;
pub mod health;
pub mod heartbeat;
pub mod keys;
pub mod me;
pub mod owner_tokens;
pub mod routes;
pub mod status;
pub mod talker;
pub mod talkers;
mod word;

pub use calls::{
    Call, CallEvent, CallState, EventDetail, NewCall, NewParty, PartyAdded, PartyState,
};
pub use contacts::{Contact, ContactKind, ContactList};
pub use enrollment::{EnrollAccount, EnrollReply, EnrollRequest};
pub use errors::{ErrorBody, ErrorDetail};
pub use health::Health;
pub use heartbeat::{Heartbeat, HeartbeatAccount, HeartbeatReply, TalkerState};
pub use keys::{
    KEY_SET_DOMAIN, KeySetSignature, MatcherKey, key_set_signing_input,
    revoking_key_set_signing_input, time_ms,
};
pub use me::Me;
pub use owner_tokens::{OwnerAction, OwnerToken, OwnerTokenRequest};
pub use routes::{RouteView, Routes};
pub use status::{
    AccountState, ChallengeAnswer, ChallengeRequest, DTMF_RECEIVED_MAX, Held, OwnerActionAccepted,
    OwnerActionRequest, StatusAccount, TalkerCall, TalkerCallKind, TalkerCallState, TalkerStatus,
};
pub use talker::{Media, TalkerKind, TalkerSoftware};
pub use talkers::{RegisteredAccount, RegisteredTalker, TalkerList};
pub use word::UnknownWord;
