//! Fuzz target: the talker agent's SDP handling of a body that arrives from the
//! network must never panic. Whatever the text, answering it as an offer
//! (`answer`, `inactive_answer`), reading it as an answer to our own offer
//! (`negotiated_from_answer`) and asking whether it wants media
//! (`offers_active_media`) return a value or an `SdpError` with a 4xx; and an
//! answer we write is itself SDP we can read back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;
use talker_agent::media::{
    AllocatedPorts, MediaSettings, answer, inactive_answer, negotiated_from_answer, offer,
    offers_active_media,
};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Ports reserved once on loopback (answering needs real port numbers; nothing
/// is ever sent from them).
fn ports() -> &'static AllocatedPorts {
    static PORTS: OnceLock<AllocatedPorts> = OnceLock::new();
    PORTS.get_or_init(|| AllocatedPorts::reserve(LOCAL, true).expect("loopback ports"))
}

fn settings() -> MediaSettings {
    MediaSettings::new(LOCAL)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let settings = settings();
    match answer(&text, &settings, ports()) {
        Ok((written, _plan)) => {
            offers_active_media(&written).expect("our own answer reads back");
        }
        Err(error) => assert!((400..500).contains(&error.sip_status()), "{error:?}"),
    }
    if let Ok(written) = inactive_answer(&text, LOCAL) {
        assert_eq!(offers_active_media(&written).ok(), Some(false), "{written}");
    }
    let _ = offers_active_media(&text);
    if let Ok(ours) = offer(&settings, ports(), true) {
        let _ = negotiated_from_answer(&ours, &text);
    }
});
