//! Reading a talker agent's `media summary` log line — one per ended call leg,
//! with what the leg heard and saw — the way end-to-end tests check media.

use std::collections::BTreeMap;

/// The fields of one `media summary` line (`key=value` pairs of the tracing
/// output, colours stripped, quotes removed).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaSummary {
    fields: BTreeMap<String, String>,
}

/// `line` without ANSI colour escapes.
fn strip_colours(line: &str) -> String {
    let mut plain = String::new();
    let mut in_escape = false;
    for c in line.chars() {
        match c {
            '\u{1b}' => in_escape = true,
            'm' if in_escape => in_escape = false,
            _ if in_escape => {}
            _ => plain.push(c),
        }
    }
    plain
}

impl MediaSummary {
    /// Parses one log line, if it is a media summary.
    pub fn parse(line: &str) -> Option<Self> {
        if !line.contains("media summary") {
            return None;
        }
        let plain = strip_colours(line);
        let fields = plain
            .split_whitespace()
            .filter_map(|token| token.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect();
        Some(Self { fields })
    }

    /// Every media summary in `log`, oldest first.
    pub fn all_in(log: &str) -> Vec<Self> {
        log.lines().filter_map(Self::parse).collect()
    }

    /// The last media summary in `log`.
    pub fn last_in(log: &str) -> Option<Self> {
        log.lines().rev().find_map(Self::parse)
    }

    /// A numeric field (`heard_hz`, `video_frames`, ...).
    pub fn number(&self, field: &str) -> Option<f64> {
        self.fields.get(field)?.parse().ok()
    }

    /// The frequencies heard (`heard_all`, Hz).
    pub fn heard_all(&self) -> Vec<f64> {
        self.fields
            .get("heard_all")
            .map(|list| list.split(',').filter_map(|f| f.parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Whether `tone` (Hz) is among the frequencies heard, within 3 %.
    pub fn heard(&self, tone: f64) -> bool {
        let mut all = self.heard_all();
        all.extend(self.number("heard_hz"));
        all.iter().any(|f| (f - tone).abs() < tone * 0.03)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_and_lists_through_colours() {
        let log = "noise\n\u{1b}[2m2026\u{1b}[0m INFO talker: \u{1b}[3mheard_hz\u{1b}[0m=440.5 \
                   heard_all=\"440.5,880\" video_frames=12 media summary\nlater line";
        let s = MediaSummary::last_in(log).expect("summary");
        assert_eq!(s.number("heard_hz"), Some(440.5));
        assert_eq!(s.number("video_frames"), Some(12.0));
        assert_eq!(s.heard_all(), vec![440.5, 880.0]);
        assert!(s.heard(880.0) && s.heard(445.0) && !s.heard(600.0));
        assert!(MediaSummary::last_in("nothing here").is_none());
    }
}
