//! Headers whose meaning depends on who sent them: auto-answer hints (only a
//! trusted controller may ask a phone to answer by itself) and asserted identity
//! (only we assert who an authenticated caller is).

use rsipstack::sip::Headers;
use splitdial_sip::headers;

/// Removes every auto-answer hint: `Answer-Mode`, `Priv-Answer-Mode` (RFC 5373),
/// `Call-Info` entries with `answer-after`, and `Alert-Info` entries with
/// `info=alert-autoanswer`. Returns how many entries were removed.
pub fn strip_auto_answer(h: &mut Headers) -> usize {
    let mut removed = headers::remove(h, "Answer-Mode") + headers::remove(h, "Priv-Answer-Mode");
    for (name, marker) in [
        ("Call-Info", "answer-after"),
        ("Alert-Info", "alert-autoanswer"),
    ] {
        let entries = headers::list(h, name);
        if entries.is_empty() {
            continue;
        }
        let kept: Vec<String> = entries
            .iter()
            .filter(|e| !e.to_ascii_lowercase().contains(marker))
            .cloned()
            .collect();
        removed += entries.len() - kept.len();
        headers::remove(h, name);
        for e in kept {
            headers::push(h, name, e);
        }
    }
    removed
}

/// Replaces any identity the sender claimed with the one we authenticated.
pub fn assert_identity(h: &mut Headers, asserted: Option<&str>) {
    headers::remove(h, "P-Asserted-Identity");
    headers::remove(h, "P-Preferred-Identity");
    if let Some(uri) = asserted {
        headers::push(h, "P-Asserted-Identity", format!("<{uri}>"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_every_kind_of_hint_and_keeps_the_rest() {
        let mut h = Headers::default();
        headers::push(&mut h, "Answer-Mode", "Auto");
        headers::push(&mut h, "priv-answer-mode", "Auto");
        headers::push(
            &mut h,
            "Call-Info",
            "<sip:ctl@x>;answer-after=0, <http://x/photo.png>;purpose=icon",
        );
        headers::push(&mut h, "Alert-Info", "<http://x>;info=alert-autoanswer");
        headers::push(&mut h, "Subject", "hi");
        assert_eq!(strip_auto_answer(&mut h), 4);
        assert_eq!(
            headers::list(&h, "Call-Info"),
            vec!["<http://x/photo.png>;purpose=icon"]
        );
        assert_eq!(headers::count(&h, "Alert-Info"), 0);
        assert_eq!(headers::first(&h, "Subject"), Some("hi"));
    }

    #[test]
    fn replaces_claimed_identity() {
        let mut h = Headers::default();
        headers::push(&mut h, "P-Asserted-Identity", "<sip:boss@x>");
        assert_identity(&mut h, Some("sip:alice@home.example"));
        assert_eq!(
            headers::first(&h, "P-Asserted-Identity"),
            Some("<sip:alice@home.example>")
        );
        assert_identity(&mut h, None);
        assert_eq!(headers::count(&h, "P-Asserted-Identity"), 0);
    }
}
