//! The lab resolver: smart-host and MX names map to the embedded mock (or any address the lab
//! chooses). Real DNS is never asked. An unknown name is a DNS failure
//! (`451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain`,
//! FM-25); a name may also map to "unreachable" (the TCP connect fails, FM-19) or to a DNS server
//! failure (`ErrorRetry`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use hybridlab_model::reply::Reply;
use serde::{Deserialize, Serialize};

use crate::connector::SendConnector;

/// How a TCP connection to an unreachable host fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectFailure {
    /// No answer (Winsock 10060).
    #[default]
    TimedOut,
    /// Actively refused (Winsock 10061).
    Refused,
}

impl ConnectFailure {
    /// The Winsock error code.
    pub fn winsock_code(self) -> u32 {
        match self {
            Self::TimedOut => 10060,
            Self::Refused => 10061,
        }
    }

    /// The connectivity log's reason word (`TimedOut`, `ConnectionRefused`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TimedOut => "TimedOut",
            Self::Refused => "ConnectionRefused",
        }
    }
}

/// What a name maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum HostEntry {
    /// Addresses; a port here overrides the connector's port (the mock listens on port 0).
    Addresses {
        /// The addresses to connect to, in order.
        addrs: Vec<SocketAddr>,
    },
    /// The name resolves to `ip`, but a TCP connection there fails.
    Unreachable {
        /// The address the log shows.
        ip: IpAddr,
        /// How the connect fails.
        failure: ConnectFailure,
    },
    /// The DNS server fails (`ErrorRetry`).
    ServerFailure,
}

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsFailure {
    /// NXDOMAIN: the name does not exist.
    NonExistentDomain {
        /// The name that was looked up.
        name: String,
    },
    /// SERVFAIL / timeout.
    ErrorRetry {
        /// The name that was looked up.
        name: String,
    },
}

impl DnsFailure {
    /// The queue's LastError text (not wrapped by 4.4.395/4.4.397).
    pub fn reply(&self) -> Reply {
        match self {
            Self::NonExistentDomain { .. } => Reply::new(
                451,
                "4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain",
            ),
            Self::ErrorRetry { .. } => Reply::new(
                451,
                "4.4.0 DNS query failed. The error was: DNS query failed with error ErrorRetry",
            ),
        }
    }
}

/// One place to connect to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The host name as configured (smart host or MX host).
    pub host: String,
    /// The address and port to connect to.
    pub addr: SocketAddr,
    /// How connecting there fails (`None`: it connects).
    pub unreachable: Option<ConnectFailure>,
}

/// The lab's name table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabResolver {
    /// What each host name (lower case) maps to.
    #[serde(default)]
    pub hosts: BTreeMap<String, HostEntry>,
    /// Each domain's (lower case) MX hosts, by preference.
    #[serde(default)]
    pub mx: BTreeMap<String, Vec<(u16, String)>>,
}

impl LabResolver {
    /// An empty table: every name is NXDOMAIN.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `name` to `addr` (builder style).
    pub fn with_host(mut self, name: &str, addr: SocketAddr) -> Self {
        self.insert(name, HostEntry::Addresses { addrs: vec![addr] });
        self
    }

    /// Maps `name` to an unreachable `ip`.
    pub fn with_unreachable(mut self, name: &str, ip: IpAddr, failure: ConnectFailure) -> Self {
        self.insert(name, HostEntry::Unreachable { ip, failure });
        self
    }

    /// Adds an MX record.
    pub fn with_mx(mut self, domain: &str, preference: u16, host: &str) -> Self {
        let v = self.mx.entry(domain.to_ascii_lowercase()).or_default();
        v.push((preference, host.to_string()));
        v.sort();
        self
    }

    /// Inserts or replaces an entry.
    pub fn insert(&mut self, name: &str, entry: HostEntry) {
        self.hosts
            .insert(name.trim_end_matches('.').to_ascii_lowercase(), entry);
    }

    /// Resolves one host name (or IP literal, optionally `[bracketed]`) with `port` as default.
    ///
    /// # Errors
    /// The name is unknown or mapped to a server failure.
    pub fn resolve_host(&self, name: &str, port: u16) -> Result<Vec<Target>, DnsFailure> {
        let n = name.trim().trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = n.parse::<IpAddr>() {
            return Ok(vec![Target {
                host: name.to_string(),
                addr: SocketAddr::new(ip, port),
                unreachable: None,
            }]);
        }
        let key = n.trim_end_matches('.').to_ascii_lowercase();
        match self.hosts.get(&key) {
            None => Err(DnsFailure::NonExistentDomain {
                name: n.to_string(),
            }),
            Some(HostEntry::ServerFailure) => Err(DnsFailure::ErrorRetry {
                name: n.to_string(),
            }),
            Some(HostEntry::Unreachable { ip, failure }) => Ok(vec![Target {
                host: n.to_string(),
                addr: SocketAddr::new(*ip, port),
                unreachable: Some(*failure),
            }]),
            Some(HostEntry::Addresses { addrs }) => Ok(addrs
                .iter()
                .map(|a| Target {
                    host: n.to_string(),
                    addr: if a.port() == 0 {
                        SocketAddr::new(a.ip(), port)
                    } else {
                        *a
                    },
                    unreachable: None,
                })
                .collect()),
        }
    }

    /// The next hop for `recipient_domain` through `connector`: its smart hosts, or the MX hosts of
    /// the domain when DNS routing is on. Targets are in order of preference.
    ///
    /// # Errors
    /// No smart host or MX resolves.
    pub fn next_hop(
        &self,
        connector: &SendConnector,
        recipient_domain: &str,
    ) -> Result<Vec<Target>, DnsFailure> {
        let hosts: Vec<String> = if connector.dns_routing_enabled {
            match self.mx.get(&recipient_domain.to_ascii_lowercase()) {
                Some(v) if !v.is_empty() => v.iter().map(|(_, h)| h.clone()).collect(),
                _ => vec![recipient_domain.to_string()],
            }
        } else {
            connector.smart_hosts.clone()
        };
        let mut out = Vec::new();
        let mut first_err = None;
        for h in hosts {
            match self.resolve_host(&h, connector.port) {
                Ok(t) => out.extend(t),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if out.is_empty() {
            return Err(first_err.unwrap_or(DnsFailure::NonExistentDomain {
                name: recipient_domain.to_string(),
            }));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_only_what_the_lab_knows() {
        let mock: SocketAddr = "127.0.0.1:40025".parse().unwrap();
        let r = LabResolver::new()
            .with_host("contoso-com.mail.protection.outlook.com", mock)
            .with_unreachable(
                "blocked.mail.protection.outlook.com",
                "104.47.10.36".parse().unwrap(),
                ConnectFailure::TimedOut,
            )
            .with_mx(
                "contoso.mail.onmicrosoft.com",
                0,
                "contoso-com.mail.protection.outlook.com",
            );
        let mut c = SendConnector::hybrid("contoso", None);
        c.smart_hosts = vec!["Contoso-com.mail.protection.outlook.com.".into()];
        let t = r.next_hop(&c, "contoso.mail.onmicrosoft.com").unwrap();
        assert_eq!(t[0].addr, mock);
        c.smart_hosts = vec!["typo.mail.protection.outlook.com".into()];
        let e = r.next_hop(&c, "x").unwrap_err();
        assert_eq!(
            e.reply().one_line(),
            "451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain"
        );
        c.smart_hosts = vec!["blocked.mail.protection.outlook.com".into()];
        let t = r.next_hop(&c, "x").unwrap();
        assert_eq!(t[0].unreachable, Some(ConnectFailure::TimedOut));
        assert_eq!(t[0].addr.port(), 25);
        c.smart_hosts = vec!["[127.0.0.9]".into()];
        assert_eq!(
            r.next_hop(&c, "x").unwrap()[0].addr,
            "127.0.0.9:25".parse().unwrap()
        );
        c.smart_hosts.clear();
        c.dns_routing_enabled = true;
        assert_eq!(
            r.next_hop(&c, "contoso.mail.onmicrosoft.com").unwrap()[0].addr,
            mock
        );
        let mut r2 = r;
        r2.insert(
            "contoso-com.mail.protection.outlook.com",
            HostEntry::ServerFailure,
        );
        assert!(
            r2.next_hop(&c, "contoso.mail.onmicrosoft.com")
                .unwrap_err()
                .reply()
                .text()
                .contains("ErrorRetry")
        );
    }
}
