//! Merged-request detection for a UAS (RFC 3261 §8.2.2.2), which rsipstack
//! lacks: a request without a To tag whose From tag, Call-ID and CSeq match a
//! request seen before, but which belongs to another transaction (a different
//! top Via branch or sent-by, RFC 3261 §17.2.3), reached us twice through a
//! forking proxy and gets 482 (Loop Detected).
//!
//! Memory is bounded: entries expire after [`MergedRequests::DEFAULT_TTL`]
//! (64·T1, the longest a transaction lives) and at most
//! [`MergedRequests::DEFAULT_CAPACITY`] are kept (the oldest go first). Only
//! hashes are stored, so an entry's size does not depend on the message.

use crate::headers;
use rsipstack::sip::{Method, Request, typed};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

/// What a request is, compared with those seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not seen before (now remembered).
    First,
    /// The same transaction again: a retransmission, not a merge.
    Retransmission,
    /// The same request through another path: answer 482 Loop Detected.
    Merged,
    /// Not subject to the check: it has a To tag (in a dialog), is an ACK, or
    /// lacks a From tag, CSeq or a parseable top Via.
    NotChecked,
}

/// Remembers recent out-of-dialog requests to detect merged ones.
#[derive(Debug)]
pub struct MergedRequests {
    hasher: RandomState,
    /// Request identity (From tag, Call-ID, CSeq) → (transaction identity, first seen).
    entries: HashMap<u64, (u64, Instant)>,
    /// Request identities in the order they were first seen.
    order: VecDeque<(Instant, u64)>,
    ttl: Duration,
    capacity: usize,
}

impl Default for MergedRequests {
    fn default() -> Self {
        Self::new()
    }
}

impl MergedRequests {
    /// How long a request is remembered: 64·T1 = 32 s, a transaction's lifetime.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(32);
    /// How many requests are remembered at most.
    pub const DEFAULT_CAPACITY: usize = 16_384;

    /// A detector with the default expiry and capacity.
    pub fn new() -> Self {
        Self::with_limits(Self::DEFAULT_TTL, Self::DEFAULT_CAPACITY)
    }

    /// A detector that remembers requests for `ttl`, at most `capacity` of them
    /// (at least one).
    pub fn with_limits(ttl: Duration, capacity: usize) -> Self {
        Self {
            hasher: RandomState::new(),
            entries: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// How many requests are remembered now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks `request`, received at `now`, and remembers it if it is new.
    pub fn check(&mut self, request: &Request, now: Instant) -> Seen {
        match Identity::of(request) {
            Some(id) => self.check_identity(&id, now),
            None => Seen::NotChecked,
        }
    }

    fn check_identity(&mut self, id: &Identity<'_>, now: Instant) -> Seen {
        self.expire(now);
        let key = self
            .hasher
            .hash_one((&id.from_tag, id.call_id, id.cseq, &id.method));
        let transaction = self.hasher.hash_one((&id.branch, id.sent_by.as_str()));
        if let Some((known, _)) = self.entries.get(&key) {
            return if *known == transaction {
                Seen::Retransmission
            } else {
                Seen::Merged
            };
        }
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some((_, oldest)) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
        self.entries.insert(key, (transaction, now));
        self.order.push_back((now, key));
        Seen::First
    }

    /// Forgets requests first seen more than the expiry time before `now`.
    fn expire(&mut self, now: Instant) {
        while let Some(&(seen, key)) = self.order.front() {
            if now.saturating_duration_since(seen) < self.ttl {
                break;
            }
            self.order.pop_front();
            self.entries.remove(&key);
        }
    }
}

/// The parts of a request the check compares.
struct Identity<'a> {
    from_tag: String,
    call_id: &'a str,
    cseq: u32,
    method: String,
    branch: String,
    sent_by: String,
}

impl<'a> Identity<'a> {
    fn of(request: &'a Request) -> Option<Self> {
        let h = &request.headers;
        if request.method == Method::Ack {
            return None;
        }
        let to = typed::To::parse(headers::first(h, "To")?).ok()?;
        if to.tag().is_some() {
            return None;
        }
        let from = typed::From::parse(headers::first(h, "From")?).ok()?;
        let cseq = typed::CSeq::parse(headers::first(h, "CSeq")?).ok()?;
        let via = headers::list(h, "Via").into_iter().next()?;
        let via = typed::Via::parse(&via).ok()?;
        Some(Self {
            from_tag: from.tag()?.to_string(),
            call_id: headers::first(h, "Call-ID")?.trim(),
            cseq: cseq.seq,
            method: cseq.method.to_string(),
            branch: via.branch()?.to_string(),
            sent_by: via.sent_by().to_string().to_ascii_lowercase(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(branch: &str, sent_by: &str, from_tag: &str, cseq: u32, to_tag: &str) -> Request {
        Request::try_from(
            format!(
                "INVITE sip:bob@home.example SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {sent_by};branch=z9hG4bK{branch}\r\n\
                 Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKorigin\r\n\
                 From: <sip:alice@home.example>;tag={from_tag}\r\n\
                 To: <sip:bob@home.example>{to_tag}\r\n\
                 Call-ID: merged-1\r\n\
                 CSeq: {cseq} INVITE\r\n\
                 Content-Length: 0\r\n\r\n"
            )
            .as_str(),
        )
        .unwrap()
    }

    #[test]
    fn detects_the_same_request_through_another_branch() {
        let mut seen = MergedRequests::new();
        let now = Instant::now();
        assert_eq!(
            seen.check(&invite("a", "127.0.0.1:5060", "f", 1, ""), now),
            Seen::First
        );
        assert_eq!(
            seen.check(&invite("a", "127.0.0.1:5060", "f", 1, ""), now),
            Seen::Retransmission
        );
        assert_eq!(
            seen.check(&invite("b", "127.0.0.1:5060", "f", 1, ""), now),
            Seen::Merged
        );
        // Same branch from another proxy is another transaction too.
        assert_eq!(
            seen.check(&invite("a", "127.0.0.2:5060", "f", 1, ""), now),
            Seen::Merged
        );
        // Another CSeq or From tag is another request.
        assert_eq!(
            seen.check(&invite("c", "127.0.0.1:5060", "f", 2, ""), now),
            Seen::First
        );
        assert_eq!(
            seen.check(&invite("d", "127.0.0.1:5060", "g", 1, ""), now),
            Seen::First
        );
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn skips_in_dialog_requests_and_acks() {
        let mut seen = MergedRequests::new();
        let now = Instant::now();
        let in_dialog = invite("a", "127.0.0.1:5060", "f", 1, ";tag=t");
        assert_eq!(seen.check(&in_dialog, now), Seen::NotChecked);
        let mut ack = invite("a", "127.0.0.1:5060", "f", 1, "");
        ack.method = Method::Ack;
        assert_eq!(seen.check(&ack, now), Seen::NotChecked);
        let no_tag = Request::try_from(
            "OPTIONS sip:home.example SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n\
             From: <sip:a@home.example>\r\nTo: <sip:home.example>\r\nCall-ID: x\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(seen.check(&no_tag, now), Seen::NotChecked);
        assert!(seen.is_empty());
    }

    #[test]
    fn forgets_after_the_expiry_time() {
        let mut seen = MergedRequests::new();
        let start = Instant::now();
        assert_eq!(
            seen.check(&invite("a", "127.0.0.1", "f", 1, ""), start),
            Seen::First
        );
        let later = start + Duration::from_secs(31);
        assert_eq!(
            seen.check(&invite("b", "127.0.0.1", "f", 1, ""), later),
            Seen::Merged
        );
        let much_later = start + MergedRequests::DEFAULT_TTL;
        assert_eq!(
            seen.check(&invite("b", "127.0.0.1", "f", 1, ""), much_later),
            Seen::First
        );
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn keeps_at_most_its_capacity() {
        let mut seen = MergedRequests::with_limits(Duration::from_secs(32), 3);
        let now = Instant::now();
        for cseq in 1..=5 {
            assert_eq!(
                seen.check(&invite("a", "127.0.0.1", "f", cseq, ""), now),
                Seen::First
            );
        }
        assert_eq!(seen.len(), 3);
        // The oldest (CSeq 1 and 2) were evicted; 5 is still known.
        assert_eq!(
            seen.check(&invite("z", "127.0.0.1", "f", 1, ""), now),
            Seen::First
        );
        assert_eq!(
            seen.check(&invite("z", "127.0.0.1", "f", 5, ""), now),
            Seen::Merged
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Against a plain model without eviction: with no expiry or capacity
        /// pressure, the detector says exactly what the model says.
        #[test]
        fn agrees_with_a_model_and_stays_bounded(
            requests in proptest::collection::vec((0u8..3, 0u8..3, 1u32..4, 0u64..40), 1..60),
            capacity in 1usize..8,
        ) {
            let start = Instant::now();
            let mut bounded = MergedRequests::with_limits(Duration::from_secs(32), capacity);
            let mut roomy = MergedRequests::with_limits(Duration::from_secs(3600), 10_000);
            let mut model: HashMap<(u8, u32), u8> = HashMap::new();
            let mut elapsed = 0;
            for (branch, tag, cseq, step) in requests {
                elapsed += step;
                let now = start + Duration::from_secs(elapsed);
                let request = invite(&branch.to_string(), "127.0.0.1", &tag.to_string(), cseq, "");
                let expected = match model.get(&(tag, cseq)) {
                    None => {
                        model.insert((tag, cseq), branch);
                        Seen::First
                    }
                    Some(b) if *b == branch => Seen::Retransmission,
                    Some(_) => Seen::Merged,
                };
                proptest::prop_assert_eq!(roomy.check(&request, now), expected);
                let _ = bounded.check(&request, now);
                proptest::prop_assert!(bounded.len() <= capacity);
                proptest::prop_assert_eq!(bounded.len(), bounded.order.len());
            }
        }
    }
}
