//! The NOTIFYs that report a control leg's referred calls (RFC 3515): a `message/sipfrag`
//! body with the call's status, `Event: refer` with the REFER's id for every REFER after
//! the first (§2.4.6), and `Subscription-State` terminated (`noresource`) with the final
//! status.

use super::make;
use rsipstack::sip::Header;
use splitdial_sip::event::Event;
use splitdial_sip::sipfrag;
use splitdial_sip::subscription::{Reason, SubscriptionState};

/// How long an active subscription is said to last; the final NOTIFY ends it long before.
const ACTIVE_EXPIRES_SECS: u32 = 60;

/// The implicit subscriptions of one control leg's REFERs (and of the party named in
/// its INVITE, reported like a first REFER).
#[derive(Debug, Default)]
pub(super) struct ReferSubscriptions {
    first: Option<u32>,
}

impl ReferSubscriptions {
    /// The `Event` id for the NOTIFYs of the REFER with CSeq `cseq`: none for the first
    /// (its NOTIFYs say plain `refer`), its CSeq for every later one.
    pub(super) fn event_id(&mut self, cseq: u32) -> Option<u32> {
        let first = *self.first.get_or_insert(cseq);
        (cseq != first).then_some(cseq)
    }
}

/// The headers and body of the NOTIFY that reports `status` (100, 18x, 200 or a
/// failure) on the subscription `event_id`; a final status ends the subscription.
pub(super) fn notify(status: u16, event_id: Option<u32>) -> (Vec<Header>, Vec<u8>) {
    let state = if status >= 200 {
        SubscriptionState::terminated(Some(Reason::Noresource))
    } else {
        SubscriptionState::active(Some(ACTIVE_EXPIRES_SECS))
    };
    let headers = vec![
        make("Event", Event::refer(event_id).to_string()),
        make("Subscription-State", state.to_string()),
        make("Content-Type", "message/sipfrag;version=2.0".into()),
    ];
    (headers, sipfrag::build(status).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_refer_has_no_id_and_every_later_one_its_cseq() {
        let mut subscriptions = ReferSubscriptions::default();
        assert_eq!(subscriptions.event_id(1), None);
        assert_eq!(subscriptions.event_id(4), Some(4));
        assert_eq!(subscriptions.event_id(1), None, "the first stays the first");
        let header = |headers: &[Header], name: &str| {
            let headers = rsipstack::sip::Headers::from(headers.to_vec());
            splitdial_sip::headers::first(&headers, name).map(str::to_owned)
        };
        let (headers, body) = notify(180, None);
        assert_eq!(header(&headers, "Event").as_deref(), Some("refer"));
        assert!(
            header(&headers, "Subscription-State")
                .unwrap()
                .starts_with("active")
        );
        assert!(String::from_utf8_lossy(&body).starts_with("SIP/2.0 180"));
        let (headers, _) = notify(487, Some(4));
        assert_eq!(header(&headers, "Event").as_deref(), Some("refer;id=4"));
        assert_eq!(
            header(&headers, "Subscription-State").as_deref(),
            Some("terminated;reason=noresource")
        );
    }
}
