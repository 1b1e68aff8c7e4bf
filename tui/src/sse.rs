//! A Server-Sent Events frame parser (the WHATWG "event stream interpretation"),
//! fed with whatever chunks the network delivers.
//!
//! Lines end in CRLF, LF or CR (a CR at the end of one chunk and an LF at the
//! start of the next are one line end); a blank line dispatches the event; lines
//! starting with `:` are comments (the matcher's keep-alives). Bounded: a line
//! longer than `max_line` bytes, or an event whose data grows past `max_event`
//! bytes, is an error and the caller drops the connection (and resumes with
//! `Last-Event-ID`), so a misbehaving server cannot grow our memory.
//!
//! Our own rather than a crate's because the maintained ones bound nothing
//! and misread some of these cases (docs/dialer.md, "Network manners").

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseFrame {
    /// The `event:` type (`message` when none was given).
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last id of the stream when this event completed (its own `id:`, or
    /// an earlier one when it carried none).
    pub id: Option<String>,
}

/// Why the stream cannot be read further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line is longer than the bound.
    #[error("an event stream line is longer than {0} bytes")]
    LineTooLong(usize),
    /// An event's data is larger than the bound.
    #[error("an event is larger than {0} bytes")]
    EventTooLarge(usize),
}

/// Incremental parser; see the module documentation.
#[derive(Debug)]
pub struct SseParser {
    max_line: usize,
    max_event: usize,
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF starting this one is not a new line.
    after_cr: bool,
    /// Nothing has been read yet (a leading UTF-8 BOM is dropped).
    at_start: bool,
    event: String,
    data: String,
    has_data: bool,
    /// The `id:` of the event being read (committed on its blank line).
    id_buffer: Option<String>,
    /// The id of the last complete event: a reconnect resumes after it, so an
    /// event cut off mid-way is asked for again.
    last_id: Option<String>,
    retry_ms: Option<u64>,
}

impl SseParser {
    /// A parser with the given bounds (bytes).
    pub fn new(max_line: usize, max_event: usize) -> Self {
        Self {
            max_line,
            max_event,
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            event: String::new(),
            data: String::new(),
            has_data: false,
            id_buffer: None,
            last_id: None,
            retry_ms: None,
        }
    }

    /// The last event id seen (what `Last-Event-ID` carries on a reconnect).
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// The server's `retry:` advice in milliseconds, if it gave one.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Forgets a half-read line and event (after a reconnect), keeping the
    /// last id.
    pub fn reset_connection(&mut self) {
        self.line.clear();
        self.after_cr = false;
        self.at_start = true;
        self.event.clear();
        self.data.clear();
        self.has_data = false;
        self.id_buffer.clone_from(&self.last_id);
    }

    /// Feeds one chunk; returns the events it completed, in order.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<Vec<SseFrame>, SseError> {
        let mut frames = Vec::new();
        if chunk.is_empty() {
            // Nothing arrived: a CR that ended the previous chunk may still
            // be followed by its LF (found by fuzz/sse_chunks).
            return Ok(frames);
        }
        if self.after_cr && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        self.after_cr = false;
        while !chunk.is_empty() {
            match chunk.iter().position(|b| *b == b'\n' || *b == b'\r') {
                None => {
                    self.extend_line(chunk)?;
                    break;
                }
                Some(end) => {
                    self.extend_line(&chunk[..end])?;
                    let cr = chunk[end] == b'\r';
                    chunk = &chunk[end + 1..];
                    if cr {
                        if chunk.first() == Some(&b'\n') {
                            chunk = &chunk[1..];
                        } else if chunk.is_empty() {
                            self.after_cr = true;
                        }
                    }
                    let line = std::mem::take(&mut self.line);
                    if let Some(frame) = self.process_line(&line)? {
                        frames.push(frame);
                    }
                }
            }
        }
        Ok(frames)
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > self.max_line {
            return Err(SseError::LineTooLong(self.max_line));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process_line(&mut self, raw: &[u8]) -> Result<Option<SseFrame>, SseError> {
        let mut raw = raw;
        if self.at_start {
            self.at_start = false;
            raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        }
        if raw.is_empty() {
            return Ok(self.dispatch());
        }
        let line = String::from_utf8_lossy(raw);
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                let grown = self.data.len() + value.len() + usize::from(self.has_data);
                if grown > self.max_event {
                    return Err(SseError::EventTooLarge(self.max_event));
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.id_buffer = Some(value.to_owned()),
            "retry" => {
                if let Ok(ms) = value.parse() {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseFrame> {
        self.last_id.clone_from(&self.id_buffer);
        let event = std::mem::take(&mut self.event);
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseFrame {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data: std::mem::take(&mut self.data),
            id: self.last_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const STREAM: &str = ": keep-alive\n\nevent: state\nid: 1\ndata: {\"seq\":1}\n\n\
                          event: state\r\nid: 2\r\ndata: {\"seq\":2}\r\n\r\n\
                          event: state\rid: 3\rdata: a\rdata: b\r\r";

    fn expected() -> Vec<SseFrame> {
        vec![
            SseFrame {
                event: "state".into(),
                data: "{\"seq\":1}".into(),
                id: Some("1".into()),
            },
            SseFrame {
                event: "state".into(),
                data: "{\"seq\":2}".into(),
                id: Some("2".into()),
            },
            SseFrame {
                event: "state".into(),
                data: "a\nb".into(),
                id: Some("3".into()),
            },
        ]
    }

    #[test]
    fn whole_stream_in_one_chunk() {
        let mut p = SseParser::new(1024, 4096);
        assert_eq!(p.feed(STREAM.as_bytes()).unwrap(), expected());
        assert_eq!(p.last_id(), Some("3"));
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            let mut p = SseParser::new(1024, 4096);
            let mut frames = p.feed(&bytes[..cut]).unwrap();
            frames.extend(p.feed(&bytes[cut..]).unwrap());
            assert_eq!(frames, expected(), "cut at {cut}");
        }
        // And byte by byte.
        let mut p = SseParser::new(1024, 4096);
        let mut frames = Vec::new();
        for b in bytes {
            frames.extend(p.feed(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(frames, expected());
    }

    #[test]
    fn field_rules() {
        let mut p = SseParser::new(1024, 4096);
        let frames = p
            .feed(
                b"\xEF\xBB\xBFdata:no space\ndata\nretry: 1500\nunknown: x\n\n\
                    id: 9\n\nevent: other\n\ndata: after\n\n",
            )
            .unwrap();
        assert_eq!(
            frames,
            vec![
                SseFrame {
                    event: "message".into(),
                    data: "no space\n".into(),
                    id: None,
                },
                // An event with no data is not dispatched, but its id sticks and
                // its type does not leak into the next event.
                SseFrame {
                    event: "message".into(),
                    data: "after".into(),
                    id: Some("9".into()),
                },
            ]
        );
        assert_eq!(p.retry_ms(), Some(1500));
    }

    #[test]
    fn oversized_lines_and_events_are_errors() {
        let mut p = SseParser::new(16, 64);
        assert_eq!(
            p.feed(b"data: 0123456789abcdef\n"),
            Err(SseError::LineTooLong(16))
        );
        // Split across chunks, without a line end yet.
        let mut p = SseParser::new(16, 64);
        assert!(p.feed(b"data: 01234").unwrap().is_empty());
        assert_eq!(p.feed(b"56789abcdef"), Err(SseError::LineTooLong(16)));
        // Many short lines that add up.
        let mut p = SseParser::new(16, 20);
        assert_eq!(
            p.feed(b"data: 0123456\ndata: 0123456\ndata: 0123456\n"),
            Err(SseError::EventTooLarge(20))
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_and_the_stream_goes_on() {
        let mut p = SseParser::new(1024, 4096);
        let frames = p.feed(b"data: a\xFFb\n\ndata: next\n\n").unwrap();
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert_eq!(frames[0].data, "a\u{FFFD}b");
        assert_eq!(frames[1].data, "next");
    }

    #[test]
    fn an_empty_chunk_between_cr_and_lf_changes_nothing() {
        let mut p = SseParser::new(1024, 4096);
        let mut frames = p.feed(b"event: state\r").unwrap();
        frames.extend(p.feed(b"").unwrap());
        frames.extend(p.feed(b"\ndata: x\n\n").unwrap());
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].event, "state");
    }

    #[test]
    fn a_half_event_is_asked_for_again_after_a_reset() {
        let mut p = SseParser::new(1024, 4096);
        p.feed(b"id: 4\ndata: x\n\nid: 5\ndata: half").unwrap();
        // Event 5 never completed: resume after 4.
        assert_eq!(p.last_id(), Some("4"));
        p.reset_connection();
        let frames = p.feed(b"data: y\n\n").unwrap();
        assert_eq!(frames[0].data, "y");
        assert_eq!(frames[0].id.as_deref(), Some("4"));
    }
}
