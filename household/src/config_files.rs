//! The files the household's programs read: each `sip-server`'s users file
//! (docs/sip-server.md) and each talker agent's configuration (docs/config.md).
//! Pure text rendering, so it is tested without starting anything.

use crate::spec::{AnswerSpec, HouseholdSpec, TalkerSoftware, TalkerSpec};
use md5::Digest;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

/// SIP passwords by (domain, user), made fresh for each household.
#[derive(Debug, Clone, Default)]
pub struct Passwords(BTreeMap<(String, String), String>);

impl Passwords {
    /// A random password for every account of the spec.
    pub fn generate(spec: &HouseholdSpec) -> Self {
        let mut map = BTreeMap::new();
        for account in spec.talkers.iter().flat_map(|t| t.accounts.iter()) {
            map.entry((account.server.clone(), account.user.clone()))
                .or_insert_with(|| format!("{:032x}", rand::random::<u128>()));
        }
        Self(map)
    }

    /// The password of `user` on `domain` (empty when unknown: the server then
    /// refuses the account, which the test reports).
    pub fn of(&self, domain: &str, user: &str) -> &str {
        self.0
            .get(&(domain.to_owned(), user.to_owned()))
            .map_or("", String::as_str)
    }
}

/// A TOML basic string with everything escaped that needs it.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// The users file of the server for `domain`.
///
/// An account of a baresip phone gets only its MD5 H(A1): MD5 is the one digest
/// algorithm baresip 1.0 answers, and its libre refuses a whole 401 as soon as
/// one challenge in it is not MD5 ("Function not implemented"), whatever the
/// order. A realm with such a phone is therefore challenged with MD5 alone
/// (`challenge = "md5"`) and every account in it is marked `md5 = true`, the
/// agents' too; a realm without one is challenged with SHA-256 alone.
pub fn users_file(spec: &HouseholdSpec, domain: &str, passwords: &Passwords) -> String {
    let md5_only = |user: &str| {
        spec.talkers.iter().any(|t| {
            t.software == TalkerSoftware::Baresip
                && t.accounts
                    .iter()
                    .any(|a| a.server == domain && a.user == user)
        })
    };
    let users = spec.sip_users_on(domain);
    let md5_realm = users.iter().any(|user| md5_only(user));
    let header = if md5_realm {
        "challenge = \"md5\"\n"
    } else {
        ""
    };
    let accounts = users.iter().map(|user| {
        let password = passwords.of(domain, user);
        if md5_only(user) {
            let ha1 = md5::Md5::digest(format!("{user}:{domain}:{password}").as_bytes());
            format!("[users.{}]\nha1_md5 = \"{ha1:x}\"\n", quoted(user))
        } else {
            let mark = if md5_realm { "md5 = true\n" } else { "" };
            format!(
                "[users.{}]\npassword = {}\n{mark}",
                quoted(user),
                quoted(password)
            )
        }
    });
    std::iter::once(header.to_owned()).chain(accounts).collect()
}

/// Where a talker agent listens and whether it advertises itself.
#[derive(Debug, Clone)]
pub struct AgentPlacement {
    /// SIP listen address (its IP is also the media address).
    pub sip_listen: SocketAddr,
    /// Status API listen address (the port mDNS advertises).
    pub status_listen: SocketAddr,
    /// The interface to advertise on, or `None` for no mDNS at all.
    pub mdns_interface: Option<String>,
}

/// How an agent reaches the matcher: its URL and the CA its certificate chains to.
#[derive(Debug, Clone, Copy)]
pub struct MatcherAccess<'a> {
    /// The matcher's base URL.
    pub url: &'a str,
    /// The household CA's certificate; `None` for a plain-HTTP matcher (loopback only).
    pub ca: Option<&'a Path>,
}

/// The configuration file of one talker agent.
pub fn agent_config(
    spec: &HouseholdSpec,
    talker: &TalkerSpec,
    placement: &AgentPlacement,
    proxies: &BTreeMap<String, SocketAddr>,
    passwords: &Passwords,
    state_dir: &Path,
    matcher: &MatcherAccess<'_>,
) -> String {
    let media = if talker.video {
        r#"["audio", "video"]"#
    } else {
        r#"["audio"]"#
    };
    let mut text = format!(
        "name = {}\nkind = {}\nmedia = {media}\nid = {}\nstate_dir = {}\n",
        quoted(&talker.name),
        quoted(&talker.kind),
        quoted(&talker.id),
        quoted(&state_dir.display().to_string()),
    );
    // A plain SIP phone is not enrolled: it never talks to the matcher.
    if talker.owner.is_some() {
        text.push_str(&format!("matcher_url = {}\n", quoted(matcher.url)));
        if let Some(ca) = matcher.ca {
            text.push_str(&format!(
                "matcher_ca = {}\n",
                quoted(&ca.display().to_string())
            ));
        }
    }
    text.push_str(&format!(
        "\n[sip]\nlisten = {}\n",
        quoted(&placement.sip_listen.to_string())
    ));
    for account in &talker.accounts {
        let proxy = proxies
            .get(&account.server)
            .map(ToString::to_string)
            .unwrap_or_default();
        text.push_str(&format!(
            "\n[[accounts]]\nserver = {}\nproxy = {}\nuser = {}\npassword = {}\n",
            quoted(&account.server),
            quoted(&proxy),
            quoted(&account.user),
            quoted(passwords.of(&account.server, &account.user)),
        ));
    }
    text.push_str("\n[answer]\n");
    match &talker.answer {
        AnswerSpec::Manual => text.push_str("policy = \"manual\"\n"),
        AnswerSpec::Reject => text.push_str("policy = \"reject\"\n"),
        AnswerSpec::AutoFromUsers(users) => {
            let allow: Vec<String> = users
                .iter()
                .flat_map(|u| spec.accounts_of_user(u))
                .map(|aor| quoted(&aor))
                .collect();
            text.push_str(&format!(
                "policy = \"auto\"\nafter_seconds = 0\nallow = [{}]\n",
                allow.join(", ")
            ));
        }
    }
    let sound = if talker.beeps { "beeps" } else { "tone" };
    text.push_str(&format!(
        "\n[audio]\nsource = \"{sound}:{}\"\nsink = \"analyze\"\njitter_ms = 20\n",
        talker.tone_hz
    ));
    if talker.video {
        text.push_str("\n[video]\nsource = \"pattern\"\nsink = \"analyze\"\n");
    }
    match &placement.mdns_interface {
        Some(interface) => text.push_str(&format!(
            "\n[discovery]\nenabled = true\ninterfaces = [{}]\n",
            quoted(interface)
        )),
        None => text.push_str("\n[discovery]\nenabled = false\n"),
    }
    text.push_str(&format!(
        "\n[status]\nlisten = {}\n",
        quoted(&placement.status_listen.to_string())
    ));
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn users_file_lists_each_account_of_the_domain_once() {
        let spec = HouseholdSpec::demo();
        let passwords = Passwords::generate(&spec);
        let text = users_file(&spec, "work.example", &passwords);
        assert_eq!(text.matches("[users.").count(), 3, "{text}");
        assert!(text.contains("[users.\"dave\"]"), "{text}");
        let pw = passwords.of("work.example", "dave");
        assert_eq!(pw.len(), 32);
        assert!(text.contains(pw));
    }

    #[test]
    fn a_baresip_account_gets_only_its_md5_ha1() {
        let mut spec = HouseholdSpec::demo();
        spec.talker_mut("dave-phone").unwrap().software = TalkerSoftware::Baresip;
        let passwords = Passwords::generate(&spec);
        let text = users_file(&spec, "work.example", &passwords);
        let pw = passwords.of("work.example", "dave");
        let ha1 = md5::Md5::digest(format!("dave:work.example:{pw}").as_bytes());
        assert!(
            text.contains(&format!("[users.\"dave\"]\nha1_md5 = \"{ha1:x}\"\n")),
            "{text}"
        );
        assert!(!text.contains(pw), "{text}");
        // libre refuses any non-MD5 challenge: the realm is MD5 alone, and
        // everyone else keeps a password, marked for MD5 (the server refuses an
        // MD5-only realm with an unmarked account; tests/tests/interop.rs runs it).
        assert!(text.starts_with("challenge = \"md5\"\n"), "{text}");
        let alice_pc = passwords.of("work.example", "alice-pc");
        assert!(
            text.contains(&format!(
                "[users.\"alice-pc\"]\npassword = {}\nmd5 = true\n",
                quoted(alice_pc)
            )),
            "{text}"
        );
    }

    #[test]
    fn agent_config_carries_accounts_policy_media_and_discovery() {
        let spec = HouseholdSpec::demo();
        let passwords = Passwords::generate(&spec);
        let proxies: BTreeMap<String, SocketAddr> = [
            (
                "family.example".to_owned(),
                "10.77.0.1:5060".parse().unwrap(),
            ),
            ("work.example".to_owned(), "10.77.0.1:5061".parse().unwrap()),
        ]
        .into();
        let placement = AgentPlacement {
            sip_listen: ([10, 77, 0, 3], 5070).into(),
            status_listen: ([10, 77, 0, 3], 8420).into(),
            mdns_interface: Some("eth0".into()),
        };
        let bob = spec.talker("bob-phone").unwrap();
        let text = agent_config(
            &spec,
            bob,
            &placement,
            &proxies,
            &passwords,
            Path::new("/tmp/x"),
            &MatcherAccess {
                url: "https://10.77.0.1:8740",
                ca: Some(Path::new("/tmp/pki/ca.crt")),
            },
        );
        let parsed: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            parsed["matcher_url"].as_str(),
            Some("https://10.77.0.1:8740")
        );
        assert_eq!(parsed["matcher_ca"].as_str(), Some("/tmp/pki/ca.crt"));
        assert_eq!(parsed["answer"]["policy"].as_str(), Some("auto"));
        let allow = parsed["answer"]["allow"].as_array().map(Vec::len);
        assert_eq!(allow, Some(4), "{text}");
        assert_eq!(
            parsed["accounts"][0]["proxy"].as_str(),
            Some("10.77.0.1:5060")
        );
        assert_eq!(parsed["discovery"]["interfaces"][0].as_str(), Some("eth0"));
        assert!(parsed.get("video").is_none());

        let dave = spec.talker("dave-phone").unwrap();
        let text = agent_config(
            &spec,
            dave,
            &placement,
            &proxies,
            &passwords,
            Path::new("/tmp/y"),
            &MatcherAccess {
                url: "https://10.77.0.1:8740",
                ca: Some(Path::new("/tmp/pki/ca.crt")),
            },
        );
        assert!(
            !text.contains("matcher_url") && !text.contains("matcher_ca"),
            "{text}"
        );
        let tv = spec.talker("tv").unwrap();
        let text = agent_config(
            &spec,
            tv,
            &placement,
            &proxies,
            &passwords,
            Path::new("/tmp/z"),
            &MatcherAccess {
                url: "https://10.77.0.1:8740",
                ca: Some(Path::new("/tmp/pki/ca.crt")),
            },
        );
        assert!(text.contains("source = \"pattern\""), "{text}");
        assert!(text.contains("source = \"tone:440\""), "{text}");

        // A plain-HTTP matcher on loopback: its URL and no CA at all.
        let text = agent_config(
            &spec,
            tv,
            &placement,
            &proxies,
            &passwords,
            Path::new("/tmp/z"),
            &MatcherAccess {
                url: "http://127.0.0.1:8740",
                ca: None,
            },
        );
        let parsed: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            parsed["matcher_url"].as_str(),
            Some("http://127.0.0.1:8740")
        );
        assert!(parsed.get("matcher_ca").is_none(), "{text}");
    }
}
