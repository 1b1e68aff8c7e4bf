//! The agent's configuration file (TOML), read strictly: an unknown key, a
//! missing field or a bad value is one line naming the file, the field and the
//! problem. `docs/config.md` documents every key with an example.

use serde::Deserialize;
use splitdial_api::{Media, TalkerKind};
use splitdial_tls::secret_file::{self, SecretFileError};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Human name, shown in the dialer and used as the mDNS instance name.
    pub name: String,
    /// Device kind.
    pub kind: TalkerKind,
    /// What the device can carry: `["audio"]` or `["audio", "video"]`.
    #[serde(default = "default_media")]
    pub media: Vec<Media>,
    /// Talker id; derived from the talker's key when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// Where the agent keeps its key, credential and the pinned matcher key.
    pub state_dir: PathBuf,
    /// The matcher's base URL (enrollment and heartbeats).
    #[serde(default)]
    pub matcher_url: Option<String>,
    /// A CA file (PEM) the matcher's certificate must chain to, instead of the
    /// system's roots (a household CA, `matcher pki init`). Relative to this file.
    #[serde(default)]
    pub matcher_ca: Option<PathBuf>,
    /// The matcher's own certificate (PEM), pinned: trusted for its bytes only.
    /// Relative to this file.
    #[serde(default)]
    pub matcher_certificate: Option<PathBuf>,
    /// The matcher's public key (base64), pinned here instead of at enrollment.
    #[serde(default)]
    pub matcher_key: Option<String>,
    /// Local SIP endpoint.
    #[serde(default)]
    pub sip: SipSection,
    /// The device's SIP accounts (one per server it uses).
    pub accounts: Vec<Account>,
    /// How ordinary incoming calls (no call token) are handled.
    #[serde(default)]
    pub answer: AnswerPolicy,
    /// Audio devices.
    #[serde(default)]
    pub audio: AudioSection,
    /// Video devices.
    #[serde(default)]
    pub video: VideoSection,
    /// mDNS advertisement.
    #[serde(default)]
    pub discovery: DiscoverySection,
    /// The local status API.
    #[serde(default)]
    pub status: StatusSection,
}

fn default_media() -> Vec<Media> {
    vec![Media::Audio]
}

/// The local SIP endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSection {
    /// UDP and TCP listen address; port 0 picks one.
    #[serde(default = "default_sip_listen")]
    pub listen: SocketAddr,
}

impl Default for SipSection {
    fn default() -> Self {
        Self {
            listen: default_sip_listen(),
        }
    }
}

fn default_sip_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Transport toward a SIP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP (TCP is still used for requests near the MTU).
    #[default]
    Udp,
    /// TCP for everything.
    Tcp,
}

/// One SIP account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The server's domain (`home.example`).
    pub server: String,
    /// Where to send requests for that domain (IP and port; no DNS is done).
    pub proxy: SocketAddr,
    /// Transport toward the proxy.
    #[serde(default)]
    pub transport: Transport,
    /// The user part of the account's address of record.
    pub user: String,
    /// The password, inline.
    #[serde(default)]
    pub password: Option<String>,
    /// Or a file holding the password (must not be readable by others).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Registration lifetime asked for, in seconds.
    #[serde(default = "default_expires")]
    pub expires: u32,
}

fn default_expires() -> u32 {
    600
}

/// Policy for ordinary incoming calls.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerPolicy {
    /// `manual` (ring until the owner answers), `reject`, or `auto`.
    #[serde(default)]
    pub policy: Policy,
    /// For `auto`: seconds of ringing before answering.
    #[serde(default)]
    pub after_seconds: u32,
    /// For `auto`: callers (as asserted by our own server) answered automatically.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// The answer policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Ring; the owner answers or declines from the dialer.
    #[default]
    Manual,
    /// Decline at once.
    Reject,
    /// Answer allow-listed callers after `after_seconds`.
    Auto,
}

/// Audio devices: `auto`, `tone:HZ`, `beeps:HZ`, `file:PATH` or `none` as source;
/// `auto`, `analyze`, `file:PATH` or `none` as sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioSection {
    /// Where the voice comes from.
    #[serde(default = "default_auto")]
    pub source: String,
    /// Where the voice goes.
    #[serde(default = "default_auto")]
    pub sink: String,
    /// Jitter buffer, milliseconds.
    #[serde(default = "default_jitter")]
    pub jitter_ms: u32,
}

impl Default for AudioSection {
    fn default() -> Self {
        Self {
            source: default_auto(),
            sink: default_auto(),
            jitter_ms: default_jitter(),
        }
    }
}

/// Video devices: `auto`, `pattern`, `file:PATH` or `none` as source; `auto`,
/// `analyze`, `file:PATH` or `none` as sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoSection {
    /// Where the picture comes from.
    #[serde(default = "default_none")]
    pub source: String,
    /// Where the picture goes.
    #[serde(default = "default_none")]
    pub sink: String,
}

impl Default for VideoSection {
    fn default() -> Self {
        Self {
            source: default_none(),
            sink: default_none(),
        }
    }
}

fn default_auto() -> String {
    "auto".into()
}
fn default_none() -> String {
    "none".into()
}
fn default_jitter() -> u32 {
    20
}

/// mDNS advertisement settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverySection {
    /// Interfaces to advertise on (names); empty means all.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Set to false to not advertise at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

impl Default for DiscoverySection {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            enabled: true,
        }
    }
}

/// The local status API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusSection {
    /// HTTP listen address (the port advertised by mDNS).
    #[serde(default = "default_status_listen")]
    pub listen: SocketAddr,
}

impl Default for StatusSection {
    fn default() -> Self {
        Self {
            listen: default_status_listen(),
        }
    }
}

fn default_status_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A configuration that cannot be used. Displays as one line: file, field, problem.
#[derive(Debug, thiserror::Error)]
#[error("config {path}: {field}: {problem}")]
pub struct ConfigError {
    /// The file.
    pub path: String,
    /// The field (dotted path, `-` when the whole file is at fault).
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl Config {
    /// Reads and checks the file at `path`. A file that carries a password
    /// inline must be readable by its owner only.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let fail = |field: String, problem: String| ConfigError {
            path: path.display().to_string(),
            field,
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail("-".into(), e.to_string()))?;
        let mut config = Self::parse(&text, path)?;
        if let Some(index) = config.accounts.iter().position(|a| a.password.is_some()) {
            secret_file::refuse_shared(path).map_err(|e| match e {
                SecretFileError::SharedFile { mode, .. } => fail(
                    format!("accounts[{index}].password"),
                    format!(
                        "an inline password needs the file readable by its owner only \
                         (mode {mode:o}): chmod 600 it, or use password_file"
                    ),
                ),
                other => fail("-".into(), other.problem()),
            })?;
        }
        // The certificate files are relative to this file, as password files.
        let beside = |file: &PathBuf| path.parent().map_or(file.clone(), |dir| dir.join(file));
        config.matcher_ca = config.matcher_ca.as_ref().map(beside);
        config.matcher_certificate = config.matcher_certificate.as_ref().map(beside);
        Ok(config)
    }

    /// Parses and checks configuration text; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let fail = |field: String, problem: String| ConfigError {
            path: path.display().to_string(),
            field,
            problem,
        };
        let deserializer =
            toml::Deserializer::parse(text).map_err(|e| fail("-".into(), one_line(e.message())))?;
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let field = e.path().to_string();
            fail(
                if field == "." { "-".into() } else { field },
                one_line(e.inner().message()),
            )
        })?;
        config
            .check()
            .map_err(|(field, problem)| fail(field, problem))?;
        Ok(config)
    }

    /// How the matcher's certificate is checked before pins: the pinned
    /// certificate, else the CA file, else the system's roots.
    pub fn matcher_roots(&self) -> splitdial_tls::TrustRoots {
        match (&self.matcher_certificate, &self.matcher_ca) {
            (Some(certificate), _) => {
                splitdial_tls::TrustRoots::CertificateFile(certificate.clone())
            }
            (None, Some(ca)) => splitdial_tls::TrustRoots::CaFile(ca.clone()),
            (None, None) => splitdial_tls::TrustRoots::System,
        }
    }

    fn check(&self) -> Result<(), (String, String)> {
        if self.matcher_ca.is_some() && self.matcher_certificate.is_some() {
            return Err((
                "matcher_certificate".into(),
                "give matcher_ca or matcher_certificate, not both".into(),
            ));
        }
        if self.name.trim().is_empty() || self.name.len() > 63 {
            return Err((
                "name".into(),
                "must be 1 to 63 bytes (a DNS-SD instance name)".into(),
            ));
        }
        if !self.media.contains(&Media::Audio) {
            return Err(("media".into(), "must include \"audio\"".into()));
        }
        if let Some(id) = &self.id
            && (id.is_empty()
                || id.len() > 64
                || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err((
                "id".into(),
                "letters, digits and '-' only, at most 64".into(),
            ));
        }
        if self.accounts.is_empty() {
            return Err((
                "accounts".into(),
                "at least one SIP account is needed".into(),
            ));
        }
        for (i, account) in self.accounts.iter().enumerate() {
            let at = |f: &str| format!("accounts[{i}].{f}");
            if account.user.is_empty() || account.user.contains(['@', ':', ' ']) {
                return Err((
                    at("user"),
                    "a plain user name (no '@', ':' or spaces)".into(),
                ));
            }
            if account.server.is_empty() || account.server.contains(['@', ' ', '/']) {
                return Err((at("server"), "a domain name like home.example".into()));
            }
            match (&account.password, &account.password_file) {
                (Some(_), Some(_)) => {
                    return Err((
                        at("password"),
                        "give password or password_file, not both".into(),
                    ));
                }
                (None, None) => return Err((at("password"), "missing (or password_file)".into())),
                _ => {}
            }
            if !(10..=86_400).contains(&account.expires) {
                return Err((at("expires"), "between 10 and 86400 seconds".into()));
            }
        }
        if self.answer.policy == Policy::Auto && self.answer.allow.is_empty() {
            return Err((
                "answer.allow".into(),
                "policy \"auto\" needs an allow-list of callers".into(),
            ));
        }
        if self.audio.jitter_ms > 1000 {
            return Err(("audio.jitter_ms".into(), "at most 1000".into()));
        }
        Ok(())
    }

    /// Whether video is among the device's capabilities.
    pub fn has_video(&self) -> bool {
        self.media.contains(&Media::Video)
    }

    /// What the device carries, in the registry's and DNS-SD's terms: video
    /// when video is among its capabilities, else audio.
    pub fn carried_media(&self) -> Media {
        Media::with_video(self.has_video())
    }

    /// The IP address the local SIP endpoint uses.
    pub fn sip_ip(&self) -> IpAddr {
        self.sip.listen.ip()
    }
}

impl Account {
    /// The password, reading `password_file` if that is how it is given. The
    /// file must not be readable by group or others.
    pub fn load_password(&self, config_path: &Path, index: usize) -> Result<String, ConfigError> {
        let fail = |problem: String| ConfigError {
            path: config_path.display().to_string(),
            field: format!("accounts[{index}].password_file"),
            problem,
        };
        if let Some(pw) = &self.password {
            return Ok(pw.clone());
        }
        let Some(file) = &self.password_file else {
            return Err(fail("missing".into()));
        };
        secret_file::refuse_shared(file).map_err(|e| fail(e.to_string()))?;
        let text =
            std::fs::read_to_string(file).map_err(|e| fail(format!("{}: {e}", file.display())))?;
        let pw = text.trim_end_matches(['\n', '\r']).to_owned();
        if pw.is_empty() {
            return Err(fail(format!("{} is empty", file.display())));
        }
        Ok(pw)
    }

    /// The account's address of record.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.server)
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "Living-room TV"
kind = "tv"
media = ["audio", "video"]
state_dir = "/tmp/x"

[[accounts]]
server = "home.example"
proxy = "127.0.0.1:5060"
user = "alice"
password = "pw"
"#;

    fn err(text: &str) -> String {
        Config::parse(text, Path::new("tv.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn reads_a_good_file_with_defaults() {
        let c = Config::parse(GOOD, Path::new("tv.toml")).unwrap();
        assert!(c.has_video());
        assert_eq!(c.accounts[0].expires, 600);
        assert_eq!(c.answer.policy, Policy::Manual);
        assert_eq!(c.audio.jitter_ms, 20);
        assert!(c.discovery.enabled, "advertising is on unless switched off");
    }

    #[test]
    fn errors_are_one_line_naming_file_and_field() {
        let e = err(&GOOD.replace("kind = \"tv\"", "kind = \"toaster\""));
        assert!(e.starts_with("config tv.toml: kind: "), "{e}");
        assert!(!e.contains('\n'));
        let e = err(&GOOD.replace("proxy = \"127.0.0.1:5060\"", "proxy = \"nowhere\""));
        assert!(e.starts_with("config tv.toml: accounts[0].proxy: "), "{e}");
        let e = err(&format!("{GOOD}\ncolour = \"blue\""));
        assert!(e.contains("colour"), "{e}");
        let e = err(&GOOD.replace("password = \"pw\"", ""));
        assert!(
            e.starts_with("config tv.toml: accounts[0].password: "),
            "{e}"
        );
        let e = err(&format!("{GOOD}\n[answer]\npolicy = \"auto\"\n"));
        assert!(e.starts_with("config tv.toml: answer.allow: "), "{e}");
        let e = err("name = ");
        assert!(e.starts_with("config tv.toml: -: "), "{e}");
    }

    #[test]
    fn an_inline_password_needs_a_private_config_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tv.toml");
        std::fs::write(&path, GOOD).unwrap();
        for shared in [0o644, 0o640, 0o604] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(shared)).unwrap();
            let e = Config::load(&path).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "config {}: accounts[0].password: an inline password needs the file readable by its owner only (mode {shared:o}): chmod 600 it, or use password_file",
                    path.display()
                )
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Config::load(&path).is_ok());
        // With the password in its own (private) file the config may be shared.
        let secret = dir.path().join("pw");
        std::fs::write(&secret, "pw\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(
            &path,
            GOOD.replace(
                "password = \"pw\"",
                &format!("password_file = {:?}", secret.display().to_string()),
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Config::load(&path).is_ok());
    }

    #[test]
    fn password_files_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "secret\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = GOOD.replace(
            "password = \"pw\"",
            &format!("password_file = {:?}", file.display().to_string()),
        );
        let c = Config::parse(&text, Path::new("tv.toml")).unwrap();
        let e = c.accounts[0]
            .load_password(Path::new("tv.toml"), 0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("accounts[0].password_file") && e.contains("chmod 600"),
            "{e}"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            c.accounts[0]
                .load_password(Path::new("tv.toml"), 0)
                .unwrap(),
            "secret"
        );
    }
}
