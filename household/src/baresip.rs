//! baresip 1.0 as a household's plain SIP phone: its configuration directory
//! (headless: a sine tone as the microphone, nothing as the speaker, answering
//! every call at once) and what it prints once registered.

use std::net::SocketAddr;

/// What baresip prints when its registration is accepted.
pub const REGISTERED: &str = "200 OK () [1 binding]";

/// The `config` file: SIP on `listen` (UDP and TCP), a `tone_hz` sine at
/// 48 kHz stereo as the source (with other formats baresip 1.0 never
/// answers), `aubridge` as a silent player, G.711 only.
pub fn config(listen: SocketAddr, tone_hz: f64) -> String {
    format!(
        "poll_method\t\tepoll\nsip_listen\t\t{listen}\nnet_interface\t\t{ip}\n\
         audio_player\t\taubridge,nil\naudio_alert\t\taubridge,nil\naudio_source\t\tausine,{tone}\n\
         ausrc_srate\t\t48000\nausrc_channels\t\t2\nmodule_path\t\t/usr/lib/baresip/modules\n\
         module\t\t\tg711.so\nmodule\t\t\tausine.so\nmodule\t\t\taubridge.so\n\
         module_app\t\taccount.so\nmodule_app\t\tmenu.so\n",
        ip = listen.ip(),
        tone = tone_hz.round(),
    )
}

/// The `accounts` file: `user@domain` with its password, registered through
/// `proxy` by address (baresip would otherwise resolve the domain), answering
/// every call.
pub fn accounts(user: &str, domain: &str, password: &str, proxy: SocketAddr) -> String {
    format!(
        "<sip:{user}@{domain};transport=udp>;auth_pass={password};\
         outbound=\"sip:{proxy};transport=udp\";regint=600;answermode=auto\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_name_the_listen_address_tone_and_proxy() {
        let listen = SocketAddr::from(([10, 77, 0, 7], 5070));
        let config = config(listen, 990.0);
        assert!(config.contains("sip_listen\t\t10.77.0.7:5070\n"));
        assert!(config.contains("net_interface\t\t10.77.0.7\n"));
        assert!(config.contains("ausine,990\n"));
        let proxy = SocketAddr::from(([10, 77, 0, 1], 5061));
        assert_eq!(
            accounts("dave", "work.example", "pw", proxy),
            "<sip:dave@work.example;transport=udp>;auth_pass=pw;\
             outbound=\"sip:10.77.0.1:5061;transport=udp\";regint=600;answermode=auto\n"
        );
    }
}
