//! The talker agent's media worker: one process per agent, started when a call first needs
//! media, running every GStreamer pipeline of that agent's calls, and exiting when the agent
//! closes its stdin. The agent (`talker-agent`) links no GStreamer at all; it talks to this
//! worker with the requests of the `splitdial-media` contract ([`splitdial_media::protocol`]).
//!
//! * [`requests`] reads requests (and the sockets passed with them) from stdin.
//! * [`serve`] runs requests and writes replies.
//! * [`session`] runs one call leg on `rtpbin`; [`conference`] mixes several legs.
//! * `chains` holds the GStreamer building blocks both use.
//! * [`analyze`] measures what arrives at an `analyze` sink.
//! * [`error`] turns GStreamer's errors into the shared media errors.

pub mod analyze;
mod chains;
pub mod conference;
pub mod error;
pub mod requests;
pub mod serve;
pub mod session;

pub use conference::Conference;
pub use session::MediaSession;
