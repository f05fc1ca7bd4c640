//! What stands between Exchange Online and the receiving servers: a firewall with an
//! allow-list of source ranges (an outdated list refuses part of EOP's pool: FM-37), source
//! NAT (the server sees the firewall's address), SMTP inspection that masks STARTTLS in the EHLO
//! reply as Cisco's ESMTP inspection does (`250-XXXXXXXA`) and the command itself
//! (`XXXXXXXX`, answered `500 5.3.3 Unrecognized command`), and a TLS-terminating device that
//! answers STARTTLS itself with its own certificate (FM-38) before relaying plaintext to
//! Exchange.
//!
//! The pieces are sans-IO: [`Perimeter::admit`] decides a connection, [`SmtpInspection`]
//! rewrites bytes in each direction, [`DeviceFront`] is the device's SMTP front half (bytes in,
//! [`DeviceAction`]s out). [`crate::site`] wires them between a client stream and the
//! chosen server's session.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hybridlab_model::reply::Reply;
use hybridlab_model::x509::CertFacts;
use serde::{Deserialize, Serialize};

use super::connector::IpRange;
use hybridlab_onprem::certstore::CertStore;

/// How the firewall turns away a source that is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// TCP reset (`Socket error code 10061` at the sender: 4.4.316).
    #[default]
    Reset,
    /// Silently dropped: the connection is held open without a byte until the sender gives up
    /// (`10060`: 4.4.315); the lab closes it after [`Perimeter::drop_hold`].
    Drop,
}

/// A TLS-terminating device: its certificate comes from its own store.
#[derive(Debug, Clone)]
pub struct TlsDevice {
    /// The device's certificate store (its certificate and chain).
    pub store: Arc<CertStore>,
    /// The entry of `store` it presents.
    pub certificate: String,
    /// The name in its banner and EHLO reply.
    pub hostname: String,
    /// The address Exchange sees the relayed session come from.
    pub inside_address: IpAddr,
}

/// The perimeter's settings.
#[derive(Debug, Clone, Default)]
pub struct Perimeter {
    /// Source ranges let in; empty lets everyone in.
    pub allow: Vec<IpRange>,
    /// What happens to other sources.
    pub refusal: Refusal,
    /// How long a dropped connection is held before the lab closes it.
    pub drop_hold: std::time::Duration,
    /// Source NAT: the address the servers see instead of the client's.
    pub nat: Option<IpAddr>,
    /// SMTP inspection masking STARTTLS.
    pub smtp_inspection: bool,
    /// A device that terminates TLS in front of the servers.
    pub tls_device: Option<TlsDevice>,
}

/// The perimeter's decision about a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Admission {
    /// Let through; the servers see `seen_as`.
    Accept {
        /// The peer address the server sees (after NAT).
        seen_as: SocketAddr,
    },
    /// Turned away.
    Refuse {
        /// How.
        refusal: Refusal,
    },
}

impl Perimeter {
    /// No perimeter: everyone in, nothing changed.
    pub fn open() -> Self {
        Self::default()
    }

    /// Decides a connection from `peer`.
    pub fn admit(&self, peer: SocketAddr) -> Admission {
        if !self.allow.is_empty() && !self.allow.iter().any(|r| r.contains(peer.ip())) {
            return Admission::Refuse {
                refusal: self.refusal,
            };
        }
        let seen_as = match self.nat {
            Some(ip) => SocketAddr::new(ip, peer.port()),
            None => peer,
        };
        Admission::Accept { seen_as }
    }
}

/// Cisco-style ESMTP inspection: line by line, masks `STARTTLS` in the server's EHLO reply
/// (`250-XXXXXXXA`) and the client's `STARTTLS` command (`XXXXXXXX`). Partial lines are held
/// until their end arrives.
#[derive(Debug, Default)]
pub struct SmtpInspection {
    from_server: Vec<u8>,
    from_client: Vec<u8>,
    /// How many STARTTLS keywords and commands it masked.
    pub masked: u32,
}

impl SmtpInspection {
    /// Bytes from the server on their way to the client.
    pub fn server_to_client(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut masked = 0;
        let out = filter_lines(&mut self.from_server, bytes, |line| {
            let body = line.strip_suffix(b"\r\n").unwrap_or(line);
            if body.len() == 12
                && body.starts_with(b"250")
                && matches!(body[3], b'-' | b' ')
                && body[4..].eq_ignore_ascii_case(b"STARTTLS")
            {
                masked += 1;
                let mut m = body[..4].to_vec();
                m.extend_from_slice(b"XXXXXXXA\r\n");
                return Some(m);
            }
            None
        });
        self.masked += masked;
        out
    }

    /// Bytes from the client on their way to the server.
    pub fn client_to_server(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut masked = 0;
        let out = filter_lines(&mut self.from_client, bytes, |line| {
            let body = line.strip_suffix(b"\r\n").unwrap_or(line);
            if body.eq_ignore_ascii_case(b"STARTTLS") {
                masked += 1;
                return Some(b"XXXXXXXX\r\n".to_vec());
            }
            None
        });
        self.masked += masked;
        out
    }
}

/// Splits `bytes` (after what `held` keeps) into lines, rewrites each with `f` (`None` keeps
/// it), holds a trailing partial line.
fn filter_lines(
    held: &mut Vec<u8>,
    bytes: &[u8],
    mut f: impl FnMut(&[u8]) -> Option<Vec<u8>>,
) -> Vec<u8> {
    held.extend_from_slice(bytes);
    let mut out = Vec::with_capacity(held.len());
    let mut start = 0;
    while let Some(p) = held[start..].iter().position(|&b| b == b'\n') {
        let line = &held[start..start + p + 1];
        match f(line) {
            Some(r) => out.extend_from_slice(&r),
            None => out.extend_from_slice(line),
        }
        start += p + 1;
    }
    held.drain(..start);
    // A long line without an end is passed on (the device does not buffer without bound).
    if held.len() > 4096 {
        out.append(held);
    }
    out
}

/// What the device's front half asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceAction {
    /// Write to the client.
    Write(Vec<u8>),
    /// Run the TLS handshake with the device's certificate.
    StartTls,
    /// TLS is up: connect to a server and relay plaintext both ways (dropping the server's
    /// banner); these bytes already came from the client and go to the server first.
    Attach(Vec<u8>),
    /// Close the client connection.
    Close,
}

/// The device's SMTP front half before TLS: its own banner and EHLO reply with STARTTLS,
/// STARTTLS itself, QUIT; anything else is refused (`530 5.7.0 Must issue a STARTTLS command
/// first`: the lab's device relays only encrypted sessions \[U\]).
#[derive(Debug)]
pub struct DeviceFront {
    hostname: String,
    line: Vec<u8>,
    tls: bool,
    closed: bool,
    actions: std::collections::VecDeque<DeviceAction>,
}

impl DeviceFront {
    /// A front half greeting as `hostname`, for a client at `peer`.
    pub fn new(hostname: &str) -> Self {
        let mut s = Self {
            hostname: hostname.into(),
            line: Vec::new(),
            tls: false,
            closed: false,
            actions: Default::default(),
        };
        s.write(Reply::new(220, format!("{hostname} ESMTP ready")));
        s
    }

    /// The next action.
    pub fn poll_action(&mut self) -> Option<DeviceAction> {
        self.actions.pop_front()
    }

    /// Whether the front half is done (closed, or attached after TLS).
    pub fn is_done(&self) -> bool {
        self.closed
    }

    fn write(&mut self, r: Reply) {
        self.actions.push_back(DeviceAction::Write(r.to_wire()));
    }

    /// Bytes from the client (plaintext before STARTTLS, decrypted after).
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if self.closed {
            return;
        }
        if self.tls {
            self.closed = true;
            let mut all = std::mem::take(&mut self.line);
            all.extend_from_slice(bytes);
            self.actions.push_back(DeviceAction::Attach(all));
            return;
        }
        self.line.extend_from_slice(bytes);
        while let Some(p) = self.line.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.line.drain(..=p).collect();
            let cmd = String::from_utf8_lossy(&raw).trim().to_ascii_uppercase();
            let verb = cmd.split(' ').next().unwrap_or("");
            match verb {
                "EHLO" => self.write(Reply::multi(
                    250,
                    vec![
                        format!("{} Hello", self.hostname),
                        "SIZE 37748736".into(),
                        "PIPELINING".into(),
                        "8BITMIME".into(),
                        "STARTTLS".into(),
                    ],
                )),
                "HELO" => self.write(Reply::new(250, format!("{} Hello", self.hostname))),
                "NOOP" => self.write(Reply::new(250, "2.0.0 OK")),
                "STARTTLS" => {
                    self.write(Reply::new(220, "2.0.0 Ready to start TLS"));
                    self.actions.push_back(DeviceAction::StartTls);
                    self.tls = true;
                    self.line.clear();
                    return;
                }
                "QUIT" => {
                    self.write(Reply::new(221, "2.0.0 Bye"));
                    self.actions.push_back(DeviceAction::Close);
                    self.closed = true;
                    return;
                }
                _ => self.write(Reply::new(530, "5.7.0 Must issue a STARTTLS command first")),
            }
        }
    }

    /// The handshake completed: the next client bytes attach the session to a server.
    pub fn handle_tls_established(&mut self) {
        self.tls = true;
    }

    /// The client went away.
    pub fn handle_eof(&mut self) {
        if !self.closed {
            self.closed = true;
            self.actions.push_back(DeviceAction::Close);
        }
    }
}

/// A session at the TLS device, as the site records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSession {
    /// The client.
    pub peer: SocketAddr,
    /// The certificate the device presented.
    pub certificate: CertFacts,
    /// Whether the handshake completed (EXO aborts it when it distrusts the certificate).
    pub handshake_completed: bool,
    /// The handshake error, when it failed.
    pub error: Option<String>,
    /// Whether the session reached a server.
    pub relayed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspection_masks_starttls_both_ways() {
        let mut i = SmtpInspection::default();
        let a =
            i.server_to_client(b"250-mail.contoso.com Hello [1.2.3.4]\r\n250-SIZE 1\r\n250-STAR");
        let b = i.server_to_client(b"TTLS\r\n250 XRDST\r\n");
        let all = [a, b].concat();
        assert_eq!(
            String::from_utf8(all).unwrap(),
            "250-mail.contoso.com Hello [1.2.3.4]\r\n250-SIZE 1\r\n250-XXXXXXXA\r\n250 XRDST\r\n"
        );
        assert_eq!(
            i.client_to_server(b"starttls\r\nQUIT\r\n"),
            b"XXXXXXXX\r\nQUIT\r\n"
        );
        assert_eq!(i.masked, 2);
    }

    #[test]
    fn admission_and_nat() {
        let p = Perimeter {
            allow: vec!["40.92.0.0/15".parse().unwrap()],
            nat: Some("10.0.0.1".parse().unwrap()),
            ..Perimeter::default()
        };
        assert_eq!(
            p.admit("52.100.1.1:4000".parse().unwrap()),
            Admission::Refuse {
                refusal: Refusal::Reset
            }
        );
        assert_eq!(
            p.admit("40.92.3.4:4000".parse().unwrap()),
            Admission::Accept {
                seen_as: "10.0.0.1:4000".parse().unwrap()
            }
        );
    }

    #[test]
    fn device_front_answers_until_tls() {
        let mut d = DeviceFront::new("fw.contoso.com");
        assert!(matches!(d.poll_action(), Some(DeviceAction::Write(_))));
        d.handle_input(b"EHLO eop\r\nMAIL FROM:<a@b>\r\nSTARTTLS\r\n");
        let acts: Vec<_> = std::iter::from_fn(|| d.poll_action()).collect();
        assert!(matches!(acts.last(), Some(DeviceAction::StartTls)));
        d.handle_tls_established();
        d.handle_input(b"EHLO eop\r\n");
        assert_eq!(
            d.poll_action(),
            Some(DeviceAction::Attach(b"EHLO eop\r\n".to_vec()))
        );
        assert!(d.is_done());
    }
}
