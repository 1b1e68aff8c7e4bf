//! Messages sent outside rsipstack's transactions: stateless responses to
//! requests we refuse, and the hop-by-hop plumbing a proxy needs.

use crate::headers;
use rsipstack::sip::{Header, Headers, Request, Response, StatusCode, Version};
use rsipstack::transaction::make_tag;

/// Builds a response to `request` with `status` and `reason` (the reason phrase is
/// sent as given), copying Via, From, To, Call-ID and CSeq per RFC 3261 §8.2.6.
///
/// A To tag is added to final responses when the request had none.
pub fn response_to(request: &Request, status: u16, reason: &str, extra: Vec<Header>) -> Response {
    let mut out = Headers::default();
    for h in request.headers.iter() {
        if ["Via", "From", "Call-ID", "CSeq"]
            .iter()
            .any(|n| headers::is_named(h, n))
        {
            out.push(h.clone());
        } else if headers::is_named(h, "To") {
            let value = h.value();
            if status >= 200 && !has_tag(value) {
                headers::push(&mut out, "To", format!("{value};tag={}", make_tag()));
            } else {
                out.push(h.clone());
            }
        }
    }
    out.extend(extra);
    headers::push(&mut out, "Content-Length", "0");
    Response {
        status_code: StatusCode::Other(status, reason.to_owned()),
        wire_reason: None,
        version: Version::V2,
        headers: out,
        body: Vec::new(),
    }
}

/// Whether a From or To value carries a `tag` parameter (outside the URI).
pub fn has_tag(value: &str) -> bool {
    // Parameters after `>` belong to the header; without brackets, after the URI.
    let params = match value.rfind('>') {
        Some(i) => &value[i..],
        None => value,
    };
    params
        .split(';')
        .skip(1)
        .any(|p| p.trim().to_ascii_lowercase().starts_with("tag="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_tags_outside_the_uri() {
        assert!(has_tag("<sip:a@x>;tag=12"));
        assert!(!has_tag("<sip:a@x;tag=12>"));
        assert!(has_tag("sip:a@x;tag=12"));
        assert!(!has_tag("sip:a@x"));
    }

    #[test]
    fn builds_a_response_with_a_to_tag() {
        let req = Request::try_from(
            "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=x\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let resp = response_to(&req, 400, "Bad Thing", vec![]);
        let text = resp.to_string();
        assert!(text.starts_with("SIP/2.0 400 Bad Thing\r\n"), "{text}");
        assert!(has_tag(headers::first(&resp.headers, "To").unwrap()));
    }
}
