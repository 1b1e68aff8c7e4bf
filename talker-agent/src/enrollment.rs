//! Enrollment with the matcher (`talker-agent enroll`): the talker sends its id,
//! public key and accounts with a one-time enrollment token, and keeps what the
//! matcher answers — its heartbeat credential and the matcher's token keys — in
//! `state_dir/enrollment.json` (0600, written atomically), with the SPKI pins of
//! the certificate chain it verified: later connections (heartbeats,
//! re-enrollment) need a chain that contains one of those keys. The wire format
//! is the matcher's HTTPS contract (`docs/talker-agent.md`, "Enrollment").

use crate::config::{Config, ConfigError};
use crate::identity::{Identity, IdentityError};
use crate::trust::decode_matcher_key;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use splitdial_api::{EnrollAccount, EnrollReply, EnrollRequest, MatcherKey};
use splitdial_tls::secret_file;
use splitdial_tls::{ServerTrust, SpkiPin, TrustRoots, VerifiedChain};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file in the state directory that holds the enrollment.
pub const ENROLLMENT_FILE: &str = "enrollment.json";
/// How long one request to the matcher may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Decodes a key list; any entry that is not an Ed25519 key fails the whole
/// list (a matcher that sends one is not to be half-believed).
pub fn decode_keys(keys: &[MatcherKey]) -> Result<Vec<(String, VerifyingKey)>, String> {
    keys.iter()
        .map(|k| {
            if k.kid.is_empty() || k.kid.len() > 128 {
                return Err(format!("key id {:?} is not usable", k.kid));
            }
            decode_matcher_key(k)
                .map(|key| (k.kid.clone(), key))
                .map_err(|e| format!("key {}: {e}", k.kid))
        })
        .collect()
}

/// What `enrollment.json` holds.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    /// The matcher's base URL (heartbeats go there).
    pub matcher_url: String,
    /// The talker id the matcher enrolled.
    pub talker_id: String,
    /// The bearer secret for heartbeats.
    pub credential: String,
    /// The matcher's token keys (updated from heartbeat replies).
    pub keys: Vec<MatcherKey>,
    /// SPKI pins of the chain verified at enrollment (the matcher's key, then
    /// its issuers'); empty for a loopback `http://` matcher.
    #[serde(default)]
    pub tls_pins: Vec<SpkiPin>,
    /// Kids of matcher keys the matcher revoked (from heartbeat replies): kept
    /// so that a revoked key pinned in the configuration stays refused after a
    /// restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<String>,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The credential is a secret: never in logs.
        f.debug_struct("Enrollment")
            .field("matcher_url", &self.matcher_url)
            .field("talker_id", &self.talker_id)
            .field("credential", &"<redacted>")
            .field("keys", &self.keys)
            .field("tls_pins", &self.tls_pins)
            .field("revoked", &self.revoked)
            .finish()
    }
}

/// Errors enrolling, or reading or writing `enrollment.json`.
#[derive(Debug, thiserror::Error)]
pub enum EnrollmentError {
    /// The configuration cannot be used for enrollment (exit code 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The talker's key could not be loaded or created.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The matcher could not be reached or did not answer in time.
    #[error("matcher {url}: {problem}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// What went wrong (transport level).
        problem: String,
    },
    /// The matcher answered with an error.
    #[error("matcher {url} refused: {status} {code}: {message}")]
    Refused {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The matcher's error code (`unauthorized`, `talker_exists`, ...).
        code: String,
        /// The matcher's message.
        message: String,
    },
    /// The matcher's answer does not follow the contract.
    #[error("matcher {url}: unusable reply: {problem}")]
    BadReply {
        /// The URL asked.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `enrollment.json` could not be read or written.
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// What a successful enrollment reports.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The talker id.
    pub talker_id: String,
    /// The matcher's base URL.
    pub matcher_url: String,
    /// The owner the matcher enrolled the talker for.
    pub owner: String,
    /// Where the enrollment was written.
    pub path: PathBuf,
}

/// The matcher's base URL from the configuration, checked: `https://`, or
/// `http://` to a loopback host only; no trailing slash.
pub fn matcher_base_url(config: &Config, config_path: &Path) -> Result<String, ConfigError> {
    let fail = |problem: &str| ConfigError {
        path: config_path.display().to_string(),
        field: "matcher_url".into(),
        problem: problem.into(),
    };
    let url = config
        .matcher_url
        .as_deref()
        .ok_or_else(|| fail("missing: enrollment needs the matcher's URL"))?;
    splitdial_tls::check_base_url(url).map_err(|e| fail(&e))
}

/// The HTTPS client for the matcher: certificates checked with `roots` and, once
/// enrolled, the stored `pins`; no proxy from the environment, no redirects (the
/// bearer must go to the configured matcher only), bounded time. Also returns
/// the handle that reads the pins of the chain it verified.
pub fn http_client(
    roots: &TrustRoots,
    pins: &[SpkiPin],
) -> Result<(reqwest::Client, VerifiedChain), String> {
    let trust = ServerTrust {
        roots: roots.clone(),
        pins: pins.to_vec(),
    };
    let (builder, chain) =
        splitdial_tls::verifying_client_builder(&trust).map_err(|e| e.to_string())?;
    let client = builder
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(REQUEST_TIMEOUT)
        .user_agent(format!(
            "splitdial-talker-agent/{}",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| e.to_string())?;
    Ok((client, chain))
}

/// The enrollment request this talker sends.
pub fn enroll_request(config: &Config, identity: &Identity) -> EnrollRequest {
    EnrollRequest {
        id: config.id.clone().unwrap_or_else(|| identity.derived_id()),
        public_key: identity.public_key_base64(),
        name: config.name.clone(),
        kind: config.kind,
        media: config.carried_media(),
        instance: Some(identity.instance_urn()),
        accounts: config
            .accounts
            .iter()
            .map(|a| EnrollAccount {
                aor: a.aor(),
                server: a.server.clone(),
            })
            .collect(),
    }
}

/// A matcher error answer as one error: its code and message when the body
/// follows the contract, else the status alone.
pub fn refusal(url: &str, status: u16, body: &[u8]) -> EnrollmentError {
    let (code, message) = match serde_json::from_slice::<splitdial_api::ErrorBody>(body) {
        Ok(e) => (one_line(&e.error.code), one_line(&e.error.message)),
        Err(_) => ("-".to_owned(), "no error body".to_owned()),
    };
    EnrollmentError::Refused {
        url: url.to_owned(),
        status,
        code,
        message,
    }
}

fn one_line(text: &str) -> String {
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text.chars().take(300).collect()
}

/// Enrolls the talker described by `config` with the enrollment `token`, and
/// writes `enrollment.json` on success.
pub async fn enroll(
    config: &Config,
    config_path: &Path,
    token: &str,
) -> Result<Enrolled, EnrollmentError> {
    let base = matcher_base_url(config, config_path)?;
    let identity = Identity::load_or_create(&config.state_dir)?;
    let request = enroll_request(config, &identity);
    let url = format!("{base}/v1/talkers");
    let unreachable = |problem: String| EnrollmentError::Unreachable {
        url: url.clone(),
        problem,
    };
    let bad = |problem: String| EnrollmentError::BadReply {
        url: url.clone(),
        problem,
    };
    // A re-enrollment to the same matcher keeps to the keys the first one verified.
    let pins = match Enrollment::load(&config.state_dir) {
        Ok(Some(old)) if old.matcher_url == base => old.tls_pins,
        _ => Vec::new(),
    };
    let (client, chain) = http_client(&config.matcher_roots(), &pins).map_err(unreachable)?;
    let response = client
        .post(&url)
        .bearer_auth(token.trim())
        .json(&request)
        .send()
        .await
        .map_err(|e| unreachable(error_chain(&e.without_url())))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| unreachable(error_chain(&e.without_url())))?;
    if status != 201 {
        return Err(refusal(&url, status, &body));
    }
    let reply: EnrollReply =
        serde_json::from_slice(&body).map_err(|e| bad(format!("not the 201 body: {e}")))?;
    if reply.talker_id != request.id {
        return Err(bad(format!(
            "enrolled id {:?}, not ours {:?}",
            reply.talker_id, request.id
        )));
    }
    if reply.credential.is_empty() {
        return Err(bad("empty credential".into()));
    }
    if reply.keys.is_empty() {
        return Err(bad("no matcher key".into()));
    }
    decode_keys(&reply.keys).map_err(bad)?;
    let enrollment = Enrollment {
        matcher_url: base.clone(),
        talker_id: reply.talker_id.clone(),
        credential: reply.credential,
        keys: reply.keys,
        tls_pins: if base.starts_with("https://") {
            chain.pins()
        } else {
            Vec::new()
        },
        revoked: Vec::new(),
    };
    let path = enrollment.save(&config.state_dir)?;
    Ok(Enrolled {
        talker_id: reply.talker_id,
        matcher_url: base,
        owner: reply.owner,
        path,
    })
}

/// A reqwest error with its causes, on one line (reqwest's own text omits them).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    // A refused certificate is the whole story: say what was wrong with it.
    if let Some(refusal) = splitdial_tls::certificate_refusal(error) {
        return one_line(&refusal);
    }
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    one_line(&text)
}

impl Enrollment {
    /// Reads `state_dir/enrollment.json`; `None` when the talker is not
    /// enrolled. The file must not be readable by group or others.
    pub fn load(state_dir: &Path) -> Result<Option<Self>, EnrollmentError> {
        let path = state_dir.join(ENROLLMENT_FILE);
        let fail = |problem: String| EnrollmentError::File {
            path: path.clone(),
            problem,
        };
        match secret_file::refuse_shared(&path) {
            Ok(()) => {}
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => return Ok(None),
            Err(e) => return Err(fail(e.problem())),
        }
        let text = std::fs::read(&path).map_err(|e| fail(e.to_string()))?;
        let enrollment: Self =
            serde_json::from_slice(&text).map_err(|e| fail(one_line(&e.to_string())))?;
        splitdial_tls::check_base_url(&enrollment.matcher_url)
            .map_err(|e| fail(format!("matcher_url {e}")))?;
        decode_keys(&enrollment.keys).map_err(fail)?;
        Ok(Some(enrollment))
    }

    /// Writes `state_dir/enrollment.json` atomically (a 0600 temporary file in
    /// the same directory, synced, then renamed over the old one).
    pub fn save(&self, state_dir: &Path) -> Result<PathBuf, EnrollmentError> {
        let path = state_dir.join(ENROLLMENT_FILE);
        let mut text = serde_json::to_vec_pretty(self).map_err(|e| EnrollmentError::File {
            path: path.clone(),
            problem: e.to_string(),
        })?;
        text.push(b'\n');
        secret_file::replace(&path, &text).map_err(|e| EnrollmentError::File {
            path: path.clone(),
            problem: e.problem(),
        })?;
        Ok(path)
    }

    /// The matcher keys, decoded (checked when the file was read).
    pub fn decoded_keys(&self) -> Vec<(String, VerifyingKey)> {
        decode_keys(&self.keys).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> Enrollment {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        Enrollment {
            matcher_url: "http://127.0.0.1:8740".into(),
            talker_id: "tv-1".into(),
            credential: "secret-credential".into(),
            keys: vec![MatcherKey {
                kid: splitdial_sip::call_token::key_id(&key),
                public_key: base64::engine::general_purpose::STANDARD.encode(key.to_bytes()),
            }],
            tls_pins: vec![SpkiPin::of_spki(b"a key")],
            revoked: vec!["m-00000000000000aa".into()],
        }
    }

    #[test]
    fn saves_private_atomically_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Enrollment::load(dir.path()).unwrap().is_none());
        let e = sample();
        let path = e.save(dir.path()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(Enrollment::load(dir.path()).unwrap().unwrap(), e);
        // An enrollment saved before revocations existed still loads.
        let mut text: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        text.as_object_mut().unwrap().remove("revoked");
        std::fs::write(&path, text.to_string()).unwrap();
        assert!(
            Enrollment::load(dir.path())
                .unwrap()
                .unwrap()
                .revoked
                .is_empty()
        );
        // Overwriting leaves no temporary file behind.
        e.save(dir.path()).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|d| d.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(ENROLLMENT_FILE)]);
        assert!(!format!("{e:?}").contains("secret-credential"));
    }

    #[test]
    fn refuses_a_shared_or_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample().save(dir.path()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Enrollment::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "{\"matcher_url\": 3}").unwrap();
        assert!(Enrollment::load(dir.path()).is_err());
        let mut bad = sample();
        bad.keys[0].public_key = "bm90IGEga2V5".into();
        bad.save(dir.path()).unwrap();
        let e = Enrollment::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&bad.keys[0].kid), "{e}");
        // A kid that is not its key's id.
        let mut renamed = sample();
        renamed.keys[0].kid = "m-0000000000000000".into();
        renamed.save(dir.path()).unwrap();
        let e = Enrollment::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("kid is not the key's id"), "{e}");
    }

    #[test]
    fn refusals_carry_code_and_message_on_one_line() {
        let e = refusal(
            "http://m/v1/talkers",
            401,
            br#"{"error":{"code":"unauthorized","message":"enrollment token\nused"}}"#,
        )
        .to_string();
        assert_eq!(
            e,
            "matcher http://m/v1/talkers refused: 401 unauthorized: enrollment token used"
        );
        let e = refusal("http://m/v1/talkers", 502, b"<html>").to_string();
        assert!(e.contains("502") && !e.contains('\n'), "{e}");
    }
}
