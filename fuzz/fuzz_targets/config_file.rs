//! Fuzz target: the dialer's configuration file (TOML → `Config`, with key
//! bindings and theme) must never panic, whatever the file holds, and a
//! refusal must name the file and the field, on one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use splitdial_tui::config::{Config, Overrides};
use std::path::PathBuf;
use std::sync::OnceLock;

/// One file rewritten for every input (the loader reads a path, as the
/// dialer does): a private temporary directory kept for the whole run.
fn config_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("splitdial-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        dir.join("config.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    // `token_file` makes the loader read another file that the input names
    // (`/proc/...` would be a hang, not a finding); keys can be spelled with
    // escapes, so any escape or mention of "file" is left out.
    let lower = data.to_ascii_lowercase();
    if lower.windows(4).any(|w| w == b"file") || data.contains(&b'\\') {
        return;
    }
    let path = config_path();
    if std::fs::write(path, data).is_err() {
        return;
    }
    let flags = Overrides {
        config_file: Some(path.clone()),
        ..Overrides::default()
    };
    match Config::load(&flags, &|_| None) {
        Ok(loaded) => {
            // What `splitdial config` prints must be printable.
            let _ = loaded.config.to_toml();
            let _ = loaded.config.keys.validate();
        }
        Err(e) => {
            assert_eq!(e.source_name, path.display().to_string(), "{e}");
            assert!(!e.field.is_empty(), "no field named: {e}");
            assert!(!e.problem.contains('\n'), "not one line: {e}");
            assert!(!e.to_string().contains('\n'), "not one line: {e}");
        }
    }
});
