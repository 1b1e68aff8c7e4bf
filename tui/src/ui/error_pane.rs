//! Readable error panes: what went wrong, what still works, and what to do.

use super::centered;
use crate::app::{App, Command, ErrorPane};
use crate::config::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

/// The title and the paragraphs of a pane.
pub fn text(pane: &ErrorPane) -> (String, Vec<String>) {
    match pane {
        ErrorPane::NotConfigured => (
            "No matcher configured".to_owned(),
            vec![
                "The dialer needs the matcher's URL and a token to list talkers and place calls."
                    .to_owned(),
                "Set matcher_url and token in ~/.config/splitdial/config.toml (or the \
                 SPLITDIAL_* environment, or flags); `splitdial config` shows what is in effect."
                    .to_owned(),
            ],
        ),
        ErrorPane::MatcherUnreachable { message } => (
            "Matcher unreachable".to_owned(),
            vec![
                message.clone(),
                "Talkers seen on the LAN are still listed; calls need the matcher. \
                 Retrying every 10 s."
                    .to_owned(),
            ],
        ),
        ErrorPane::Unauthorized { message } => (
            "Token refused".to_owned(),
            vec![
                message.clone(),
                "The token has expired or was revoked. Get a new one \
                 (matcher user token NAME) and set it in the config."
                    .to_owned(),
            ],
        ),
        ErrorPane::NoSharedServer {
            callee,
            caller_servers,
            callee_servers,
        } => (
            format!("No shared server with {callee}"),
            vec![
                format!("My talkers are on: {}", list(caller_servers)),
                format!("{callee} is on: {}", list(callee_servers)),
                format!(
                    "A call needs one server both sides have an account on: give one of my \
                     talkers an account on a server of {callee}'s."
                ),
            ],
        ),
        ErrorPane::DiscoveryFailed { message } => (
            "LAN discovery failed".to_owned(),
            vec![
                message.clone(),
                "Talkers from the registry and manual entries still work.".to_owned(),
            ],
        ),
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

/// Draws the pane over `area`.
pub fn draw(frame: &mut Frame<'_>, area: Rect, pane: &ErrorPane, app: &App, theme: &Theme) {
    let (title, paragraphs) = text(pane);
    let width = area.width.saturating_sub(4).min(72);
    let inner_width = usize::from(width.saturating_sub(4)).max(1);
    let mut lines = Vec::new();
    let mut height = 0;
    for (i, paragraph) in paragraphs.into_iter().enumerate() {
        if i > 0 {
            lines.push(Line::raw(""));
            height += 1;
        }
        // Rows the wrapped paragraph takes (a close estimate by characters).
        height += paragraph.chars().count().div_ceil(inner_width).max(1);
        let style = if i == 0 { theme.text() } else { theme.dim() };
        lines.push(Line::styled(paragraph, style));
    }
    let key = |command| app.bindings.label(command).unwrap_or_default();
    let footer = Line::from(vec![
        Span::styled(format!(" {} ", key(Command::Dismiss)), theme.key()),
        Span::styled("close  ", theme.dim()),
        Span::styled(format!("{} ", key(Command::Refresh)), theme.key()),
        Span::styled("retry ", theme.dim()),
    ]);
    let rect = centered(
        area,
        width,
        u16::try_from(height + 2)
            .unwrap_or(u16::MAX)
            .saturating_add(1),
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.bad())
        .title(Span::styled(format!(" {title} "), theme.bad()))
        .title_bottom(footer);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block.padding(ratatui::widgets::Padding::horizontal(1)))
            .wrap(Wrap { trim: true }),
        rect,
    );
}
