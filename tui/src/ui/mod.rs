//! Drawing: pure functions of the [`App`] state and the [`Theme`], one
//! module per screen area. Nothing here reads a clock or the network.
//!
//! ```text
//! ┌ Contacts ───────┐┌ My talkers · for Bob ───────────────────┐
//! │ Bob  home.ex…   ││ ✓ 1 Living room TV  tv  idle  ◆ home.ex…│
//! └─────────────────┘└─────────────────────────────────────────┘
//! ┌ Call ───────────────────────────────────────────────────────┐
//! │ timeline                         │ media statistics          │
//! └─────────────────────────────────────────────────────────────┘
//!  ● matcher online · LAN 3 · alice          Enter call  ? help
//! ```
//! Error panes and the help overlay are drawn over everything else.

pub mod call;
pub mod cells;
pub mod contacts;
pub mod error_pane;
pub mod help;
pub mod status_bar;
pub mod talkers;

use crate::app::App;
use crate::config::Theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &App, theme: &Theme) {
    let area = frame.area();
    let [main, status] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
    // The call pane grows with the terminal while a call is shown; idle, it
    // takes two lines (plus calls ringing on my talkers) and leaves the rest
    // to the lists.
    let ringing = u16::try_from(app.incoming_calls().len().min(2)).unwrap_or(2);
    let call_height = if app.call.is_none() {
        (4 + ringing).min(main.height / 2)
    } else {
        match main.height {
            0..=14 => main.height / 3,
            15..=30 => 9,
            _ => 14,
        }
    };
    let [lists, call_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(call_height)]).areas(main);
    let contacts_width = if lists.width >= 120 {
        44
    } else {
        (lists.width * 3 / 8).max(20).min(lists.width)
    };
    let [contacts_area, talkers_area] =
        Layout::horizontal([Constraint::Length(contacts_width), Constraint::Min(0)]).areas(lists);
    contacts::draw(frame, contacts_area, app, theme);
    talkers::draw(frame, talkers_area, app, theme);
    call::draw(frame, call_area, app, theme);
    status_bar::draw(frame, status, app, theme);
    if let Some(pane) = app.top_error() {
        error_pane::draw(frame, main, pane, app, theme);
    }
    if app.help {
        help::draw(frame, area, app, theme);
    }
}

/// A `width` x `height` rectangle in the middle of `area` (clipped to it).
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// The first row to show so that `cursor` is visible in `height` rows.
pub fn scroll_offset(cursor: usize, height: usize) -> usize {
    if height == 0 {
        0
    } else {
        cursor.saturating_sub(height - 1)
    }
}
