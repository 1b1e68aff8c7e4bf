//! The help overlay: every command with the keys bound to it now, and what
//! the talker marks mean.

use super::cells::fit;
use super::centered;
use crate::app::{App, Command};
use crate::config::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

/// Draws the help overlay over `area`.
pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let key_width = Command::ALL
        .iter()
        .map(|c| app.bindings.labels(*c).chars().count())
        .max()
        .unwrap_or(0)
        .clamp(6, 20);
    let mut lines: Vec<Line<'_>> = Command::ALL
        .iter()
        .map(|command| {
            let keys = app.bindings.labels(*command);
            Line::from(vec![
                Span::raw(" "),
                Span::styled(
                    fit(if keys.is_empty() { "(unbound)" } else { &keys }, key_width),
                    theme.key(),
                ),
                Span::raw("  "),
                Span::styled(command.describe(), theme.text()),
            ])
        })
        .collect();
    let legend = [
        ("✓", "verified: signed with its registry key"),
        ("…", "being verified (not callable yet)"),
        ("✗", "unverified: not proven mine (dimmed)"),
        ("~", "not seen on the LAN, online via matcher"),
        ("○", "offline"),
        ("-", "not mine"),
        ("◆", "shares a server with the selected contact"),
    ];
    // The legend only when there is room for it.
    let height = usize::from(area.height).saturating_sub(2);
    if lines.len() + 1 + legend.len() <= height.saturating_sub(2) {
        lines.push(Line::raw(""));
        for (glyph, meaning) in legend {
            lines.push(Line::from(vec![
                Span::raw(" "),
                Span::styled(fit(glyph, key_width), theme.title(false)),
                Span::raw("  "),
                Span::styled(meaning, theme.dim()),
            ]));
        }
    }
    let width = lines
        .iter()
        .map(Line::width)
        .max()
        .unwrap_or(0)
        .saturating_add(3);
    let rect = centered(
        area,
        u16::try_from(width).unwrap_or(u16::MAX),
        u16::try_from(lines.len() + 2).unwrap_or(u16::MAX),
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .title(Span::styled(" Help ", theme.title(true)))
        .title_bottom(Line::from(vec![
            Span::styled(
                format!(
                    " {} ",
                    app.bindings.label(Command::Dismiss).unwrap_or_default()
                ),
                theme.key(),
            ),
            Span::styled("close ", theme.dim()),
        ]));
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}
