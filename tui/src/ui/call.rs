//! The call pane: what the next call will be, the current call's progress
//! timeline and elapsed time, its live media statistics, and calls ringing
//! on my talkers.

use super::cells::fit;
use crate::app::clock::{format_elapsed, format_offset};
use crate::app::{App, CurrentCall};
use crate::config::Theme;
use crate::model::{CallState, Held, MediaStats, RtpStats, TalkerCallState};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

/// The stages a call passes, in order, as the timeline names them.
const STAGES: [(CallState, &str); 5] = [
    (CallState::Matching, "requesting"),
    (CallState::DialingTalker, "dialing talker"),
    (CallState::TalkerAnswered, "talker answered"),
    (CallState::CalleeRinging, "callee ringing"),
    (CallState::Connected, "connected"),
];

/// Columns an ordinary call's received keys may take beside its line.
const INCOMING_KEYS_WIDTH: usize = 24;

/// Draws the call pane.
pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let title = match &app.call {
        Some(call) => format!(" Call · {} ", call.callee),
        None => " Call ".to_owned(),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(false))
        .title(Span::styled(title, theme.title(false)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let incoming = incoming_lines(app, theme);
    let banner = u16::try_from(incoming.len())
        .unwrap_or(u16::MAX)
        .min(inner.height);
    let [banner_area, body] =
        Layout::vertical([Constraint::Length(banner), Constraint::Min(0)]).areas(inner);
    frame.render_widget(Paragraph::new(incoming), banner_area);
    let Some(call) = &app.call else {
        frame.render_widget(Paragraph::new(idle_lines(app, theme)), body);
        return;
    };
    let media = app.call_media();
    let show_media =
        media.is_some() || (call.entry(CallState::Connected).is_some() && !call.is_over());
    // The header spans the pane; the timeline and the statistics share the rest.
    let [header_area, body] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(body);
    frame.render_widget(Paragraph::new(header(app, call, theme)), header_area);
    if show_media && body.width >= 64 {
        let left_width = (body.width * 52 / 100).min(56);
        let [left, right] =
            Layout::horizontal([Constraint::Length(left_width), Constraint::Min(0)]).areas(body);
        frame.render_widget(
            Paragraph::new(timeline_lines(app, call, left.width, theme)),
            left,
        );
        let mut stats = media_lines(media, theme);
        // Short of rows, the numbers matter more than their title.
        if stats.len() > usize::from(right.height) && stats.len() > 2 {
            stats.remove(0);
        }
        frame.render_widget(Paragraph::new(stats), right);
    } else {
        let mut lines = timeline_lines(app, call, body.width, theme);
        if show_media {
            lines.extend(media_lines(media, theme));
        }
        frame.render_widget(Paragraph::new(lines), body);
    }
}

fn incoming_lines<'a>(app: &App, theme: &Theme) -> Vec<Line<'a>> {
    let answer = app
        .bindings
        .label(crate::app::Command::Answer)
        .unwrap_or_default();
    let decline = app
        .bindings
        .label(crate::app::Command::Decline)
        .unwrap_or_default();
    app.incoming_calls()
        .iter()
        .take(2)
        .map(|incoming| {
            let peer = match incoming.call.peer.as_str() {
                "" => "unknown caller".to_owned(),
                peer => caller_address(peer),
            };
            if incoming.call.state == TalkerCallState::Ringing {
                Line::from(vec![
                    Span::styled(" ☎ ", theme.warn()),
                    Span::styled(
                        format!("{peer} rings on {}  ", incoming.talker_name),
                        theme.warn(),
                    ),
                    Span::styled(answer.clone(), theme.key()),
                    Span::styled(" answer  ", theme.text()),
                    Span::styled(decline.clone(), theme.key()),
                    Span::styled(" decline", theme.text()),
                ])
            } else {
                let mut spans = vec![Span::styled(
                    format!(
                        " ☎ {peer} {} on {}",
                        incoming.call.state, incoming.talker_name
                    ),
                    theme.text(),
                )];
                if let Some(held) = incoming.call.held {
                    spans.push(Span::styled(
                        format!(" · {}", hold_text(held, "the caller")),
                        theme.warn(),
                    ));
                }
                // The latest keys are enough beside the call's line.
                if let Some(keys) = keys_text(&incoming.call.dtmf_received, INCOMING_KEYS_WIDTH) {
                    spans.push(Span::styled(format!(" · {keys}"), theme.text()));
                }
                Line::from(spans)
            }
        })
        .collect()
}

fn idle_lines<'a>(app: &App, theme: &Theme) -> Vec<Line<'a>> {
    let Some(contact) = app.selected_contact() else {
        return vec![Line::styled(" No contact selected.", theme.dim())];
    };
    let on = if app.designated.is_empty() {
        "any callable talker".to_owned()
    } else {
        app.designated
            .iter()
            .enumerate()
            .map(|(i, id)| format!("{} ({})", app.talker_name(id), ordinal(i + 1)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let key = |command| app.bindings.label(command).unwrap_or_default();
    use crate::app::Command;
    vec![
        Line::from(vec![
            Span::styled(" Next call: ", theme.dim()),
            Span::styled(contact.name.clone(), theme.title(false)),
            Span::styled(
                if app.video { " · video" } else { " · audio" },
                theme.text(),
            ),
            Span::styled(" on ", theme.dim()),
            Span::styled(on, theme.text()),
        ]),
        Line::from(vec![
            Span::raw(" "),
            Span::styled(key(Command::Call), theme.key()),
            Span::styled(" call   ", theme.dim()),
            Span::styled(key(Command::Designate), theme.key()),
            Span::styled(" designate talkers in order   ", theme.dim()),
            Span::styled(key(Command::ToggleVideo), theme.key()),
            Span::styled(" video", theme.dim()),
        ]),
    ]
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn header<'a>(app: &App, call: &CurrentCall, theme: &Theme) -> Line<'a> {
    let on = match call.talker_id() {
        Some(id) => app.talker_name(id).to_owned(),
        None => call
            .talkers
            .iter()
            .map(|id| app.talker_name(id).to_owned())
            .collect::<Vec<_>>()
            .join(", "),
    };
    let mut spans = vec![
        Span::styled(format!(" {}", call.callee), theme.title(false)),
        Span::styled(
            if call.video { " · video" } else { " · audio" },
            theme.text(),
        ),
        Span::styled(" · on ", theme.dim()),
        Span::styled(on, theme.text()),
    ];
    if let Some(server) = call.server() {
        spans.push(Span::styled(" via ", theme.dim()));
        spans.push(Span::styled(server.to_owned(), theme.good()));
    }
    if let Some(ms) = call.connected_for(app.now) {
        spans.push(Span::styled(
            format!(
                "  {} {}",
                if call.is_over() { "■" } else { "●" },
                format_elapsed(ms)
            ),
            if call.is_over() {
                theme.text()
            } else {
                theme.good()
            },
        ));
    }
    if let Some(held) = app.callee_leg().and_then(|leg| leg.held) {
        spans.push(Span::styled(
            format!("  {}", hold_text(held, &call.callee)),
            theme.warn(),
        ));
    }
    Line::from(spans)
}

/// How a hold reads: "held by Bob" when `peer` (the other end, as the pane
/// names it) held the call, "on hold" when my talker did.
fn hold_text(held: Held, peer: &str) -> String {
    match held {
        Held::ByPeer => format!("held by {peer}"),
        Held::ByUs => "on hold".to_owned(),
    }
}

/// "keys 1 2 #": the DTMF digits received, spaced, in at most `width`
/// columns; when they do not all fit, the latest that do after "…". `None`
/// when none were received or not even "keys …" fits.
fn keys_text(digits: &str, width: usize) -> Option<String> {
    const PREFIX: &str = "keys ";
    let digits: Vec<char> = digits.chars().collect();
    if digits.is_empty() {
        return None;
    }
    let room = width.checked_sub(PREFIX.len() + 1)?;
    // n digits take 2n - 1 columns; with "… " in front, 2n + 1.
    let shown = if 2 * digits.len() - 1 <= room + 1 {
        digits.len()
    } else {
        room / 2
    };
    let latest = &digits[digits.len() - shown..];
    let spaced = latest
        .iter()
        .map(char::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    Some(match (shown == digits.len(), spaced.is_empty()) {
        (true, _) => format!("{PREFIX}{spaced}"),
        (false, true) => format!("{PREFIX}…"),
        (false, false) => format!("{PREFIX}… {spaced}"),
    })
}

fn timeline_lines<'a>(app: &App, call: &CurrentCall, width: u16, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    let origin = call.origin();
    let offset = |state: CallState| -> Option<i64> {
        let entry = call.entry(state)?;
        Some(match (entry.at, origin) {
            (Some(at), Some(origin)) => at - origin,
            _ => entry.seen - call.requested,
        })
    };
    // The latest stage the first party reached.
    let reached = STAGES
        .iter()
        .rposition(|(state, _)| call.entry(*state).is_some())
        .or(Some(0).filter(|_| call.failure.is_none() || call.info.is_some()));
    let over = call.is_over();
    for (i, (state, label)) in STAGES.iter().enumerate() {
        let time = if i == 0 {
            Some(offset(*state).unwrap_or(0))
        } else {
            offset(*state)
        };
        let done = time.is_some() || reached.is_some_and(|r| r > i);
        let current = reached == Some(i) && !over;
        let (glyph, style) = if current {
            ("●", theme.warn())
        } else if done {
            ("✓", theme.good())
        } else {
            ("·", theme.dim())
        };
        let mut spans = vec![
            Span::styled(format!(" {glyph} "), style),
            Span::styled(
                fit(&time.map(format_offset).unwrap_or_default(), 8),
                theme.dim(),
            ),
            Span::styled(
                (*label).to_owned(),
                if done || current {
                    theme.text()
                } else {
                    theme.dim()
                },
            ),
        ];
        if *state == CallState::Connected
            && let Some(ms) = call.connected_for(app.now)
        {
            spans.push(Span::styled(
                format!("  {}", format_elapsed(ms)),
                theme.good(),
            ));
        }
        lines.push(Line::from(spans));
        // A refusal of the request itself shows right under "requesting".
        if i == 0
            && let Some(problem) = &call.failure
        {
            lines.push(Line::styled(format!(" ✗ refused: {problem}"), theme.bad()));
            break;
        }
    }
    for party in &call.parties {
        let state = party.number.and_then(|n| {
            call.timeline
                .iter()
                .rev()
                .find(|e| e.party == n)
                .map(|e| e.state.as_str().replace('_', " "))
        });
        lines.push(Line::styled(
            format!(
                " + {}: {}",
                party.callee,
                match (party.number, state) {
                    (None, _) => "adding…".to_owned(),
                    (Some(n), None) => format!("party {n}, requested"),
                    (Some(n), Some(state)) => format!("party {n}, {state}"),
                }
            ),
            theme.text(),
        ));
    }
    if let Some(keys) = app
        .callee_leg()
        .and_then(|leg| keys_text(&leg.dtmf_received, usize::from(width).saturating_sub(11)))
    {
        // Under the stage labels: the keys the callee pressed in the call.
        lines.push(Line::styled(format!("{:11}{keys}", ""), theme.text()));
    }
    if let Some(end) = call.timeline.iter().find(|e| e.state.is_final()) {
        let at = match (end.at, origin) {
            (Some(at), Some(origin)) => at - origin,
            _ => end.seen - call.requested,
        };
        let (text, style) = end_text(end.state, end.reason.as_deref(), end.sip_code, theme);
        lines.push(Line::from(vec![
            Span::styled(" ■ ", style),
            Span::styled(fit(&format_offset(at), 8), theme.dim()),
            Span::styled(text, style),
        ]));
    } else if call.hangup_requested {
        lines.push(Line::styled(" … hanging up", theme.warn()));
    }
    if let Some(why) = &call.stream_lost {
        let key = app
            .bindings
            .label(crate::app::Command::Refresh)
            .unwrap_or_default();
        lines.push(Line::styled(
            format!(" ! event stream lost ({why}): {key} to follow again"),
            theme.warn(),
        ));
    }
    lines
}

/// How the end of a call reads, and in which style.
pub fn end_text(
    state: CallState,
    reason: Option<&str>,
    sip_code: Option<u16>,
    theme: &Theme,
) -> (String, Style) {
    match state {
        CallState::HandedOff => (
            "handed off: connected, no longer steerable".to_owned(),
            theme.warn(),
        ),
        CallState::LostControl => (
            "matcher lost control (media may still flow)".to_owned(),
            theme.warn(),
        ),
        _ => {
            let reason = reason.unwrap_or("unknown");
            let (words, bad) = match reason {
                "hung_up" => ("you hung up", false),
                "talker_hung_up" => ("hung up on my talker", false),
                "callee_hung_up" => ("the callee hung up", false),
                "talker_rejected" => ("my talker refused the call", true),
                "talker_no_answer" => ("my talker did not answer", true),
                "no_refer_support" => ("my talker cannot transfer (no REFER)", true),
                "refer_rejected" => ("my talker refused to dial", true),
                "callee_busy" => ("the callee is busy", true),
                "callee_rejected" => ("the callee declined", true),
                "callee_no_answer" => ("no answer", true),
                "controller_shutdown" => ("the matcher shut down", true),
                other => (other, true),
            };
            let mut text = format!("ended: {words}");
            if let Some(code) = sip_code {
                text.push_str(&format!(" (SIP {code})"));
            }
            (text, if bad { theme.bad() } else { theme.text() })
        }
    }
}

fn rtp_lines<'a>(kind: &str, stats: &RtpStats, theme: &Theme) -> [Line<'a>; 2] {
    let expected = stats.packets_received + stats.packets_lost;
    let loss = if expected == 0 {
        0.0
    } else {
        stats.packets_lost as f64 * 100.0 / expected as f64
    };
    let loss_style = if loss >= 5.0 {
        theme.bad()
    } else if loss >= 1.0 {
        theme.warn()
    } else {
        theme.text()
    };
    [
        Line::from(vec![
            Span::styled(format!(" {kind:<5} "), theme.title(false)),
            // The codec's own name (opus, PCMU, VP8), not its word in the JSON.
            Span::styled(fit(&stats.codec.to_string(), 6), theme.text()),
            Span::styled(
                format!(" ↑{} ↓{} pkts", stats.packets_sent, stats.packets_received),
                theme.text(),
            ),
        ]),
        Line::from(vec![
            Span::raw("       "),
            Span::styled(
                format!("lost {} ({loss:.1}%)", stats.packets_lost),
                loss_style,
            ),
            Span::styled(format!("  jitter {:.1} ms", stats.jitter_ms), theme.text()),
        ]),
    ]
}

fn media_lines<'a>(media: Option<(&str, &MediaStats)>, theme: &Theme) -> Vec<Line<'a>> {
    let Some((talker, media)) = media else {
        return vec![
            Line::styled(" Media", theme.title(false)),
            Line::styled(" statistics appear once media flows", theme.dim()),
        ];
    };
    let mut lines = vec![Line::styled(
        format!(" Media on {talker}"),
        theme.title(false),
    )];
    if let Some(audio) = &media.audio {
        lines.extend(rtp_lines("audio", audio, theme));
    }
    if let Some(sound) = &media.sound {
        let mut text = format!(" level {:.1} dBFS", sound.level_dbfs);
        if let Some(hz) = sound.dominant_frequency_hz {
            text.push_str(&format!(" · tone {hz:.0} Hz"));
        }
        lines.push(Line::styled(text, theme.text()));
    }
    if let Some(video) = &media.video {
        lines.extend(rtp_lines("video", video, theme));
    }
    if let Some(picture) = &media.picture {
        lines.push(Line::styled(
            format!(
                " frames {} · {}x{}",
                picture.frames, picture.width, picture.height
            ),
            theme.text(),
        ));
    }
    if lines.len() == 1 {
        lines.push(Line::styled(" no media yet", theme.dim()));
    }
    lines
}

/// The caller's address out of a From header as the talker reports it
/// (`"Bob" <sip:bob@family.example>;tag=x` → `sip:bob@family.example`): the
/// tag and parameters mean nothing to the person answering.
fn caller_address(peer: &str) -> String {
    let inside = match (peer.find('<'), peer.rfind('>')) {
        (Some(open), Some(close)) if open < close => &peer[open + 1..close],
        _ => peer.split(';').next().unwrap_or(peer),
    };
    inside.trim().to_owned()
}

#[cfg(test)]
mod keys_and_hold_tests {
    use super::{Held, hold_text, keys_text};

    #[test]
    fn every_key_when_they_fit_else_the_latest() {
        assert_eq!(keys_text("", 80), None);
        assert_eq!(keys_text("12#", 80).as_deref(), Some("keys 1 2 #"));
        assert_eq!(keys_text("12#", 10).as_deref(), Some("keys 1 2 #"));
        assert_eq!(keys_text("12#", 9).as_deref(), Some("keys … #"));
        assert_eq!(keys_text("123456", 10).as_deref(), Some("keys … 5 6"));
        assert_eq!(keys_text("12#", 6).as_deref(), Some("keys …"));
        assert_eq!(keys_text("12#", 5), None);
        for width in 0..40 {
            if let Some(text) = keys_text("0123456789*#ABCD", width) {
                assert!(text.chars().count() <= width, "{text:?} in {width}");
            }
        }
    }

    #[test]
    fn a_hold_names_the_end_that_held() {
        assert_eq!(hold_text(Held::ByPeer, "Bob"), "held by Bob");
        assert_eq!(hold_text(Held::ByUs, "Bob"), "on hold");
    }
}

#[cfg(test)]
mod caller_address_tests {
    use super::caller_address;

    #[test]
    fn keeps_only_the_address() {
        assert_eq!(
            caller_address("<sip:bob@family.example>;tag=HymA6PIZ"),
            "sip:bob@family.example"
        );
        assert_eq!(
            caller_address("\"Bob\" <sip:bob@b.example>"),
            "sip:bob@b.example"
        );
        assert_eq!(
            caller_address("sip:bob@b.example;tag=1"),
            "sip:bob@b.example"
        );
        assert_eq!(caller_address("><"), "><");
    }
}
