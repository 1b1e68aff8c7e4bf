//! The method table: which requests inside a call the agent serves, and the `Allow`,
//! `Accept` and `Supported` values every answer that names them carries (one list for
//! the agent: the same in every 2xx to an INVITE, in OPTIONS and in a 405).

use rsipstack::sip::{Header, Method};

/// The methods the agent serves inside a call, as `Allow` lists them. REFER and NOTIFY
/// are obeyed only inside a control leg (403 and 481 elsewhere), never 501.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY";
/// The bodies the agent takes inside a call: SDP offers and answers, and the legacy
/// DTMF bodies of INFO (RFC 6086 §9, no Info-Package).
pub const ACCEPT: &str = "application/sdp, application/dtmf-relay, application/dtmf";
/// The option tags the agent supports: session timers (RFC 4028).
pub const SUPPORTED: &str = "timer";
/// The Info Packages the agent takes (`Recv-Info`): none, only legacy INFO.
pub const RECV_INFO: &str = "";

/// Whether `method` is one the agent serves inside a call (listed in [`ALLOW`]).
pub fn served(method: &Method) -> bool {
    matches!(
        method,
        Method::Invite
            | Method::Ack
            | Method::Cancel
            | Method::Bye
            | Method::Options
            | Method::Info
            | Method::Update
            | Method::Refer
            | Method::Notify
    )
}

/// `name: value` as a header of an answer.
pub fn header(name: &str, value: &str) -> Header {
    rsipstack::sip::headers::make_header(name, value.to_owned())
}

/// The `Allow` header.
pub fn allow() -> Header {
    header("Allow", ALLOW)
}

/// The `Accept` header.
pub fn accept() -> Header {
    header("Accept", ACCEPT)
}

/// The `Supported` header.
pub fn supported() -> Header {
    header("Supported", SUPPORTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_in_allow_is_served_and_no_other() {
        for name in splitdial_sip::headers::split_list(ALLOW) {
            let method: Method = name.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(served(&method), "{name}");
        }
        for refused in [
            Method::Message,
            Method::Publish,
            Method::Subscribe,
            Method::Register,
            Method::PRack,
        ] {
            assert!(!served(&refused), "{refused}");
        }
    }
}
