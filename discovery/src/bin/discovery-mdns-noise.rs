//! Test tool: sends hostile mDNS traffic (crafted talker records, malformed DNS
//! messages, mutated and random packets) to the mDNS groups from a plain UDP
//! socket, then exits. Run it only inside a simulated LAN namespace.
//!
//! Crafted talkers (instance names starting with `Noise`), for the tests:
//! `Noise valid` and `Noise repaired` must be discovered (the second with repairs);
//! `Noise txtvers2`, `Noise badid`, `Noise binstate`, `Noise oversize`,
//! `Noise notxtvers` and `Noise port0` must never be.

use anyhow::Context;
use clap::Parser;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

#[path = "../../tools/netns_guard.rs"]
mod netns_guard;

const SERVICE: &str = "_splitdial._tcp.local";
const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);

/// Send hostile mDNS packets on one interface.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// This host's IPv4 address (the packets leave from it, port 5353).
    #[arg(long)]
    ip: Ipv4Addr,
    /// Interface name, for IPv6 multicast.
    #[arg(long, default_value = "eth0")]
    interface: String,
    /// Random and mutated packets to send.
    #[arg(long, default_value_t = 3000)]
    count: u32,
    /// Seed of the pseudo-random generator (runs are reproducible).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run even in the machine's main network namespace.
    #[arg(long)]
    allow_host_netns: bool,
}

/// xorshift64*: small, seeded, good enough for noise.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next().to_le_bytes()[3]).collect()
    }
}

/// A DNS message under construction (names uncompressed unless written raw).
#[derive(Default)]
struct Message {
    buf: Vec<u8>,
}

impl Message {
    fn response(answers: u16) -> Self {
        let mut m = Self::default();
        // id 0, flags QR|AA, 0 questions, `answers` answers.
        m.buf.extend_from_slice(&[0, 0, 0x84, 0, 0, 0]);
        m.buf.extend_from_slice(&answers.to_be_bytes());
        m.buf.extend_from_slice(&[0, 0, 0, 0]);
        m
    }

    fn name(&mut self, name: &str) {
        self.buf.extend_from_slice(&encode_name(name));
    }

    fn record(&mut self, name: &str, rtype: u16, class: u16, ttl: u32, rdata: &[u8]) {
        self.name(name);
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&class.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let len = u16::try_from(rdata.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(rdata);
    }
}

/// Labels split on `.`; an instance label may hold spaces.
fn encode_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(u8::try_from(label.len()).unwrap_or(63));
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

const PTR: u16 = 12;
const TXT: u16 = 16;
const SRV: u16 = 33;
const A: u16 = 1;
const IN: u16 = 1;
const IN_FLUSH: u16 = 0x8001;

fn txt_rdata(strings: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in strings {
        out.push(u8::try_from(s.len()).unwrap_or(255));
        out.extend_from_slice(&s[..s.len().min(255)]);
    }
    out
}

/// A complete talker announcement: PTR, SRV, TXT and A.
fn talker_packet(instance: &str, port: u16, txt: &[u8], ip: Ipv4Addr) -> Vec<u8> {
    let full = format!("{instance}.{SERVICE}");
    let host = format!("{}.local", instance.replace(' ', "-").to_lowercase());
    let mut m = Message::response(4);
    m.record(SERVICE, PTR, IN, 4500, &encode_name(&full));
    let mut srv = vec![0, 0, 0, 0];
    srv.extend_from_slice(&port.to_be_bytes());
    srv.extend_from_slice(&encode_name(&host));
    m.record(&full, SRV, IN_FLUSH, 120, &srv);
    m.record(&full, TXT, IN_FLUSH, 4500, txt);
    m.record(&host, A, IN_FLUSH, 120, &ip.octets());
    m.buf
}

fn crafted_talkers(ip: Ipv4Addr) -> Vec<Vec<u8>> {
    let good: [&[u8]; 5] = [
        b"txtvers=1",
        b"id=noise-valid",
        b"kind=pc",
        b"media=audio",
        b"state=idle",
    ];
    let pad = [b'x'; 220];
    let mut pad1 = b"pad1=".to_vec();
    pad1.extend_from_slice(&pad);
    let mut pad2 = b"pad2=".to_vec();
    pad2.extend_from_slice(&pad);
    vec![
        talker_packet("Noise valid", 8480, &txt_rdata(&good), ip),
        talker_packet(
            "Noise repaired",
            8480,
            &txt_rdata(&[
                b"=sneaky",
                b"id=noise-repaired",
                b"txtvers=1",
                b"ID=someone-else",
                b"kind=fridge",
                b"media=audio,video",
                b"state=busy",
                b"servers=ok.example,bad domain",
                b"future=1",
            ]),
            ip,
        ),
        talker_packet(
            "Noise txtvers2",
            8480,
            &txt_rdata(&[
                b"txtvers=2",
                b"id=noise-v2",
                b"kind=pc",
                b"media=audio",
                b"state=idle",
            ]),
            ip,
        ),
        talker_packet(
            "Noise badid",
            8480,
            &txt_rdata(&[
                b"txtvers=1",
                b"id=bad id!",
                b"kind=pc",
                b"media=audio",
                b"state=idle",
            ]),
            ip,
        ),
        talker_packet(
            "Noise binstate",
            8480,
            &txt_rdata(&[
                b"txtvers=1",
                b"id=noise-bin",
                b"kind=pc",
                b"media=audio",
                b"state=\xff\xfe",
            ]),
            ip,
        ),
        talker_packet(
            "Noise oversize",
            8480,
            &txt_rdata(&[
                b"txtvers=1",
                b"id=noise-big",
                b"kind=pc",
                b"media=audio",
                b"state=idle",
                &pad1,
                &pad2,
            ]),
            ip,
        ),
        talker_packet(
            "Noise notxtvers",
            8480,
            &txt_rdata(&[b"id=noise-nov", b"kind=pc", b"media=audio", b"state=idle"]),
            ip,
        ),
        talker_packet("Noise port0", 0, &txt_rdata(&good[..]), ip),
    ]
}

/// Malformed DNS messages of known kinds.
fn malformed(ip: Ipv4Addr) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    out.push(Vec::new());
    out.push(vec![0x00, 0x00, 0x84]);
    // Header claiming 65535 answers, none present.
    out.push(vec![0, 0, 0x84, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]);
    // A name that is a compression pointer to itself.
    let mut m = Message::response(1);
    m.buf
        .extend_from_slice(&[0xc0, 12, 0, 12, 0, 1, 0, 0, 0, 120, 0, 2, 0xc0, 12]);
    out.push(m.buf);
    // A pointer past the end.
    let mut m = Message::response(1);
    m.buf
        .extend_from_slice(&[0xc0, 0xff, 0, 12, 0, 1, 0, 0, 0, 120, 0, 0]);
    out.push(m.buf);
    // A name longer than 255 bytes.
    let mut m = Message::response(1);
    for _ in 0..6 {
        m.buf.push(63);
        m.buf.extend_from_slice(&[b'a'; 63]);
    }
    m.buf.push(0);
    m.buf.extend_from_slice(&[0, 12, 0, 1, 0, 0, 0, 120, 0, 0]);
    out.push(m.buf);
    // rdlength past the end of the packet.
    let mut m = Message::response(1);
    m.name(&format!("Noise trunc.{SERVICE}"));
    m.buf
        .extend_from_slice(&[0, 16, 0x80, 1, 0, 0, 0x11, 0x94, 0x10, 0x00, 5, b'a']);
    out.push(m.buf);
    // An A record of 3 bytes and an SRV record of 2.
    let mut m = Message::response(2);
    m.record("noise-short.local", A, IN_FLUSH, 120, &[10, 77, 0]);
    m.record(
        &format!("Noise short.{SERVICE}"),
        SRV,
        IN_FLUSH,
        120,
        &[0, 1],
    );
    out.push(m.buf);
    // TXT with a zero-length string in the middle and a length byte past the end.
    let mut bad_txt = txt_rdata(&[b"txtvers=1", b"", b"id=noise-zero"]);
    bad_txt.extend_from_slice(&[200, b'x']);
    out.push(talker_packet("Noise zerolen", 8480, &bad_txt, ip));
    // A query with a strange type and class, and one with thousands of questions claimed.
    let mut q = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(&encode_name(SERVICE));
    q.extend_from_slice(&[0xff, 0xfe, 0x7f, 0xff]);
    out.push(q);
    out.push(vec![0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0]);
    // A goodbye for an instance nobody announced.
    let mut m = Message::response(1);
    m.record(
        SERVICE,
        PTR,
        IN,
        0,
        &encode_name(&format!("Nobody.{SERVICE}")),
    );
    out.push(m.buf);
    out
}

fn socket(args: &Args) -> anyhow::Result<(Socket, Option<Socket>, u32)> {
    let v4 = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).context("socket")?;
    v4.set_reuse_address(true)?;
    v4.set_reuse_port(true)?;
    v4.bind(&SocketAddr::from((args.ip, 5353)).into())
        .context("bind IPv4 :5353")?;
    v4.set_multicast_if_v4(&args.ip)?;
    v4.set_multicast_ttl_v4(255)?;
    let index = std::fs::read_to_string(format!("/sys/class/net/{}/ifindex", args.interface))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let v6 = (|| -> std::io::Result<Socket> {
        let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_only_v6(true)?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 5353)).into())?;
        s.set_multicast_if_v6(index)?;
        Ok(s)
    })()
    .map_err(|e| eprintln!("no IPv6 noise: {e}"))
    .ok();
    Ok((v4, v6, index))
}

fn main() -> anyhow::Result<()> {
    splitdial_tls::install_provider();
    let args = Args::parse();
    netns_guard::refuse_host_netns(args.allow_host_netns)?;
    let (v4, v6, index) = socket(&args)?;
    let to_v4 = SocketAddr::V4(SocketAddrV4::new(GROUP_V4, 5353)).into();
    let to_v6 = SocketAddr::V6(SocketAddrV6::new(GROUP_V6, 5353, 0, index)).into();
    let send = |packet: &[u8]| {
        let _ = v4.send_to(packet, &to_v4);
        if let Some(v6) = &v6 {
            let _ = v6.send_to(packet, &to_v6);
        }
    };
    let mut rng = Noise(args.seed.max(1));
    let talkers = crafted_talkers(args.ip);
    let broken = malformed(args.ip);
    let mutant_base = talker_packet(
        "Noise mutant",
        8480,
        &txt_rdata(&[
            b"txtvers=1",
            b"id=noise-mutant",
            b"kind=pc",
            b"media=audio",
            b"state=idle",
        ]),
        args.ip,
    );
    let mut sent = 0u32;
    for p in talkers.iter().chain(&broken) {
        send(p);
        sent += 1;
    }
    for i in 0..args.count {
        let packet = match i % 3 {
            0 => {
                let n = rng.below(1500);
                rng.bytes(n)
            }
            1 => {
                let mut p = mutant_base.clone();
                for _ in 0..=rng.below(8) {
                    let at = rng.below(p.len());
                    p[at] = rng.bytes(1)[0];
                }
                p
            }
            _ => {
                let p = &broken[rng.below(broken.len())];
                let mut p = p.clone();
                p.truncate(rng.below(p.len() + 1));
                p
            }
        };
        send(&packet);
        sent += 1;
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // The crafted talkers once more, after the storm, so the browser's answer to
    // them does not depend on which noise its socket buffer dropped.
    std::thread::sleep(Duration::from_millis(200));
    for p in &talkers {
        send(p);
        sent += 1;
    }
    println!("sent {sent} packets");
    Ok(())
}
