//! The dialer's configuration, merged from three places, later ones winning:
//! the file (`$XDG_CONFIG_HOME/splitdial/config.toml`, or `--config FILE`) <
//! the environment (`SPLITDIAL_MATCHER_URL`, `SPLITDIAL_MATCHER_CA`,
//! `SPLITDIAL_MATCHER_CERTIFICATE`, `SPLITDIAL_TOKEN`, `SPLITDIAL_INTERFACES`,
//! `NO_COLOR`) < command-line flags. The file is read
//! strictly: an unknown key or a bad value is a [`ConfigError`] naming the
//! file, the field and the problem. `docs/dialer.md` ("Configuration") is the
//! reference.

pub mod binding;
pub mod theme;

pub use binding::{BindingError, Bindings, KeyBinding, Keys};
pub use theme::Theme;

use discovery::{InterfaceSelection, TalkerId};
use serde::{Deserialize, Serialize};
use splitdial_tls::secret_file::SecretFileError;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A bearer token: never shown in `Debug` or serialized output.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a token.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The token itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

/// A talker entered by hand (`[[talkers]]`), verified like a discovered one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualTalker {
    /// The talker id the registry holds.
    pub id: String,
    /// Its local API address.
    pub address: SocketAddr,
}

/// The effective configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// The matcher's base URL (`https://host:port`, or `http://` to a loopback
    /// host); nothing works without it.
    pub matcher_url: Option<String>,
    /// A CA file the matcher's certificate must chain to, instead of the
    /// system's roots (a household CA).
    pub matcher_ca: Option<PathBuf>,
    /// The matcher's own certificate, pinned: trusted for its bytes only.
    pub matcher_certificate: Option<PathBuf>,
    /// The bearer token.
    pub token: Option<Secret>,
    /// `all` or a comma-separated list of interfaces for mDNS.
    pub interfaces: String,
    /// Whether to browse mDNS at all (false: registry and manual entries only).
    pub discovery: bool,
    /// Manual talker entries.
    pub talkers: Vec<ManualTalker>,
    /// Key bindings.
    pub keys: Bindings,
    /// Colours.
    pub theme: Theme,
    /// `NO_COLOR` set (any value), `--no-color`, or the theme says so.
    pub no_color: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            matcher_url: None,
            matcher_ca: None,
            matcher_certificate: None,
            token: None,
            interfaces: "all".to_owned(),
            discovery: true,
            talkers: Vec::new(),
            keys: Bindings::default(),
            theme: Theme::default(),
            no_color: false,
        }
    }
}

/// The configuration file as written (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    matcher_url: Option<String>,
    matcher_ca: Option<PathBuf>,
    matcher_certificate: Option<PathBuf>,
    token: Option<Secret>,
    token_file: Option<PathBuf>,
    interfaces: Option<String>,
    discovery: Option<bool>,
    talkers: Option<Vec<ManualTalker>>,
    keys: Option<Bindings>,
    theme: Option<Theme>,
}

/// What the command line says (each `Some` or `true` overrides the file and
/// the environment).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config FILE`: read this file instead of the XDG one (it must exist).
    pub config_file: Option<PathBuf>,
    /// `--matcher-url URL`.
    pub matcher_url: Option<String>,
    /// `--token-file FILE`: the bearer token, read from a file (never a flag
    /// value, which every user of the machine could read in `ps`).
    pub token_file: Option<PathBuf>,
    /// `--interfaces LIST`.
    pub interfaces: Option<String>,
    /// `--no-discovery`.
    pub no_discovery: bool,
    /// `--talker ID=HOST:PORT` (repeated): replaces the file's manual talkers.
    pub talkers: Vec<ManualTalker>,
    /// `--no-color`.
    pub no_color: bool,
}

/// A configuration problem: where (file, environment variable or flag), which
/// field, what is wrong. Printed on one line; the dialer exits with code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config {source_name}: {field}: {problem}")]
pub struct ConfigError {
    /// The file's path, `environment` or `command line`.
    pub source_name: String,
    /// The field (`talkers[0].address`, `SPLITDIAL_MATCHER_URL`, `-` when the
    /// whole source is at fault).
    pub field: String,
    /// What is wrong, one line.
    pub problem: String,
}

impl ConfigError {
    fn new(
        source_name: impl Into<String>,
        field: impl Into<String>,
        problem: impl fmt::Display,
    ) -> Self {
        Self {
            source_name: source_name.into(),
            field: field.into(),
            problem: one_line(&problem.to_string()),
        }
    }
}

/// Where the configuration came from, for `splitdial config`.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// The file read, and whether it existed.
    pub file: Option<(PathBuf, bool)>,
}

/// The default file: `$XDG_CONFIG_HOME/splitdial/config.toml`, else
/// `$HOME/.config/splitdial/config.toml`.
pub fn default_file(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = env("XDG_CONFIG_HOME")
        .filter(|d| Path::new(d).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            env("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| Path::new(&h).join(".config"))
        })?;
    Some(base.join("splitdial").join("config.toml"))
}

/// The dialer's state directory: `$XDG_STATE_HOME/splitdial`, else
/// `$HOME/.local/state/splitdial` (holds `last_call`).
pub fn state_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = env("XDG_STATE_HOME")
        .filter(|d| Path::new(d).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            env("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| Path::new(&h).join(".local").join("state"))
        })?;
    Some(base.join("splitdial"))
}

/// Reads the process environment (what [`Config::load`] is given outside tests).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

impl Config {
    /// Merges file < environment < flags and checks the result. `env` reads
    /// an environment variable (tests pass their own).
    pub fn load(
        flags: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Loaded, ConfigError> {
        let mut config = Config::default();
        let file = match &flags.config_file {
            Some(path) => Some((path.clone(), true)),
            None => default_file(env).map(|p| {
                let exists = p.exists();
                (p, exists)
            }),
        };
        if let Some((path, must_exist)) = &file {
            let name = path.display().to_string();
            match std::fs::read_to_string(path) {
                Ok(text) => apply_file(&mut config, &text, path)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {}
                Err(e) => return Err(ConfigError::new(name, "-", e)),
            }
        }
        let file = file.map(|(path, _)| {
            let exists = path.exists();
            (path, exists)
        });

        // The environment.
        let env_value = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let Some(url) = env_value("SPLITDIAL_MATCHER_URL") {
            config.matcher_url = Some(
                check_matcher_url(&url)
                    .map_err(|p| ConfigError::new("environment", "SPLITDIAL_MATCHER_URL", p))?,
            );
        }
        if let Some(ca) = env_value("SPLITDIAL_MATCHER_CA") {
            config.matcher_ca = Some(PathBuf::from(ca));
        }
        if let Some(certificate) = env_value("SPLITDIAL_MATCHER_CERTIFICATE") {
            config.matcher_certificate = Some(PathBuf::from(certificate));
        }
        if let Some(token) = env_value("SPLITDIAL_TOKEN") {
            config.token = Some(
                check_token(&token)
                    .map_err(|p| ConfigError::new("environment", "SPLITDIAL_TOKEN", p))?,
            );
        }
        if let Some(list) = env_value("SPLITDIAL_INTERFACES") {
            config.interfaces = check_interfaces(&list)
                .map_err(|p| ConfigError::new("environment", "SPLITDIAL_INTERFACES", p))?;
        }
        if env("NO_COLOR").is_some() {
            config.no_color = true;
        }

        // The command line.
        let flag = |field: &str, problem: String| ConfigError::new("command line", field, problem);
        if let Some(url) = &flags.matcher_url {
            config.matcher_url =
                Some(check_matcher_url(url).map_err(|p| flag("--matcher-url", p))?);
        }
        if let Some(path) = &flags.token_file {
            config.token = Some(read_token_file(path).map_err(|p| flag("--token-file", p))?);
        }
        if let Some(list) = &flags.interfaces {
            config.interfaces = check_interfaces(list).map_err(|p| flag("--interfaces", p))?;
        }
        if flags.no_discovery {
            config.discovery = false;
        }
        if !flags.talkers.is_empty() {
            for talker in &flags.talkers {
                check_talker_id(&talker.id).map_err(|p| flag("--talker", p))?;
            }
            config.talkers.clone_from(&flags.talkers);
        }
        if flags.no_color {
            config.no_color = true;
        }
        if config.theme.no_color {
            config.no_color = true;
        }
        if config.matcher_ca.is_some() && config.matcher_certificate.is_some() {
            return Err(ConfigError::new(
                "configuration",
                "matcher_certificate",
                "give matcher_ca or matcher_certificate, not both",
            ));
        }
        Ok(Loaded { config, file })
    }

    /// How the matcher's certificate is checked: the pinned certificate, else
    /// the CA file, else the system's roots.
    pub fn matcher_trust(&self) -> splitdial_tls::ServerTrust {
        let roots = match (&self.matcher_certificate, &self.matcher_ca) {
            (Some(certificate), _) => {
                splitdial_tls::TrustRoots::CertificateFile(certificate.clone())
            }
            (None, Some(ca)) => splitdial_tls::TrustRoots::CaFile(ca.clone()),
            (None, None) => splitdial_tls::TrustRoots::System,
        };
        splitdial_tls::ServerTrust {
            roots,
            pins: Vec::new(),
        }
    }

    /// The mDNS interfaces as discovery wants them.
    pub fn interface_selection(&self) -> Result<InterfaceSelection, String> {
        self.interfaces
            .parse()
            .map_err(|e: discovery::DiscoveryError| e.to_string())
    }

    /// The effective configuration as TOML, the token redacted (what
    /// `splitdial config` prints).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string_pretty(self).map_err(|e| e.to_string())
    }
}

/// A configuration file that carries the token inline must be readable by its
/// owner only.
fn private_file(path: &Path) -> Result<(), String> {
    splitdial_tls::secret_file::refuse_shared(path).map_err(|e| match e {
        SecretFileError::SharedFile { mode, .. } => format!(
            "an inline token needs the file readable by its owner only (mode {mode:o}): \
             chmod 600 it, or use token_file"
        ),
        other => other.problem(),
    })
}

fn apply_file(config: &mut Config, text: &str, path: &Path) -> Result<(), ConfigError> {
    let name = path.display().to_string();
    let fail = |field: String, problem: String| ConfigError::new(name.clone(), field, problem);
    let deserializer =
        toml::Deserializer::parse(text).map_err(|e| fail("-".into(), e.message().to_owned()))?;
    let file: FileConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let field = e.path().to_string();
        fail(
            if field == "." { "-".into() } else { field },
            e.inner().message().to_owned(),
        )
    })?;
    if let Some(url) = file.matcher_url {
        config.matcher_url =
            Some(check_matcher_url(&url).map_err(|p| fail("matcher_url".into(), p))?);
    }
    // Relative paths are relative to the config file, as token_file.
    let beside = |file: PathBuf| path.parent().map_or(file.clone(), |dir| dir.join(&file));
    if let Some(ca) = file.matcher_ca {
        config.matcher_ca = Some(beside(ca));
    }
    if let Some(certificate) = file.matcher_certificate {
        config.matcher_certificate = Some(beside(certificate));
    }
    match (file.token, file.token_file) {
        (Some(_), Some(_)) => {
            return Err(fail(
                "token_file".into(),
                "give token or token_file, not both".into(),
            ));
        }
        (Some(token), None) => {
            private_file(path).map_err(|p| fail("token".into(), p))?;
            config.token = Some(check_token(token.expose()).map_err(|p| fail("token".into(), p))?);
        }
        (None, Some(token_file)) => {
            // A relative token file is relative to the config file.
            let token_file = path
                .parent()
                .map_or(token_file.clone(), |dir| dir.join(&token_file));
            config.token =
                Some(read_token_file(&token_file).map_err(|p| fail("token_file".into(), p))?);
        }
        (None, None) => {}
    }
    if let Some(list) = file.interfaces {
        config.interfaces = check_interfaces(&list).map_err(|p| fail("interfaces".into(), p))?;
    }
    if let Some(discovery) = file.discovery {
        config.discovery = discovery;
    }
    if let Some(talkers) = file.talkers {
        for (i, talker) in talkers.iter().enumerate() {
            check_talker_id(&talker.id).map_err(|p| fail(format!("talkers[{i}].id"), p))?;
        }
        config.talkers = talkers;
    }
    if let Some(keys) = file.keys {
        keys.validate()
            .map_err(|e| fail("keys".into(), e.to_string()))?;
        config.keys = keys;
    }
    if let Some(theme) = file.theme {
        config.theme = theme;
    }
    Ok(())
}

/// `https://host:port` without a path, or `http://` to a loopback host only
/// (a development matcher on this machine).
pub fn check_matcher_url(url: &str) -> Result<String, String> {
    splitdial_tls::check_base_url(url)
}

fn check_token(token: &str) -> Result<Secret, String> {
    let token = token.trim();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        // Never echo the value: it is a secret.
        return Err("the token must be one word of printable ASCII".into());
    }
    Ok(Secret::new(token))
}

fn read_token_file(path: &Path) -> Result<Secret, String> {
    splitdial_tls::secret_file::refuse_shared(path).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    check_token(&text).map_err(|p| format!("{}: {p}", path.display()))
}

fn check_interfaces(list: &str) -> Result<String, String> {
    let selection: InterfaceSelection = list
        .parse()
        .map_err(|e: discovery::DiscoveryError| e.to_string())?;
    Ok(selection.to_string())
}

fn check_talker_id(id: &str) -> Result<(), String> {
    TalkerId::new(id)
        .map(|_| ())
        .map_err(|e| format!("{id:?}: {e}"))
}

/// Parses `ID=HOST:PORT` (the `--talker` flag).
pub fn parse_manual_talker(text: &str) -> Result<ManualTalker, String> {
    let (id, address) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} must be ID=HOST:PORT"))?;
    check_talker_id(id)?;
    let address = address
        .parse()
        .map_err(|e| format!("{address:?} is not an IP:port address: {e}"))?;
    Ok(ManualTalker {
        id: id.to_owned(),
        address,
    })
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("splitdial").join("config.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        // Private, as a file with an inline token must be.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    #[test]
    fn defaults_without_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let loaded = Config::load(&Overrides::default(), &env_of(&[("HOME", home)])).unwrap();
        assert_eq!(loaded.config.matcher_url, None);
        assert!(loaded.config.discovery);
        assert_eq!(loaded.config.interfaces, "all");
        assert!(!loaded.config.no_color);
        assert_eq!(
            loaded.file,
            Some((dir.path().join(".config/splitdial/config.toml"), false))
        );
    }

    #[test]
    fn file_then_environment_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            r#"
matcher_url = "https://10.0.0.1:8740/"
matcher_ca = "ca.crt"
token = "from-file"
interfaces = "eth0"
discovery = true
[[talkers]]
id = "tv"
address = "192.168.1.20:8420"
[theme]
no_color = false
"#,
        );
        let xdg = dir.path().to_str().unwrap();
        // File only.
        let c = Config::load(&Overrides::default(), &env_of(&[("XDG_CONFIG_HOME", xdg)]))
            .unwrap()
            .config;
        assert_eq!(c.matcher_url.as_deref(), Some("https://10.0.0.1:8740"));
        let ca = dir.path().join("splitdial").join("ca.crt");
        assert_eq!(
            c.matcher_trust().roots,
            splitdial_tls::TrustRoots::CaFile(ca),
            "a relative CA file is beside the config file"
        );
        assert_eq!(c.token.as_ref().unwrap().expose(), "from-file");
        assert_eq!(c.interfaces, "eth0");
        assert_eq!(c.talkers[0].id, "tv");

        // The environment beats the file.
        let env = env_of(&[
            ("XDG_CONFIG_HOME", xdg),
            ("SPLITDIAL_MATCHER_URL", "https://10.0.0.2:8740"),
            ("SPLITDIAL_TOKEN", "from-env"),
            ("SPLITDIAL_INTERFACES", "wlan0, eth1"),
            ("NO_COLOR", ""),
        ]);
        let c = Config::load(&Overrides::default(), &env).unwrap().config;
        assert_eq!(c.matcher_url.as_deref(), Some("https://10.0.0.2:8740"));
        assert_eq!(c.token.as_ref().unwrap().expose(), "from-env");
        assert_eq!(c.interfaces, "wlan0,eth1");
        assert!(c.no_color, "NO_COLOR counts whatever its value");

        // Flags beat both.
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "from-flag\n").unwrap();
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let flags = Overrides {
            matcher_url: Some("http://127.0.0.1:9".into()),
            token_file: Some(token_file),
            interfaces: Some("all".into()),
            no_discovery: true,
            talkers: vec![parse_manual_talker("pc=10.0.0.5:8420").unwrap()],
            ..Overrides::default()
        };
        let c = Config::load(&flags, &env).unwrap().config;
        assert_eq!(c.matcher_url.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(c.token.as_ref().unwrap().expose(), "from-flag");
        assert_eq!(c.interfaces, "all");
        assert!(!c.discovery);
        assert_eq!(c.talkers.len(), 1);
        assert_eq!(c.talkers[0].id, "pc");
    }

    #[test]
    fn bad_files_name_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let xdg = dir.path().to_str().unwrap();
        for (text, field, problem) in [
            ("matcher_url = 3", "matcher_url", "invalid type"),
            (
                "matcher_url = \"http://10.0.0.1:8740\"",
                "matcher_url",
                "loopback",
            ),
            ("matcher_url = \"ftp://x\"", "matcher_url", "https://"),
            ("colour = true", "colour", "unknown field `colour`"),
            (
                "[[talkers]]\nid = \"tv\"\naddress = \"nowhere\"",
                "talkers[0].address",
                "invalid socket address",
            ),
            (
                "[[talkers]]\nid = \"a b\"\naddress = \"10.0.0.1:1\"",
                "talkers[0].id",
                "a b",
            ),
            ("interfaces = \" , \"", "interfaces", ""),
            ("discovery = \"yes\"", "discovery", "invalid type"),
            ("token = \"two words\"", "token", "one word"),
            ("matcher_url = ", "-", ""),
        ] {
            let path = write(dir.path(), text);
            let e = Config::load(&Overrides::default(), &env_of(&[("XDG_CONFIG_HOME", xdg)]))
                .unwrap_err();
            assert_eq!(e.source_name, path.display().to_string(), "{text}");
            assert_eq!(e.field, field, "{text}: {e}");
            assert!(e.problem.contains(problem), "{text}: {e}");
            assert!(!e.to_string().contains('\n'), "one line: {e}");
        }
        // An explicit --config file must exist.
        let flags = Overrides {
            config_file: Some(dir.path().join("missing.toml")),
            ..Overrides::default()
        };
        let e = Config::load(&flags, &env_of(&[])).unwrap_err();
        assert!(e.source_name.ends_with("missing.toml"), "{e}");
    }

    #[test]
    fn the_token_is_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "token = \"s3cret-token\"\nmatcher_url = \"https://h:1\"",
        );
        let xdg = dir.path().to_str().unwrap();
        let c = Config::load(&Overrides::default(), &env_of(&[("XDG_CONFIG_HOME", xdg)]))
            .unwrap()
            .config;
        assert!(!format!("{c:?}").contains("s3cret"));
        let printed = c.to_toml().unwrap();
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
        // A bad token in the environment is reported without its value.
        let e = Config::load(
            &Overrides::default(),
            &env_of(&[
                ("XDG_CONFIG_HOME", xdg),
                ("SPLITDIAL_TOKEN", "s3cret with space"),
            ]),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn an_inline_token_needs_a_private_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "token = \"s3cret-token\"");
        let xdg = dir.path().to_str().unwrap();
        for shared in [0o644, 0o640, 0o604] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(shared)).unwrap();
            let e = Config::load(&Overrides::default(), &env_of(&[("XDG_CONFIG_HOME", xdg)]))
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "config {}: token: an inline token needs the file readable by its owner only (mode {shared:o}): chmod 600 it, or use token_file",
                    path.display()
                )
            );
        }
        // Without a secret in it the file may be shared.
        write(dir.path(), "matcher_url = \"https://h:1\"");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Config::load(&Overrides::default(), &env_of(&[("XDG_CONFIG_HOME", xdg)])).is_ok());
    }

    #[test]
    fn token_files_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "t").unwrap();
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let flags = Overrides {
            token_file: Some(token_file),
            ..Overrides::default()
        };
        let e = Config::load(&flags, &env_of(&[])).unwrap_err();
        assert_eq!(e.field, "--token-file");
        assert!(e.problem.contains("chmod 600"), "{e}");
    }

    #[test]
    fn manual_talker_flags() {
        assert!(parse_manual_talker("tv=192.168.1.20:8420").is_ok());
        assert!(parse_manual_talker("tv=[fe80::1]:8420").is_ok());
        assert!(parse_manual_talker("tv").is_err());
        assert!(parse_manual_talker("tv=host.local:8420").is_err());
        assert!(parse_manual_talker("bad id=10.0.0.1:1").is_err());
    }
}
