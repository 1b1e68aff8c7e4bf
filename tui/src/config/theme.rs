//! Colours (the config file's `[theme]` section). Every style also carries a
//! modifier (bold, dim, reversed) so the screen reads the same without
//! colour: with `NO_COLOR` set, or `no_color = true` here, only the
//! modifiers remain.

use ratatui::style::{Color, Modifier, Style};
use serde::{Deserialize, Serialize};

/// The dialer's colours. Colour names are ratatui's (`red`, `lightblue`,
/// `#rrggbb`, or an index `42`); `reset` means the terminal's own colour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Theme {
    /// Draw without any colour (as if `NO_COLOR` were set).
    pub no_color: bool,
    /// Ordinary text.
    pub text: Color,
    /// Text that is there but cannot be used (unverified, not mine, hints).
    pub dim: Color,
    /// Titles and the focused pane's border.
    pub accent: Color,
    /// Borders of panes without focus.
    pub border: Color,
    /// Background of the selected row.
    pub selection_bg: Color,
    /// Text of the selected row.
    pub selection_fg: Color,
    /// Verified, connected, shares a server.
    pub good: Color,
    /// Ringing, waiting, not on the LAN.
    pub warn: Color,
    /// Errors, offline, ended with a failure.
    pub bad: Color,
    /// Key names in hints and help.
    pub key: Color,
    /// The status bar's background.
    pub status_bg: Color,
    /// The status bar's text.
    pub status_fg: Color,
}

impl Default for Theme {
    fn default() -> Self {
        Self {
            no_color: false,
            text: Color::Reset,
            dim: Color::DarkGray,
            accent: Color::Cyan,
            border: Color::Gray,
            selection_bg: Color::Blue,
            selection_fg: Color::White,
            good: Color::Green,
            warn: Color::Yellow,
            bad: Color::Red,
            key: Color::LightCyan,
            status_bg: Color::Reset,
            status_fg: Color::Reset,
        }
    }
}

impl Theme {
    /// The same theme with every colour removed (NO_COLOR).
    pub fn without_color(&self) -> Self {
        Self {
            no_color: true,
            ..self.clone()
        }
    }

    fn paint(&self, color: Color, style: Style) -> Style {
        if self.no_color {
            style
        } else {
            style.fg(color)
        }
    }

    /// Ordinary text.
    pub fn text(&self) -> Style {
        self.paint(self.text, Style::new())
    }

    /// Present but unusable (dimmed).
    pub fn dim(&self) -> Style {
        self.paint(self.dim, Style::new().add_modifier(Modifier::DIM))
    }

    /// A pane title.
    pub fn title(&self, focused: bool) -> Style {
        let style = Style::new().add_modifier(Modifier::BOLD);
        if focused {
            self.paint(self.accent, style)
        } else {
            self.paint(self.text, style)
        }
    }

    /// A pane border.
    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.paint(self.accent, Style::new().add_modifier(Modifier::BOLD))
        } else {
            self.paint(self.border, Style::new())
        }
    }

    /// The selected row (reversed without colour).
    pub fn selected(&self) -> Style {
        if self.no_color {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new()
                .bg(self.selection_bg)
                .fg(self.selection_fg)
                .add_modifier(Modifier::BOLD)
        }
    }

    /// Good news (verified, connected, a shared server).
    pub fn good(&self) -> Style {
        self.paint(self.good, Style::new().add_modifier(Modifier::BOLD))
    }

    /// Something under way or degraded.
    pub fn warn(&self) -> Style {
        self.paint(self.warn, Style::new())
    }

    /// Bad news (errors, offline, failed).
    pub fn bad(&self) -> Style {
        self.paint(self.bad, Style::new().add_modifier(Modifier::BOLD))
    }

    /// A key name in a hint.
    pub fn key(&self) -> Style {
        self.paint(self.key, Style::new().add_modifier(Modifier::BOLD))
    }

    /// The status bar line.
    pub fn status_bar(&self) -> Style {
        if self.no_color {
            Style::new()
        } else {
            Style::new().bg(self.status_bg).fg(self.status_fg)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn config_section_overrides_some_colours() {
        let theme: Theme = toml::from_str("accent = \"magenta\"\nbad = \"#ff0000\"\n").unwrap();
        assert_eq!(theme.accent, Color::Magenta);
        assert_eq!(theme.bad, Color::Rgb(255, 0, 0));
        assert_eq!(theme.good, Theme::default().good);
        let back: Theme = toml::from_str(&toml::to_string(&theme).unwrap()).unwrap();
        assert_eq!(back, theme);
        assert!(toml::from_str::<Theme>("acent = \"red\"").is_err());
    }

    #[test]
    fn without_color_keeps_only_modifiers() {
        let theme = Theme::default().without_color();
        for style in [
            theme.text(),
            theme.dim(),
            theme.title(true),
            theme.border(true),
            theme.selected(),
            theme.good(),
            theme.warn(),
            theme.bad(),
            theme.key(),
            theme.status_bar(),
        ] {
            assert_eq!(style.fg, None);
            assert_eq!(style.bg, None);
        }
        assert!(theme.selected().add_modifier.contains(Modifier::REVERSED));
    }
}
