//! How requests and replies are framed: one JSON object per line, each at most
//! [`MAX_LINE_BYTES`]. The worker writes its replies as lines on stdout; a worker started by
//! hand reads its requests as lines from a plain pipe (the agent sends them as packets, see
//! [`crate::passing`], each packet holding one such line). Both sides bound what they hold,
//! whatever arrives.

use std::io;

use serde::Serialize;

/// Longest line either side accepts; a longer one is dropped whole (and answered with an
/// error when it was a request). Real lines are a few hundred bytes.
pub const MAX_LINE_BYTES: usize = 256 * 1024;

/// One JSON value as a line (with its `\n`).
pub fn encode_line(value: &impl Serialize) -> Result<Vec<u8>, serde_json::Error> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    Ok(line)
}

/// What [`LineBuffer::push`] and [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line, without its `\n`.
    Complete(Vec<u8>),
    /// A line longer than the limit ended here; its bytes were dropped.
    TooLong,
}

/// Splits a byte stream into lines of at most a given length, holding at most that many
/// bytes whatever arrives: both sides use it on their end of the pipe.
#[derive(Debug)]
pub struct LineBuffer {
    limit: usize,
    partial: Vec<u8>,
    overflowed: bool,
}

impl LineBuffer {
    /// A buffer for lines of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            partial: Vec::new(),
            overflowed: false,
        }
    }

    /// Feeds `bytes`; returns how many were used (up to and including a `\n`) and the line
    /// they completed, if any. Call again with the rest.
    pub fn push(&mut self, bytes: &[u8]) -> (usize, Option<Line>) {
        let (used, end) = match bytes.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, Some(at)),
            None => (bytes.len(), None),
        };
        let content = &bytes[..end.unwrap_or(used)];
        if !self.overflowed {
            if self.partial.len() + content.len() > self.limit {
                self.overflowed = true;
                self.partial = Vec::new();
            } else {
                self.partial.extend_from_slice(content);
            }
        }
        if end.is_none() {
            return (used, None);
        }
        let line = if std::mem::take(&mut self.overflowed) {
            Line::TooLong
        } else {
            Line::Complete(std::mem::take(&mut self.partial))
        };
        (used, Some(line))
    }
}

/// Reads the next line from a blocking reader through `buffer`; `Ok(None)` at end of input
/// (a last line without `\n` is dropped: the writer died mid-line).
pub fn read_line(
    reader: &mut impl io::BufRead,
    buffer: &mut LineBuffer,
) -> io::Result<Option<Line>> {
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(None);
        }
        let (used, line) = buffer.push(available);
        reader.consume(used);
        if let Some(line) = line {
            return Ok(Some(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_bounded() {
        let mut input: &[u8] = b"one\ntwo-is-too-long\nthree\npartial";
        let mut buffer = LineBuffer::new(5);
        let mut lines = Vec::new();
        while let Some(line) = read_line(&mut input, &mut buffer).expect("reads") {
            lines.push(line);
        }
        assert_eq!(
            lines,
            vec![
                Line::Complete(b"one".to_vec()),
                Line::TooLong,
                Line::Complete(b"three".to_vec()),
            ]
        );
    }

    #[test]
    fn a_line_split_across_reads_is_joined() {
        let mut buffer = LineBuffer::new(64);
        assert_eq!(buffer.push(b"{\"id\""), (5, None));
        assert_eq!(
            buffer.push(b":1}\nrest"),
            (4, Some(Line::Complete(b"{\"id\":1}".to_vec())))
        );
    }
}
