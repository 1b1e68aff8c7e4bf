//! Fuzz target: the dialer's Server-Sent Events parser must never panic on
//! what the matcher's event stream delivers, and how the network cuts the
//! stream into chunks must not change what it reads.
//!
//! Input layout: byte 0 picks the line bound, byte 1 the event bound, byte 2
//! the number of cuts (0..=15), then one byte per cut (the length of that
//! chunk, so empty chunks happen too); the rest is the stream. The stream is
//! fed whole to one parser and in those chunks to another: both must give the
//! same frames, last id and retry advice, or fail with the same error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use splitdial_tui::sse::{SseError, SseFrame, SseParser};

/// Everything one parser read: the frames, then how the stream ended.
type Outcome = (
    Vec<SseFrame>,
    Result<(Option<String>, Option<u64>), SseError>,
);

fn parser(data: &[u8]) -> SseParser {
    let max_line = 1 + usize::from(data[0]) * 4;
    let max_event = 1 + usize::from(data[1]) * 16;
    SseParser::new(max_line, max_event)
}

fn read<'a>(mut p: SseParser, chunks: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut frames = Vec::new();
    for chunk in chunks {
        match p.feed(chunk) {
            Ok(more) => frames.extend(more),
            // The caller drops the connection here: nothing after counts.
            Err(e) => return (frames, Err(e)),
        }
    }
    let end = (p.last_id().map(str::to_owned), p.retry_ms());
    (frames, Ok(end))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let cuts = usize::from(data[2] % 16);
    if data.len() < 3 + cuts {
        return;
    }
    let lengths = &data[3..3 + cuts];
    let stream = &data[3 + cuts..];

    let whole = read(parser(data), std::iter::once(stream));

    let mut chunks = Vec::with_capacity(cuts + 1);
    let mut rest = stream;
    for &len in lengths {
        let (chunk, tail) = rest.split_at(usize::from(len).min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    chunks.push(rest);
    let chunked = read(parser(data), chunks.iter().copied());

    // On an error the whole-stream parser loses the frames of its only chunk,
    // so only the error itself can be compared.
    match (&whole.1, &chunked.1) {
        (Err(a), Err(b)) => assert_eq!(a, b, "different errors"),
        _ => assert_eq!(whole, chunked, "chunking changed what was read"),
    }
    for frame in &chunked.0 {
        assert!(
            frame.data.len() <= 1 + usize::from(data[1]) * 16,
            "event bound"
        );
        assert!(!frame.event.is_empty(), "an event always has a type");
    }
});
