//! The terminal while the dialer runs: raw mode and the alternate screen on
//! the way in; the terminal as it was on the way out — on return, on drop,
//! and on panic (the hook restores before the panic message prints, so the
//! message is readable).

use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::{self, Stdout};
use std::sync::Once;

/// The ratatui terminal on stdout.
pub type DialerTerminal = Terminal<CrosstermBackend<Stdout>>;

/// Owns the terminal's raw mode and alternate screen; restores both when dropped.
pub struct TerminalGuard {
    terminal: DialerTerminal,
    restored: bool,
}

impl TerminalGuard {
    /// Enters raw mode and the alternate screen, hides the cursor, and
    /// installs the panic hook (once per process).
    pub fn enter() -> io::Result<Self> {
        install_panic_hook();
        enable_raw_mode()?;
        let mut stdout = io::stdout();
        if let Err(err) = execute!(stdout, EnterAlternateScreen, EnableBracketedPaste) {
            let _ = disable_raw_mode();
            return Err(err);
        }
        let mut terminal = match Terminal::new(CrosstermBackend::new(stdout)) {
            Ok(terminal) => terminal,
            Err(err) => {
                restore();
                return Err(err);
            }
        };
        terminal.hide_cursor()?;
        terminal.clear()?;
        Ok(Self {
            terminal,
            restored: false,
        })
    }

    /// The terminal to draw on.
    pub fn terminal(&mut self) -> &mut DialerTerminal {
        &mut self.terminal
    }

    /// Leaves the alternate screen and raw mode now.
    pub fn restore(&mut self) {
        if !self.restored {
            self.restored = true;
            let _ = self.terminal.show_cursor();
            restore();
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Puts the terminal back as a shell expects it. Safe to call more than
/// once and when the terminal was never switched.
pub fn restore() {
    let _ = execute!(
        io::stdout(),
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = disable_raw_mode();
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
