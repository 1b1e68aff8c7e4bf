//! Key bindings (the config file's `[keys]` section): key names such as
//! `ctrl-c`, `space`, `enter`, `/` or `?` bound to [`Command`]s.

use crate::app::Command;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why a key name or a set of bindings was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// The name is not a key this dialer knows.
    #[error("unknown key name {0:?} (try e.g. \"ctrl-c\", \"space\", \"enter\", \"f1\", \"/\")")]
    UnknownKey(String),
    /// An empty name, or a modifier with no key after it.
    #[error("empty key name")]
    Empty,
    /// One key bound to two commands.
    #[error("key {key} is bound to both {first} and {second}")]
    Conflict {
        /// The key.
        key: String,
        /// The first command it is bound to.
        first: String,
        /// The second command it is bound to.
        second: String,
    },
}

/// One key with its modifiers, as a config file names it (`ctrl-c`, `?`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyBinding {
    /// The key.
    pub code: KeyCode,
    /// Ctrl, Alt (and Shift for non-character keys).
    pub modifiers: KeyModifiers,
}

impl KeyBinding {
    /// A key without modifiers.
    pub const fn plain(code: KeyCode) -> Self {
        Self {
            code,
            modifiers: KeyModifiers::NONE,
        }
    }

    /// A character key without modifiers.
    pub const fn char(c: char) -> Self {
        Self::plain(KeyCode::Char(c))
    }

    /// A character key with Ctrl.
    pub const fn ctrl(c: char) -> Self {
        Self {
            code: KeyCode::Char(c),
            modifiers: KeyModifiers::CONTROL,
        }
    }

    /// Whether a key press from the terminal is this key. Shift is part of a
    /// character (`?` arrives as Shift+`?` on some terminals), so it only
    /// counts for keys that are not characters.
    pub fn matches(&self, event: &KeyEvent) -> bool {
        if event.kind == KeyEventKind::Release {
            return false;
        }
        let (code, modifiers) = normalise(event.code, event.modifiers);
        let (own_code, own_modifiers) = normalise(self.code, self.modifiers);
        code == own_code && modifiers == own_modifiers
    }
}

/// Folds the spellings of one key together: Shift on characters and on
/// BackTab says nothing more than the key itself.
fn normalise(code: KeyCode, modifiers: KeyModifiers) -> (KeyCode, KeyModifiers) {
    let meaningful = KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT;
    let mut modifiers = modifiers & meaningful;
    match code {
        KeyCode::Char(c) => {
            modifiers.remove(KeyModifiers::SHIFT);
            // Ctrl+letter arrives lower-case on most terminals and upper-case on a few.
            let c = if modifiers.contains(KeyModifiers::CONTROL) {
                c.to_ascii_lowercase()
            } else {
                c
            };
            (KeyCode::Char(c), modifiers)
        }
        KeyCode::BackTab => {
            modifiers.remove(KeyModifiers::SHIFT);
            (code, modifiers)
        }
        _ => (code, modifiers),
    }
}

impl FromStr for KeyBinding {
    type Err = BindingError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = name.trim();
        if rest.is_empty() {
            return Err(BindingError::Empty);
        }
        // A lone "-" is the minus key; "ctrl--" is Ctrl+minus.
        loop {
            let lower = rest.to_ascii_lowercase();
            let (modifier, len) = if lower.starts_with("ctrl-") && rest.len() > 5 {
                (KeyModifiers::CONTROL, 5)
            } else if lower.starts_with("alt-") && rest.len() > 4 {
                (KeyModifiers::ALT, 4)
            } else if lower.starts_with("shift-") && rest.len() > 6 {
                (KeyModifiers::SHIFT, 6)
            } else {
                break;
            };
            modifiers |= modifier;
            rest = &rest[len..];
        }
        let code = key_code(rest).ok_or_else(|| BindingError::UnknownKey(name.to_owned()))?;
        Ok(Self { code, modifiers })
    }
}

fn key_code(name: &str) -> Option<KeyCode> {
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return Some(KeyCode::Char(c));
    }
    let lower = name.to_ascii_lowercase();
    let code = match lower.as_str() {
        "space" => KeyCode::Char(' '),
        "enter" | "return" => KeyCode::Enter,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "esc" | "escape" => KeyCode::Esc,
        "backspace" => KeyCode::Backspace,
        "delete" | "del" => KeyCode::Delete,
        "insert" | "ins" => KeyCode::Insert,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "pageup" | "pgup" => KeyCode::PageUp,
        "pagedown" | "pgdn" => KeyCode::PageDown,
        other => {
            let n: u8 = other.strip_prefix('f')?.parse().ok()?;
            if (1..=24).contains(&n) {
                KeyCode::F(n)
            } else {
                return None;
            }
        }
    };
    Some(code)
}

impl fmt::Display for KeyBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.modifiers.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("backtab"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::Insert => f.write_str("insert"),
            KeyCode::Up => f.write_str("up"),
            KeyCode::Down => f.write_str("down"),
            KeyCode::Left => f.write_str("left"),
            KeyCode::Right => f.write_str("right"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::PageUp => f.write_str("pageup"),
            KeyCode::PageDown => f.write_str("pagedown"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

impl KeyBinding {
    /// The key as the help overlay and the status bar show it (`↑`, `Enter`, `Ctrl-C`).
    pub fn label(&self) -> String {
        let mut label = String::new();
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            label.push_str("Ctrl-");
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            label.push_str("Alt-");
        }
        if self.modifiers.contains(KeyModifiers::SHIFT) {
            label.push_str("Shift-");
        }
        let key = match self.code {
            KeyCode::Char(' ') => "Space".to_owned(),
            KeyCode::Char(c) if self.modifiers.contains(KeyModifiers::CONTROL) => {
                c.to_ascii_uppercase().to_string()
            }
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "Enter".to_owned(),
            KeyCode::Tab => "Tab".to_owned(),
            KeyCode::BackTab => "Shift-Tab".to_owned(),
            KeyCode::Esc => "Esc".to_owned(),
            KeyCode::Up => "↑".to_owned(),
            KeyCode::Down => "↓".to_owned(),
            KeyCode::Left => "←".to_owned(),
            KeyCode::Right => "→".to_owned(),
            KeyCode::PageUp => "PgUp".to_owned(),
            KeyCode::PageDown => "PgDn".to_owned(),
            KeyCode::F(n) => format!("F{n}"),
            _ => {
                let name = self.to_string();
                let mut chars = name.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_uppercase().chain(chars).collect()
                })
            }
        };
        label.push_str(&key);
        label
    }
}

impl Serialize for KeyBinding {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyBinding {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(de::Error::custom)
    }
}

/// The keys bound to one command: a config file may name one (`"q"`) or
/// several (`["q", "ctrl-c"]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Keys(pub Vec<KeyBinding>);

impl Keys {
    fn of(keys: &[KeyBinding]) -> Self {
        Self(keys.to_vec())
    }
}

impl Serialize for Keys {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeysVisitor;
        impl<'de> Visitor<'de> for KeysVisitor {
            type Value = Keys;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key name or a list of key names")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Keys, E> {
                name.parse().map(|key| Keys(vec![key])).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = seq.next_element::<KeyBinding>()? {
                    keys.push(key);
                }
                Ok(Keys(keys))
            }
        }
        deserializer.deserialize_any(KeysVisitor)
    }
}

/// Every command's keys (the config file's `[keys]` section). Missing
/// entries keep their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bindings {
    /// [`Command::SwitchPane`].
    pub switch_pane: Keys,
    /// [`Command::Up`].
    pub up: Keys,
    /// [`Command::Down`].
    pub down: Keys,
    /// [`Command::Search`].
    pub search: Keys,
    /// [`Command::Designate`].
    pub designate: Keys,
    /// [`Command::Call`].
    pub call: Keys,
    /// [`Command::ToggleVideo`].
    pub toggle_video: Keys,
    /// [`Command::HangUp`].
    pub hang_up: Keys,
    /// [`Command::AddParty`].
    pub add_party: Keys,
    /// [`Command::Answer`].
    pub answer: Keys,
    /// [`Command::Decline`].
    pub decline: Keys,
    /// [`Command::Refresh`].
    pub refresh: Keys,
    /// [`Command::Help`].
    pub help: Keys,
    /// [`Command::Dismiss`].
    pub dismiss: Keys,
    /// [`Command::Quit`].
    pub quit: Keys,
}

impl Default for Bindings {
    fn default() -> Self {
        use KeyBinding as K;
        Self {
            switch_pane: Keys::of(&[K::plain(KeyCode::Tab), K::plain(KeyCode::BackTab)]),
            up: Keys::of(&[K::plain(KeyCode::Up), K::char('k')]),
            down: Keys::of(&[K::plain(KeyCode::Down), K::char('j')]),
            search: Keys::of(&[K::char('/')]),
            designate: Keys::of(&[K::char(' ')]),
            call: Keys::of(&[K::plain(KeyCode::Enter)]),
            toggle_video: Keys::of(&[K::char('v')]),
            hang_up: Keys::of(&[K::char('h')]),
            add_party: Keys::of(&[K::char('p')]),
            answer: Keys::of(&[K::char('a')]),
            decline: Keys::of(&[K::char('d')]),
            refresh: Keys::of(&[K::char('r')]),
            help: Keys::of(&[K::char('?'), K::plain(KeyCode::F(1))]),
            dismiss: Keys::of(&[K::plain(KeyCode::Esc)]),
            quit: Keys::of(&[K::char('q'), K::ctrl('c')]),
        }
    }
}

impl Bindings {
    /// The keys bound to one command.
    pub fn keys(&self, command: Command) -> &[KeyBinding] {
        let keys = match command {
            Command::SwitchPane => &self.switch_pane,
            Command::Up => &self.up,
            Command::Down => &self.down,
            Command::Search => &self.search,
            Command::Designate => &self.designate,
            Command::Call => &self.call,
            Command::ToggleVideo => &self.toggle_video,
            Command::HangUp => &self.hang_up,
            Command::AddParty => &self.add_party,
            Command::Answer => &self.answer,
            Command::Decline => &self.decline,
            Command::Refresh => &self.refresh,
            Command::Help => &self.help,
            Command::Dismiss => &self.dismiss,
            Command::Quit => &self.quit,
        };
        &keys.0
    }

    /// The command a key press means, if any.
    pub fn resolve(&self, event: &KeyEvent) -> Option<Command> {
        Command::ALL
            .iter()
            .copied()
            .find(|command| self.keys(*command).iter().any(|key| key.matches(event)))
    }

    /// The first key of a command as the status bar shows it (`?` for help),
    /// or `None` when the command is unbound.
    pub fn label(&self, command: Command) -> Option<String> {
        self.keys(command).first().map(KeyBinding::label)
    }

    /// Every key of a command, joined for the help overlay (`↑ k`).
    pub fn labels(&self, command: Command) -> String {
        self.keys(command)
            .iter()
            .map(KeyBinding::label)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Refuses one key bound to two commands (the second would never fire).
    pub fn validate(&self) -> Result<(), BindingError> {
        let mut seen: Vec<(KeyBinding, Command)> = Vec::new();
        for &command in Command::ALL {
            for key in self.keys(command) {
                let probe = KeyEvent::new(key.code, key.modifiers);
                if let Some((_, first)) = seen.iter().find(|(other, _)| other.matches(&probe)) {
                    return Err(BindingError::Conflict {
                        key: key.to_string(),
                        first: format!("{first:?}"),
                        second: format!("{command:?}"),
                    });
                }
                seen.push((*key, command));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(name: &str) -> KeyBinding {
        name.parse().unwrap()
    }

    #[test]
    fn parses_key_names() {
        assert_eq!(parse("ctrl-c"), KeyBinding::ctrl('c'));
        assert_eq!(parse("Ctrl-C"), KeyBinding::ctrl('C'));
        assert_eq!(parse("space"), KeyBinding::char(' '));
        assert_eq!(parse("enter"), KeyBinding::plain(KeyCode::Enter));
        assert_eq!(parse("/"), KeyBinding::char('/'));
        assert_eq!(parse("?"), KeyBinding::char('?'));
        assert_eq!(parse("-"), KeyBinding::char('-'));
        assert_eq!(parse("ctrl--"), KeyBinding::ctrl('-'));
        assert_eq!(parse("f12"), KeyBinding::plain(KeyCode::F(12)));
        assert_eq!(
            parse("alt-shift-up"),
            KeyBinding {
                code: KeyCode::Up,
                modifiers: KeyModifiers::ALT | KeyModifiers::SHIFT
            }
        );
        assert!(matches!(
            "hyper-x".parse::<KeyBinding>(),
            Err(BindingError::UnknownKey(_))
        ));
        assert!(matches!(
            "f99".parse::<KeyBinding>(),
            Err(BindingError::UnknownKey(_))
        ));
        assert_eq!("".parse::<KeyBinding>(), Err(BindingError::Empty));
    }

    #[test]
    fn names_round_trip() {
        for name in [
            "ctrl-c", "space", "enter", "/", "?", "tab", "f1", "alt-x", "pagedown",
        ] {
            assert_eq!(parse(name).to_string(), name);
        }
    }

    #[test]
    fn shift_is_part_of_a_character() {
        let question = KeyEvent::new(KeyCode::Char('?'), KeyModifiers::SHIFT);
        assert!(KeyBinding::char('?').matches(&question));
        let ctrl_c = KeyEvent::new(KeyCode::Char('C'), KeyModifiers::CONTROL);
        assert!(KeyBinding::ctrl('c').matches(&ctrl_c));
        let plain_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE);
        assert!(!KeyBinding::ctrl('c').matches(&plain_c));
    }

    #[test]
    fn defaults_are_consistent_and_resolve() {
        let bindings = Bindings::default();
        bindings.validate().unwrap();
        let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(bindings.resolve(&enter), Some(Command::Call));
        let j = KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE);
        assert_eq!(bindings.resolve(&j), Some(Command::Down));
    }

    #[test]
    fn config_section_overrides_some_keys() {
        let bindings: Bindings =
            toml::from_str("quit = \"x\"\nup = [\"up\", \"ctrl-p\"]\n").unwrap();
        assert_eq!(bindings.quit.0, vec![KeyBinding::char('x')]);
        assert_eq!(
            bindings.up.0,
            vec![KeyBinding::plain(KeyCode::Up), KeyBinding::ctrl('p')]
        );
        assert_eq!(bindings.call, Bindings::default().call);
        let text = toml::to_string(&bindings).unwrap();
        let back: Bindings = toml::from_str(&text).unwrap();
        assert_eq!(back, bindings);
        assert!(toml::from_str::<Bindings>("qiut = \"x\"").is_err());
        assert!(toml::from_str::<Bindings>("quit = \"hyper-x\"").is_err());
    }

    #[test]
    fn conflicts_are_named() {
        let bindings: Bindings = toml::from_str("quit = \"h\"").unwrap();
        let err = bindings.validate().unwrap_err();
        assert!(err.to_string().contains("HangUp"), "{err}");
    }
}
