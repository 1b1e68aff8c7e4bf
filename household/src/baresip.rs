//! baresip 1.0 as a household's plain SIP phone: its configuration directory
//! (headless: a sine tone as the microphone, nothing as the speaker, answering
//! every call at once), what it prints once registered, and its `ctrl_tcp` command
//! socket (how a test makes the phone hold or resume a call).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// What baresip prints when its registration is accepted.
pub const REGISTERED: &str = "200 OK () [1 binding]";

/// The TCP port of a phone's `ctrl_tcp` command socket, on its SIP address's IP.
pub const CONTROL_PORT: u16 = 4444;

/// The `config` file: SIP on `listen` (UDP and TCP), a `tone_hz` sine at
/// 48 kHz stereo as the source (with other formats baresip 1.0 never
/// answers), `aubridge` as a silent player, G.711 only, and `ctrl_tcp` on
/// [`CONTROL_PORT`] of the same IP (a LAN host's address: only the simulated
/// LAN reaches it).
pub fn config(listen: SocketAddr, tone_hz: f64) -> String {
    format!(
        "poll_method\t\tepoll\nsip_listen\t\t{listen}\nnet_interface\t\t{ip}\n\
         audio_player\t\taubridge,nil\naudio_alert\t\taubridge,nil\naudio_source\t\tausine,{tone}\n\
         ausrc_srate\t\t48000\nausrc_channels\t\t2\nmodule_path\t\t/usr/lib/baresip/modules\n\
         module\t\t\tg711.so\nmodule\t\t\tausine.so\nmodule\t\t\taubridge.so\n\
         module_app\t\taccount.so\nmodule_app\t\tmenu.so\nmodule_app\t\tctrl_tcp.so\n\
         ctrl_tcp_listen\t\t{ip}:{CONTROL_PORT}\n",
        ip = listen.ip(),
        tone = tone_hz.round(),
    )
}

/// Sends one menu command (`hold`, `resume`, …) to the phone whose command socket is
/// `control` and returns its reply's JSON text. `ctrl_tcp` frames each message as a
/// netstring (`LEN:JSON,`); events may arrive before the reply and are skipped.
///
/// # Errors
/// When the socket cannot be reached, the phone answers nothing within `within`, or it
/// refuses the command.
pub fn command(control: SocketAddr, command: &str, within: Duration) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&control, within)?;
    stream.set_read_timeout(Some(within))?;
    let body =
        serde_json::json!({"command": command, "params": "", "token": "household"}).to_string();
    stream.write_all(format!("{}:{body},", body.len()).as_bytes())?;
    let mut pending = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(frame) = next_netstring(&mut pending) {
            let reply: serde_json::Value = serde_json::from_slice(&frame).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("ctrl_tcp: {e}"))
            })?;
            if reply["response"] == true {
                return if reply["ok"] == true {
                    Ok(reply.to_string())
                } else {
                    Err(std::io::Error::other(format!(
                        "baresip refused {command:?}: {reply}"
                    )))
                };
            }
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        pending.extend_from_slice(&chunk[..read]);
    }
}

/// Takes one whole netstring's payload off the front of `pending`, if one has arrived.
fn next_netstring(pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    let colon = pending.iter().position(|b| *b == b':')?;
    let len: usize = std::str::from_utf8(&pending[..colon]).ok()?.parse().ok()?;
    if pending.len() < colon + 1 + len + 1 {
        return None;
    }
    let frame: Vec<u8> = pending.drain(..colon + 1 + len + 1).collect();
    Some(frame[colon + 1..colon + 1 + len].to_vec())
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
    fn netstrings_are_taken_whole_and_one_at_a_time() {
        let mut pending = b"5:hello,3:ab".to_vec();
        assert_eq!(next_netstring(&mut pending), Some(b"hello".to_vec()));
        assert_eq!(next_netstring(&mut pending), None);
        pending.extend_from_slice(b"c,");
        assert_eq!(next_netstring(&mut pending), Some(b"abc".to_vec()));
        assert!(pending.is_empty());
    }

    #[test]
    fn files_name_the_listen_address_tone_and_proxy() {
        let listen = SocketAddr::from(([10, 77, 0, 7], 5070));
        let config = config(listen, 990.0);
        assert!(config.contains("sip_listen\t\t10.77.0.7:5070\n"));
        assert!(config.contains("net_interface\t\t10.77.0.7\n"));
        assert!(config.contains("ausine,990\n"));
        assert!(config.contains("ctrl_tcp_listen\t\t10.77.0.7:4444\n"));
        let proxy = SocketAddr::from(([10, 77, 0, 1], 5061));
        assert_eq!(
            accounts("dave", "work.example", "pw", proxy),
            "<sip:dave@work.example;transport=udp>;auth_pass=pw;\
             outbound=\"sip:10.77.0.1:5061;transport=udp\";regint=600;answermode=auto\n"
        );
    }
}
