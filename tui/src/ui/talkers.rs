//! "My talkers": registry + LAN + verification + manual entries (see
//! [`crate::roster`]), with the shared-server mark of each for the selected
//! contact, and a footer explaining the selected talker.

use super::cells::fit;
use super::scroll_offset;
use crate::app::{App, Connection, LanState, Pane};
use crate::config::Theme;
use crate::roster::{Activity, Presence, RosterRow, RouteMark};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

/// Inner width from which the list shows every column.
const WIDE: usize = 90;

/// Draws the talkers pane.
pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let focused = app.focus == Pane::Talkers;
    let contact = app.selected_contact();
    let mut title = vec![Span::styled(" My talkers ", theme.title(focused))];
    if let Some(contact) = contact {
        title.push(Span::styled(
            format!(
                "· {} for {} ",
                if app.video { "video" } else { "audio" },
                contact.name
            ),
            theme.title(false),
        ));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title(Line::from(title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let width = usize::from(inner.width);
    let footer = if inner.height >= 8 && !app.rows.is_empty() {
        3
    } else {
        0
    };
    let header = usize::from(width >= WIDE && !app.rows.is_empty() && inner.height >= 8);
    let list_height = usize::from(inner.height) - footer - header;
    let mut lines: Vec<Line<'_>> = Vec::with_capacity(usize::from(inner.height));
    if header > 0 {
        lines.push(header_line(contact.map(|c| c.name.as_str()), theme));
    }
    if app.rows.is_empty() {
        lines.extend(empty_lines(app, theme));
    } else {
        let offset = scroll_offset(app.talker_cursor, list_height);
        for (i, row) in app.rows.iter().enumerate().skip(offset).take(list_height) {
            let mut line = row_line(row, width, theme);
            if i == app.talker_cursor {
                line = line.style(if focused {
                    theme.selected()
                } else {
                    theme.title(false)
                });
            }
            lines.push(line);
        }
    }
    if footer > 0
        && let Some(row) = app.selected_talker()
    {
        lines.resize(header + list_height, Line::raw(""));
        lines.push(Line::styled("─".repeat(width), theme.border(false)));
        lines.push(describe_row(row, theme));
        lines.push(describe_mark(row, contact.map(|c| c.name.as_str()), theme));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn empty_lines<'a>(app: &App, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    match (&app.registry, &app.connection) {
        (_, Connection::NotConfigured) => {
            lines.push(Line::styled(" no matcher configured", theme.dim()));
        }
        (None, Connection::Unreachable(_) | Connection::Unauthorized(_)) => {
            lines.push(Line::styled(" registry unavailable", theme.bad()));
        }
        (None, _) => {
            lines.push(Line::styled(" Looking for my talkers…", theme.warn()));
            lines.push(Line::styled(
                match app.lan {
                    LanState::Browsing => "   asking the matcher's registry and browsing the LAN",
                    LanState::Off => "   asking the matcher's registry (LAN discovery off)",
                    LanState::Failed(_) => {
                        "   asking the matcher's registry (LAN discovery failed)"
                    }
                },
                theme.dim(),
            ));
        }
        (Some(_), _) => {
            lines.push(Line::styled(" No talkers yet.", theme.text()));
            lines.push(Line::styled(
                "   enroll one: talker-agent enroll --config FILE --token TOKEN",
                theme.dim(),
            ));
        }
    }
    lines
}

/// The glyph in front of a talker: what the dialer knows of it at a glance.
pub fn presence_glyph(presence: &Presence) -> &'static str {
    match presence {
        Presence::Verified { .. } => "✓",
        Presence::Verifying | Presence::AwaitingRegistry => "…",
        Presence::Unverified(_) => "✗",
        Presence::NotOnLan => "~",
        Presence::SipPhone => "☎",
        Presence::Offline => "○",
        Presence::NotMine => "-",
    }
}

fn presence_style(presence: &Presence, theme: &Theme) -> Style {
    match presence {
        Presence::Verified { .. } | Presence::SipPhone => theme.good(),
        Presence::NotOnLan => theme.warn(),
        Presence::Offline => theme.bad(),
        Presence::Verifying
        | Presence::AwaitingRegistry
        | Presence::Unverified(_)
        | Presence::NotMine => theme.dim(),
    }
}

fn activity_style(activity: Activity, theme: &Theme) -> Style {
    match activity {
        Activity::Idle => theme.text(),
        Activity::Ringing => theme.warn(),
        Activity::InCall | Activity::Held | Activity::Busy => theme.warn(),
        Activity::Offline => theme.bad(),
        Activity::Unknown => theme.dim(),
    }
}

/// Column widths of the wide layout.
const WIDE_NAME: usize = 22;
const WIDE_KIND: usize = 9;
const WIDE_PRESENCE: usize = 18;
const WIDE_ACTIVITY: usize = 9;
const WIDE_ADDRESS: usize = 22;

fn header_line<'a>(contact: Option<&str>, theme: &Theme) -> Line<'a> {
    let mut text = String::from("     ");
    text.push_str(&fit("talker", WIDE_NAME + 1));
    text.push_str(&fit("kind", WIDE_KIND));
    text.push_str(&fit("presence", WIDE_PRESENCE));
    text.push_str(&fit("state", WIDE_ACTIVITY));
    text.push_str(&fit("local API", WIDE_ADDRESS));
    text.push_str(&contact.map_or_else(String::new, |c| format!("route to {c}")));
    Line::styled(text, theme.dim())
}

fn row_line<'a>(row: &RosterRow, width: usize, theme: &Theme) -> Line<'a> {
    let dimmed = !row.callable();
    let text = if dimmed { theme.dim() } else { theme.text() };
    let designation = row.designation.map_or_else(
        || " ".to_owned(),
        |n| {
            if n < 10 {
                n.to_string()
            } else {
                "+".to_owned()
            }
        },
    );
    let mut spans = vec![
        Span::raw(" "),
        Span::styled(
            presence_glyph(&row.presence),
            presence_style(&row.presence, theme),
        ),
        Span::raw(" "),
        Span::styled(designation, theme.key()),
        Span::raw(" "),
    ];
    if width >= WIDE {
        let kind = format!("{}{}", row.kind, if row.video { " ▪" } else { "" });
        let address = row.address.map(|a| a.to_string()).unwrap_or_default();
        spans.extend([
            Span::styled(fit(&row.name, WIDE_NAME), text),
            Span::raw(" "),
            Span::styled(fit(&kind, WIDE_KIND), text),
            Span::styled(
                fit(row.presence.label(), WIDE_PRESENCE),
                presence_style(&row.presence, theme),
            ),
            Span::styled(
                fit(row.activity.label(), WIDE_ACTIVITY),
                activity_style(row.activity, theme),
            ),
            Span::styled(fit(&address, WIDE_ADDRESS), theme.dim()),
        ]);
        let used = 5 + WIDE_NAME + 1 + WIDE_KIND + WIDE_PRESENCE + WIDE_ACTIVITY + WIDE_ADDRESS;
        spans.extend(mark_spans(&row.mark, width.saturating_sub(used), theme));
    } else {
        // Narrow: the mark matters more than the kind (the footer names it).
        let name_width = (width.saturating_sub(5 + 8 + 1) * 45 / 100).clamp(6, 20);
        spans.extend([
            Span::styled(fit(&row.name, name_width), text),
            Span::raw(" "),
            Span::styled(
                fit(row.activity.label(), 8),
                activity_style(row.activity, theme),
            ),
        ]);
        let used = 5 + name_width + 1 + 8;
        spans.extend(mark_spans(&row.mark, width.saturating_sub(used), theme));
    }
    Line::from(spans)
}

/// The mark in `width` columns: the long form when it fits whole, else the short one.
fn mark_spans<'a>(mark: &RouteMark, width: usize, theme: &Theme) -> Vec<Span<'a>> {
    let (short, long, style) = match mark {
        RouteMark::None => return Vec::new(),
        RouteMark::Loading => ("… routes".to_owned(), None, theme.dim()),
        RouteMark::Shared {
            rank,
            server,
            media_ok,
            online,
            reason,
        } => {
            let mut short = format!("◆ {server} #{rank}");
            if !media_ok {
                short.push_str(" audio only");
            }
            if !online {
                short.push_str(" offline");
            }
            let long = format!("{short} · {reason}");
            let style = if *media_ok && *online {
                theme.good()
            } else {
                theme.warn()
            };
            (short, Some(long), style)
        }
        RouteMark::NotDesignated => ("· not designated".to_owned(), None, theme.dim()),
        RouteMark::Unreachable(reason) => {
            let short = if reason.starts_with("no shared server") {
                "✗ no shared server".to_owned()
            } else {
                format!("✗ {reason}")
            };
            (short, Some(format!("✗ {reason}")), theme.bad())
        }
        RouteMark::Unknown(_) => ("? routes unavailable".to_owned(), None, theme.dim()),
    };
    let text = match long {
        Some(long) if unicode_width::UnicodeWidthStr::width(long.as_str()) <= width => long,
        _ => short,
    };
    vec![Span::styled(fit(&text, width), style)]
}

fn describe_row<'a>(row: &RosterRow, theme: &Theme) -> Line<'a> {
    let mut text = format!(" {}: {}", row.name, row.presence.label());
    if let Some(address) = row.address {
        text.push_str(&format!(" at {address}"));
    }
    if let Presence::Unverified(why) = &row.presence {
        text.push_str(&format!(" ({why})"));
    }
    if !row.servers.is_empty() {
        text.push_str(&format!(" · on {}", row.servers.join(", ")));
    }
    let style = if row.callable() {
        theme.text()
    } else {
        theme.dim()
    };
    Line::styled(text, style)
}

fn describe_mark<'a>(row: &RosterRow, contact: Option<&str>, theme: &Theme) -> Line<'a> {
    let Some(contact) = contact else {
        return Line::styled(
            " select a contact to see which talkers can reach them",
            theme.dim(),
        );
    };
    let (text, style) = match &row.mark {
        RouteMark::None => match row.presence {
            Presence::NotMine => (
                " not in my registry: never used for calls".to_owned(),
                theme.dim(),
            ),
            _ => (String::new(), theme.dim()),
        },
        RouteMark::Loading => (
            format!(" asking the matcher for routes to {contact}…"),
            theme.dim(),
        ),
        RouteMark::Shared {
            rank,
            server,
            reason,
            media_ok,
            ..
        } => (
            format!(
                " ◆ reaches {contact} through {server} (route #{rank}: {reason}){}",
                if *media_ok { "" } else { " — audio only" }
            ),
            theme.good(),
        ),
        RouteMark::NotDesignated => (
            " not designated: only designated talkers are tried".to_owned(),
            theme.dim(),
        ),
        RouteMark::Unreachable(reason) => (format!(" ✗ {reason}"), theme.bad()),
        RouteMark::Unknown(problem) => (format!(" routes unavailable: {problem}"), theme.dim()),
    };
    Line::styled(text, style)
}
