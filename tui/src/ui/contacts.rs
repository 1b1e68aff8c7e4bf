//! The contacts list: who to call, with the servers they can be reached on,
//! and the `/` filter.

use super::cells::{cut, fit};
use super::scroll_offset;
use crate::app::{App, Connection, Pane};
use crate::config::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

/// Draws the contacts pane.
pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let focused = app.focus == Pane::Contacts;
    let visible = app.visible_contacts();
    let total = app.contacts.as_ref().map_or(0, Vec::len);
    let title = if app.contacts.is_none() {
        " Contacts ".to_owned()
    } else if app.search.query.is_empty() {
        format!(" Contacts ({total}) ")
    } else {
        format!(" Contacts ({}/{total}) ", visible.len())
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title(Span::styled(title, theme.title(focused)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let searching = app.search.active || !app.search.query.is_empty();
    let list_height = usize::from(inner.height) - usize::from(searching && inner.height > 1);
    let width = usize::from(inner.width);
    let mut lines: Vec<Line<'_>> = Vec::with_capacity(list_height + 1);
    match &app.contacts {
        None => lines.push(Line::styled(
            match app.connection {
                Connection::NotConfigured => " no matcher configured",
                Connection::Unreachable(_) => " matcher unreachable",
                _ => " loading contacts…",
            },
            theme.dim(),
        )),
        Some(_) if visible.is_empty() => lines.push(Line::styled(
            if total == 0 {
                " no contacts yet"
            } else {
                " no contact matches"
            },
            theme.dim(),
        )),
        Some(_) => {
            let name_width = (width / 2).clamp(8, 18).min(width.saturating_sub(2));
            let offset = scroll_offset(app.contact_cursor, list_height);
            for (i, contact) in visible.iter().enumerate().skip(offset).take(list_height) {
                let selected = i == app.contact_cursor;
                let servers_width = width.saturating_sub(name_width + 2);
                let servers = if !contact.accepted {
                    "(not accepted yet)".to_owned()
                } else if contact.servers.is_empty() {
                    "(no server)".to_owned()
                } else {
                    contact.servers.join(", ")
                };
                let name_style = if contact.accepted {
                    theme.text()
                } else {
                    theme.dim()
                };
                let mut line = Line::from(vec![
                    Span::raw(if selected { "▸" } else { " " }),
                    Span::styled(fit(&contact.name, name_width), name_style),
                    Span::raw(" "),
                    Span::styled(fit(&servers, servers_width), theme.dim()),
                ]);
                if selected {
                    line = line.style(if focused {
                        theme.selected()
                    } else {
                        theme.title(false)
                    });
                }
                lines.push(line);
            }
        }
    }
    lines.truncate(list_height);
    while searching && lines.len() < list_height {
        lines.push(Line::raw(""));
    }
    if searching {
        let cursor = if app.search.active { "█" } else { "" };
        lines.push(Line::from(vec![
            Span::styled(" /", theme.key()),
            Span::styled(
                cut(&app.search.query, width.saturating_sub(4)),
                theme.text(),
            ),
            Span::styled(cursor, theme.text()),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
