//! Kamailio as a household's SIP server: its configuration, written from the
//! template `kamailio.cfg.in` (its command line is [`testbed::kamailio`]'s).

use crate::config_files::Passwords;
use crate::spec::HouseholdSpec;
use std::net::{IpAddr, SocketAddr};

const TEMPLATE: &str = include_str!("kamailio.cfg.in");

/// The message Kamailio logs once a worker is up (the template's
/// `event_route[core:worker-one-init]`).
pub const READY: &str = "kamailio ready";

/// The configuration of the Kamailio serving `domain` on `listen`, trusting
/// the matcher's call controller at `controller`, relaying only to addresses
/// matching `relay_regex`, with the accounts of `spec` on that domain.
pub fn config(
    spec: &HouseholdSpec,
    domain: &str,
    listen: SocketAddr,
    controller: IpAddr,
    relay_regex: &str,
    passwords: &Passwords,
) -> String {
    let users: String = spec
        .sip_users_on(domain)
        .iter()
        .map(|user| {
            format!(
                "\t$sht(users=>{user}) = \"{}\";\n",
                passwords.of(domain, user)
            )
        })
        .collect();
    TEMPLATE
        .replace("@DOMAIN@", domain)
        .replace("@LISTEN_IP@", &listen.ip().to_string())
        .replace("@SIP_PORT@", &listen.port().to_string())
        .replace("@TRUSTED_IP@", &controller.to_string())
        .replace("@RELAY_REGEX@", relay_regex)
        .replace("@USERS@", &users)
}

/// A regular expression matching the IPv4 addresses of `ip`'s /24, for the
/// template's relay check (Kamailio's `=~`).
pub fn relay_regex_for(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("^{a}\\.{b}\\.{c}\\.")
        }
        IpAddr::V6(_) => "^127\\.".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_filled_in_completely() {
        let spec = HouseholdSpec::demo();
        let passwords = Passwords::generate(&spec);
        let text = config(
            &spec,
            "family.example",
            "10.77.0.1:5060".parse().unwrap(),
            "10.77.0.1".parse().unwrap(),
            &relay_regex_for("10.77.0.1".parse().unwrap()),
            &passwords,
        );
        for token in [
            "@DOMAIN@",
            "@LISTEN_IP@",
            "@SIP_PORT@",
            "@TRUSTED_IP@",
            "@RELAY_REGEX@",
            "@USERS@",
        ] {
            assert!(!text.contains(token), "{token} left in");
        }
        assert!(text.contains("listen=tcp:10.77.0.1:5060"));
        assert!(text.contains("alias=\"family.example\""));
        assert!(text.contains(r#"$si == "10.77.0.1""#));
        assert!(text.contains(r#"=~"^10\.77\.0\.""#));
        assert!(text.contains("<sip:$au@family.example>"));
        let bob = format!(
            "$sht(users=>bob) = \"{}\";",
            passwords.of("family.example", "bob")
        );
        assert!(text.contains(&bob), "{text}");
        assert!(
            !text.contains("users=>dave"),
            "dave is on work.example only"
        );
    }
}
