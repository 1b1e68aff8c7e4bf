//! The hostile message set: one `*.sip` file per case in `tests/hostile/`.
//!
//! Each file starts with `#` metadata lines, then the message with LF line ends
//! (turned into CRLF when rendered):
//!
//! ```text
//! # <RFC 4475 category and what the message does>
//! # screen: accept | reject <status> | drop     (what screen_bytes must say)
//! # server: <status>[,<status>...] | none       (what sip-server must answer)
//! # tcp: yes                                    (also sent over TCP)
//! # gap: <status>|none <why>                    (tolerated known deviation)
//! ```
//!
//! A `gap` names what the server does instead where a layer below it (rsipstack
//! parses before the server sees a message) cannot do better; the test accepts it
//! but prints it, so the deviation stays visible.
//!
//! Placeholders: `{{client}}` the sender's address (Via sent-by and Contact),
//! `{{id}}` a per-send unique token (Call-ID), `{{len}}` the body length,
//! `{{end}}` the end of the counted body (what follows is extra octets),
//! `{{x:N}}` N times `x`, `{{headers:N}}` N filler header lines, `{{0xNN}}` the
//! raw octet NN (for bytes that are not UTF-8). Every branch
//! `z9hG4bK...` gets a per-send prefix so no two sends share a transaction.

use std::path::{Path, PathBuf};

/// What `screen_bytes` must decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreenExpect {
    /// Accepted as well-formed.
    Accept,
    /// Rejected with this status.
    Reject(u16),
    /// Dropped unanswered.
    Drop,
}

/// What the server must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerExpect {
    /// A final response with one of these statuses.
    Status(Vec<u16>),
    /// No response at all.
    None,
}

/// One hostile message and what is expected of it.
#[derive(Debug, Clone)]
pub struct Case {
    /// File name without `.sip`.
    pub name: String,
    /// The first metadata line: category and intent.
    pub description: String,
    /// Expected screening verdict.
    pub screen: ScreenExpect,
    /// Expected server behaviour.
    pub server: ServerExpect,
    /// Whether the case is also sent over TCP.
    pub tcp: bool,
    /// A tolerated deviation from `server`, and why.
    pub gap: Option<(ServerExpect, String)>,
    template: String,
}

/// The folder holding the case files.
pub fn case_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile")
}

/// Loads every case, sorted by name; panics on a malformed case file.
pub fn load_all() -> Vec<Case> {
    let mut cases: Vec<Case> = std::fs::read_dir(case_dir())
        .expect("read tests/hostile")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .map(|p| parse_case(&p))
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        cases.len() >= 40,
        "only {} hostile cases found",
        cases.len()
    );
    cases
}

fn parse_case(path: &Path) -> Case {
    let name = path
        .file_stem()
        .expect("file stem")
        .to_string_lossy()
        .into_owned();
    let text = std::fs::read_to_string(path).expect("read case file");
    let (mut description, mut screen, mut server, mut tcp) = (String::new(), None, None, false);
    let mut gap = None;
    let mut rest = text.as_str();
    while let Some(line) = rest.strip_prefix('#') {
        let (line, after) = line.split_once('\n').unwrap_or((line, ""));
        rest = after;
        let line = line.trim();
        if let Some(v) = line.strip_prefix("screen:") {
            screen = Some(parse_screen(v.trim(), &name));
        } else if let Some(v) = line.strip_prefix("server:") {
            server = Some(parse_server(v.trim(), &name));
        } else if let Some(v) = line.strip_prefix("gap:") {
            let (status, why) = v.trim().split_once(' ').unwrap_or((v.trim(), ""));
            gap = Some((parse_server(status, &name), why.trim().to_owned()));
        } else if let Some(v) = line.strip_prefix("tcp:") {
            tcp = v.trim() == "yes";
        } else if description.is_empty() {
            description = line.to_owned();
        }
    }
    Case {
        screen: screen.unwrap_or_else(|| panic!("{name}: no `# screen:` line")),
        server: server.unwrap_or_else(|| panic!("{name}: no `# server:` line")),
        name,
        description,
        tcp,
        gap,
        template: rest.to_owned(),
    }
}

fn parse_screen(v: &str, name: &str) -> ScreenExpect {
    match v.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["accept"] => ScreenExpect::Accept,
        ["drop"] => ScreenExpect::Drop,
        ["reject", code] => {
            ScreenExpect::Reject(code.parse().unwrap_or_else(|_| panic!("{name}: {v}")))
        }
        _ => panic!("{name}: bad screen line {v:?}"),
    }
}

fn parse_server(v: &str, name: &str) -> ServerExpect {
    if v == "none" {
        return ServerExpect::None;
    }
    ServerExpect::Status(
        v.split(',')
            .map(|c| c.trim().parse().unwrap_or_else(|_| panic!("{name}: {v}")))
            .collect(),
    )
}

impl Case {
    /// The message bytes for one send from `client` (ip:port) with unique `id`.
    pub fn render(&self, client: &str, id: &str) -> Vec<u8> {
        let text = expand(&self.template, client, id);
        let Some((head, body)) = text.split_once("\n\n") else {
            // No header terminator on purpose: send the lines as they are.
            return text.replace('\n', "\r\n").into_bytes();
        };
        let body = body.replace('\n', "\r\n");
        let (counted, extra) = body.split_once("{{end}}").unwrap_or((&body, ""));
        let head = head
            .replace("{{len}}", &counted.len().to_string())
            .replace("z9hG4bK", &format!("z9hG4bK{id}."))
            .replace('\n', "\r\n");
        raw_bytes(format!("{head}\r\n\r\n{counted}{extra}").as_bytes())
    }
}

/// Replaces every `{{0xNN}}` with the byte NN (for octets that are not UTF-8).
fn raw_bytes(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(b"{{0x") && text.len() >= i + 8 && &text[i + 6..i + 8] == b"}}" {
            let hex = std::str::from_utf8(&text[i + 4..i + 6]).expect("hex digits");
            out.push(u8::from_str_radix(hex, 16).expect("{{0xNN}}"));
            i += 8;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

/// Expands the size and address placeholders.
fn expand(template: &str, client: &str, id: &str) -> String {
    let mut out = template.replace("{{client}}", client).replace("{{id}}", id);
    while let Some(start) = out.find("{{x:") {
        let end = start + out[start..].find("}}").expect("closing }}");
        let n: usize = out[start + 4..end].parse().expect("{{x:N}}");
        out.replace_range(start..end + 2, &"x".repeat(n));
    }
    while let Some(start) = out.find("{{headers:") {
        let end = start + out[start..].find("}}").expect("closing }}");
        let n: usize = out[start + 10..end].parse().expect("{{headers:N}}");
        let lines: Vec<String> = (0..n).map(|i| format!("X-Filler-{i}: {i}")).collect();
        out.replace_range(start..end + 2, &lines.join("\n"));
    }
    out
}
