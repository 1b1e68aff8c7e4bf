//! Rules that keep the suite's tests able to fail, checked over every Rust
//! file of the workspace:
//!
//! * the only reason a test may be ignored is `needs root: run scripts/test`
//!   (`scripts/test` runs those with `--include-ignored`, as root); a long test
//!   goes behind the `long-tests` feature or into a bench, never `#[ignore]`;
//! * no test says it is skipped and passes: nothing outside `benches/` prints a
//!   message starting with "skipped" or "skipping";
//! * test code does not ask `is_root()` (to return early): it calls
//!   `testbed::require_root()`, which fails without root.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::path::{Path, PathBuf};

/// The one reason a test may carry in `#[ignore = ...]`.
const ROOT_REASON: &str = "needs root: run scripts/test";

/// This file, which names the patterns it looks for.
const SELF: &str = "testbed/tests/suite_rules.rs";

/// Every `.rs` file under `dir`, build output and version control excluded.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The workspace's Rust files, as (path relative to the root, text).
fn workspace_sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 50, "found only {} Rust files", files.len());
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let relative = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (relative, text)
        })
        .filter(|(path, _)| path != SELF)
        .collect()
}

/// 1-based line number of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// Every `#[ignore ...]` attribute that does not carry exactly [`ROOT_REASON`].
fn wrong_ignores(path: &str, text: &str) -> Vec<String> {
    let wanted = format!("#[ignore = \"{ROOT_REASON}\"]");
    text.match_indices("#[ignore")
        .filter(|(at, _)| !text[*at..].starts_with(&wanted))
        .map(|(at, _)| {
            let line = text[at..].lines().next().unwrap_or_default();
            format!("{path}:{}: {line}", line_of(text, at))
        })
        .collect()
}

/// Every print macro whose message starts with "skipped" or "skipping".
fn skip_messages(path: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for mac in ["println!(", "eprintln!(", "print!(", "eprint!("] {
        for (at, _) in text.match_indices(mac) {
            // `eprintln!(` also contains `println!(`: count each call once.
            if mac.starts_with('p') && text[..at].ends_with('e') {
                continue;
            }
            let args = text[at + mac.len()..].trim_start();
            let message = args.strip_prefix('"').unwrap_or_default().to_lowercase();
            if message.starts_with("skipped") || message.starts_with("skipping") {
                found.push(format!(
                    "{path}:{}: {mac}\"{}…",
                    line_of(text, at),
                    &args[1..20.min(args.len())]
                ));
            }
        }
    }
    found
}

/// Whether `path` holds test code: a file under a `tests` directory.
fn is_test_code(path: &str) -> bool {
    path.split('/').any(|part| part == "tests")
}

#[test]
fn tests_are_ignored_only_for_root_and_with_that_reason() {
    let wrong: Vec<String> = workspace_sources()
        .iter()
        .flat_map(|(path, text)| wrong_ignores(path, text))
        .collect();
    assert!(
        wrong.is_empty(),
        "ignore a test only with #[ignore = \"{ROOT_REASON}\"] (a long test goes behind the \
         `long-tests` feature or into a bench):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_test_says_it_is_skipped_and_passes() {
    let found: Vec<String> = workspace_sources()
        .iter()
        .filter(|(path, _)| !path.split('/').any(|part| part == "benches"))
        .flat_map(|(path, text)| skip_messages(path, text))
        .collect();
    assert!(
        found.is_empty(),
        "a test that cannot run here must fail or be ignored (with the root reason), never \
         say it is skipped and pass:\n{}",
        found.join("\n")
    );
    let asking: Vec<String> = workspace_sources()
        .iter()
        .filter(|(path, _)| is_test_code(path))
        .flat_map(|(path, text)| {
            text.match_indices("is_root()")
                .map(|(at, _)| format!("{path}:{}", line_of(text, at)))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        asking.is_empty(),
        "test code calls testbed::require_root(), never is_root() (which lets it return and \
         pass):\n{}",
        asking.join("\n")
    );
}

#[test]
fn the_rules_catch_what_they_are_for() {
    let ignored = "#[test]\n#[ignore]\nfn a() {}\n#[ignore = \"slow\"]\nfn b() {}\n";
    assert_eq!(wrong_ignores("x.rs", ignored).len(), 2);
    let fine = format!("#[ignore = \"{ROOT_REASON}\"]\nfn c() {{}}\n");
    assert!(wrong_ignores("x.rs", &fine).is_empty());
    let skipping = "if x {\n    eprintln!(\n        \"Skipped: no tmux\"\n    );\n    return;\n}\nprintln!(\"skipping {e:?}\");\neprintln!(\"(skipping an event)\");\n";
    assert_eq!(skip_messages("x.rs", skipping).len(), 2);
    assert!(is_test_code("tui/tests/cli.rs"));
    assert!(is_test_code("tests/src/lib.rs"));
    assert!(!is_test_code("tui/src/commands/demo.rs"));
}
