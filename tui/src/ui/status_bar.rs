//! The bottom line: the matcher connection, LAN discovery and who I am on
//! the left; key hints for what can be done now (or a passing notice) on
//! the right.

use crate::app::{App, Command, Connection, LanState, Pane};
use crate::config::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// Draws the status bar.
pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let mut left = vec![Span::raw(" ")];
    let (glyph, word, style) = match &app.connection {
        Connection::NotConfigured => ("✗", "no matcher", theme.bad()),
        Connection::Connecting => ("○", "connecting", theme.warn()),
        Connection::Online => ("●", "online", theme.good()),
        Connection::Unreachable(_) => ("✗", "matcher unreachable", theme.bad()),
        Connection::Unauthorized(_) => ("✗", "token refused", theme.bad()),
    };
    left.push(Span::styled(format!("{glyph} {word}"), style));
    let lan = match &app.lan {
        LanState::Off => Span::styled(" · LAN off", theme.dim()),
        LanState::Browsing => Span::styled(format!(" · LAN {}", app.sightings.len()), theme.text()),
        LanState::Failed(_) => Span::styled(" · LAN failed", theme.bad()),
    };
    left.push(lan);
    if let Some(me) = &app.me {
        left.push(Span::styled(format!(" · {}", me.name), theme.dim()));
    }
    let left_width: usize = left.iter().map(Span::width).sum();
    let room = usize::from(area.width).saturating_sub(left_width + 3);
    let right: Vec<Span<'_>> = match &app.notice {
        Some(notice) => {
            let text = super::cells::cut(&notice.text, room);
            vec![Span::styled(
                text,
                if notice.error {
                    theme.bad()
                } else {
                    theme.warn()
                },
            )]
        }
        None => hint_spans(app, theme, room),
    };
    let right_width: usize = right.iter().map(Span::width).sum();
    let gap = usize::from(area.width).saturating_sub(left_width + right_width + 1);
    let mut spans = left;
    spans.push(Span::raw(" ".repeat(gap)));
    spans.extend(right);
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(theme.status_bar()),
        area,
    );
}

/// The commands worth a hint right now, most useful first.
pub fn hint_commands(app: &App) -> Vec<Command> {
    if app.help {
        return vec![Command::Dismiss, Command::Quit];
    }
    if app.top_error().is_some() {
        return vec![
            Command::Dismiss,
            Command::Refresh,
            Command::Help,
            Command::Quit,
        ];
    }
    let mut hints = Vec::new();
    if app
        .incoming_calls()
        .iter()
        .any(|c| c.call.state == crate::model::TalkerCallState::Ringing)
    {
        hints.extend([Command::Answer, Command::Decline]);
    }
    if app.call_is_live() {
        hints.extend([Command::HangUp, Command::AddParty]);
        hints.extend([Command::Help, Command::Quit]);
    } else {
        if app.call.is_some() {
            hints.push(Command::Dismiss);
        }
        hints.push(Command::Call);
        if app.focus == Pane::Talkers {
            hints.push(Command::Designate);
        } else {
            hints.push(Command::Search);
        }
        // Help and quit before the rest: on a narrow bar the tail is dropped.
        hints.extend([Command::Help, Command::Quit, Command::ToggleVideo]);
    }
    hints.push(Command::SwitchPane);
    hints
}

fn hint_spans<'a>(app: &App, theme: &Theme, room: usize) -> Vec<Span<'a>> {
    if app.search.active {
        return vec![
            Span::styled("type", theme.key()),
            Span::styled(" filter  ", theme.dim()),
            Span::styled("Enter", theme.key()),
            Span::styled(" keep  ", theme.dim()),
            Span::styled("Esc", theme.key()),
            Span::styled(" clear", theme.dim()),
        ];
    }
    let mut spans = Vec::new();
    let mut used = 0;
    for command in hint_commands(app) {
        let Some(key) = app.bindings.label(command) else {
            continue;
        };
        let label = format!(" {}  ", command.hint());
        let width = key.chars().count() + label.chars().count();
        // Drop the hints that do not fit rather than cut one in half.
        if used + width > room + 2 {
            break;
        }
        used += width;
        spans.push(Span::styled(key, theme.key()));
        spans.push(Span::styled(label, theme.dim()));
    }
    // No trailing gap at the screen's edge.
    if let Some(last) = spans.last_mut() {
        let trimmed = last.content.trim_end().to_owned();
        last.content = trimmed.into();
    }
    spans
}
