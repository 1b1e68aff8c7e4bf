//! Header access by name: case-insensitive, compact forms folded, whichever
//! rsipstack variant (typed or `Other`) happens to hold the header.

use rsipstack::sip::{Header, Headers, typed};

/// The long form of a header name given in compact form (RFC 3261 §7.3.3);
/// other names are returned unchanged.
pub fn long_name(name: &str) -> &str {
    const COMPACT: [(&str, &str); 14] = [
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("e", "Content-Encoding"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("f", "From"),
        ("s", "Subject"),
        ("k", "Supported"),
        ("t", "To"),
        ("v", "Via"),
        ("o", "Event"),
        ("r", "Refer-To"),
        ("b", "Referred-By"),
        ("x", "Session-Expires"),
    ];
    COMPACT
        .iter()
        .find(|(short, _)| short.eq_ignore_ascii_case(name))
        .map_or(name, |(_, long)| long)
}

/// Whether `header` is named `name` (case-insensitive, compact forms folded).
pub fn is_named(header: &Header, name: &str) -> bool {
    long_name(header.name().trim()).eq_ignore_ascii_case(long_name(name))
}

/// Values of every header line named `name`, in order.
pub fn values<'a>(headers: &'a Headers, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |h| is_named(h, name))
        .map(Header::value)
}

/// The first value of header `name`, if any.
pub fn first<'a>(headers: &'a Headers, name: &'a str) -> Option<&'a str> {
    values(headers, name).next()
}

/// The sequence number of the first `CSeq` header, if it reads.
pub fn cseq_number(headers: &Headers) -> Option<u32> {
    first(headers, "CSeq")
        .and_then(|c| typed::CSeq::parse(c).ok())
        .map(|c| c.seq)
}

/// How many header lines are named `name`.
pub fn count(headers: &Headers, name: &str) -> usize {
    headers.iter().filter(|h| is_named(h, name)).count()
}

/// Removes every header line named `name`; returns how many were removed.
pub fn remove(headers: &mut Headers, name: &str) -> usize {
    let before = headers.len();
    headers.retain(|h| !is_named(h, name));
    before - headers.len()
}

/// Splits a header value at top-level commas (outside quotes and angle
/// brackets), as for Via, Route, Record-Route and Contact lists.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, ch) in value.char_indices() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// Every list element of every header line named `name`, in order.
pub fn list(headers: &Headers, name: &str) -> Vec<String> {
    values(headers, name)
        .flat_map(split_list)
        .map(str::to_owned)
        .collect()
}

/// Adds a header line by name and raw value.
pub fn push(headers: &mut Headers, name: &str, value: impl Into<String>) {
    headers.push(rsipstack::sip::headers::make_header(name, value.into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cseq_number_reads_only_from_a_well_formed_cseq() {
        let mut headers = Headers::default();
        assert_eq!(cseq_number(&headers), None);
        push(&mut headers, "CSeq", "7 INVITE");
        assert_eq!(cseq_number(&headers), Some(7));
        let mut odd = Headers::default();
        push(&mut odd, "CSeq", "seven INVITE");
        assert_eq!(cseq_number(&odd), None);
    }

    #[test]
    fn splits_lists_outside_quotes_and_brackets() {
        assert_eq!(
            split_list(r#"<sip:a@x;lr>, "Bob, Jr" <sip:b@y>,sip:c@z"#),
            vec!["<sip:a@x;lr>", r#""Bob, Jr" <sip:b@y>"#, "sip:c@z"]
        );
        assert_eq!(split_list(" , "), Vec::<&str>::new());
    }

    #[test]
    fn finds_headers_by_compact_and_long_names() {
        let mut h = Headers::default();
        push(&mut h, "i", "abc");
        push(&mut h, "X-Thing", "1");
        assert_eq!(first(&h, "call-id"), Some("abc"));
        assert_eq!(first(&h, "x-thing"), Some("1"));
        assert_eq!(count(&h, "Call-ID"), 1);
        assert_eq!(remove(&mut h, "x-THING"), 1);
        assert_eq!(h.len(), 1);
    }
}
