//! Routing in Exchange Online: which outbound connector a recipient's mail takes (the most
//! specific RecipientDomains match of the tenant's connectors, see
//! [`hybridlab_model::exo::Tenant::outbound_connector_for`]) and which addresses its smart hosts
//! (or the recipient domain's MX hosts) stand for, through a [`Resolver`] the caller provides:
//! the lab resolves with its own table, the standalone command with [`LiteralResolver`]
//! (literal addresses and `localhost` only).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hybridlab_model::exo::{OutboundConnector, SmartHost, Tenant};

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The name does not exist (NXDOMAIN) or has no address.
    #[error("Non-existent domain {0}")]
    NotFound(String),
    /// The resolver does not resolve such names (the standalone command resolves only literal
    /// addresses and `localhost`).
    #[error("{0}: only IP addresses and localhost are resolved here")]
    Unsupported(String),
    /// The resolver failed (server failure, timeout).
    #[error("DNS server failure for {0}")]
    ServerFailure(String),
}

/// Resolves smart hosts and MX records.
pub trait Resolver {
    /// The addresses of `host`.
    fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError>;

    /// The MX hosts of `domain`, best first (UseMXRecord connectors). Default: none.
    fn mx(&self, domain: &str) -> Result<Vec<String>, ResolveError> {
        Err(ResolveError::Unsupported(domain.to_string()))
    }
}

/// Resolves literal addresses and `localhost` (127.0.0.1) only: the standalone `deliver`
/// command never queries DNS.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiteralResolver;

impl Resolver for LiteralResolver {
    fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let h = host.trim_matches(['[', ']']);
        if let Ok(ip) = h.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if h.eq_ignore_ascii_case("localhost") {
            return Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        }
        if h.eq_ignore_ascii_case("ip6-localhost") {
            return Ok(vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]);
        }
        Err(ResolveError::Unsupported(host.to_string()))
    }
}

/// No outbound connector covers a recipient.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no enabled outbound connector of tenant {tenant:?} covers {domain:?}")]
pub struct NoRoute {
    /// The tenant.
    pub tenant: String,
    /// The recipient domain.
    pub domain: String,
}

/// Where a message for one recipient goes: the connector and the port.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The tenant's initial domain (`XOORG=`, the trace's Organization).
    pub organization: String,
    /// The connector.
    pub connector: OutboundConnector,
    /// The TCP port (25 in production; the lab and `deliver --to` set others).
    pub port: u16,
}

impl Route {
    /// The route `tenant` gives mail for `recipient` (port 25).
    pub fn for_recipient(tenant: &Tenant, recipient: &str) -> Result<Self, NoRoute> {
        let domain = recipient
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or(recipient);
        let connector = tenant
            .outbound_connector_for(domain)
            .ok_or_else(|| NoRoute {
                tenant: tenant.name.clone(),
                domain: domain.to_string(),
            })?;
        Ok(Self::through(tenant, connector.clone()))
    }

    /// A route through `connector` of `tenant` (port 25).
    pub fn through(tenant: &Tenant, connector: OutboundConnector) -> Self {
        Self {
            organization: tenant.initial_domain(),
            connector,
            port: 25,
        }
    }
}

/// One address an attempt can go to, with the host name it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The smart host or MX name (or the address as text for a literal smart host).
    pub host: String,
    /// Address and port.
    pub addr: SocketAddr,
}

/// The most addresses taken from one smart-host range.
pub const MAX_RANGE_TARGETS: usize = 256;

/// Every address the route's smart hosts (or the MX hosts of `domain`) stand for, in order.
/// Names that do not resolve are skipped; when nothing resolves, the first failure is returned
/// with the name it was for.
pub fn targets(
    route: &Route,
    domain: &str,
    resolver: &dyn Resolver,
) -> Result<Vec<Target>, (String, ResolveError)> {
    let names: Vec<SmartHost> = if route.connector.use_mx_record {
        resolver
            .mx(domain)
            .map_err(|e| (domain.to_string(), e))?
            .into_iter()
            .map(SmartHost::Name)
            .collect()
    } else {
        route.connector.smart_hosts.clone()
    };
    let mut out = Vec::new();
    let mut first_error = None;
    for h in &names {
        match h {
            SmartHost::Ip(ip) => out.push(Target {
                host: ip.to_string(),
                addr: SocketAddr::new(*ip, route.port),
            }),
            SmartHost::Range(net) => {
                out.extend(net.hosts().take(MAX_RANGE_TARGETS).map(|ip| Target {
                    host: ip.to_string(),
                    addr: SocketAddr::new(ip, route.port),
                }))
            }
            SmartHost::Name(n) => match resolver.resolve(n) {
                Ok(ips) if !ips.is_empty() => out.extend(ips.into_iter().map(|ip| Target {
                    host: n.clone(),
                    addr: SocketAddr::new(ip, route.port),
                })),
                Ok(_) => {
                    first_error.get_or_insert((n.clone(), ResolveError::NotFound(n.clone())));
                }
                Err(e) => {
                    first_error.get_or_insert((n.clone(), e));
                }
            },
        }
    }
    match (out.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        (true, None) => Err((
            domain.to_string(),
            ResolveError::NotFound(domain.to_string()),
        )),
        (false, _) => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Table;
    impl Resolver for Table {
        fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
            match host {
                "mail.contoso.com" => Ok(vec![
                    "127.0.0.10".parse().unwrap(),
                    "127.0.0.11".parse().unwrap(),
                ]),
                _ => Err(ResolveError::NotFound(host.into())),
            }
        }
        fn mx(&self, _domain: &str) -> Result<Vec<String>, ResolveError> {
            Ok(vec!["mail.contoso.com".into()])
        }
    }

    fn tenant() -> Tenant {
        toml::from_str(
            r#"
name = "contoso"
accepted_domains = [{ domain = "contoso.com" }]
[[outbound_connectors]]
name = "Outbound to x"
smart_hosts = ["gone.contoso.com", "mail.contoso.com", "127.0.0.20", "127.0.1.0/30"]
recipient_domains = ["contoso.com"]
"#,
        )
        .unwrap()
    }

    #[test]
    fn routes_and_targets() {
        let t = tenant();
        let mut r = Route::for_recipient(&t, "bob@contoso.com").unwrap();
        assert_eq!(r.organization, "contoso.onmicrosoft.com");
        r.port = 2525;
        let ts = targets(&r, "contoso.com", &Table).unwrap();
        let addrs: Vec<String> = ts.iter().map(|t| t.addr.to_string()).collect();
        assert_eq!(
            addrs,
            [
                "127.0.0.10:2525",
                "127.0.0.11:2525",
                "127.0.0.20:2525",
                "127.0.1.1:2525",
                "127.0.1.2:2525"
            ]
        );
        assert_eq!(ts[0].host, "mail.contoso.com");
        assert!(Route::for_recipient(&t, "x@fabrikam.com").is_err());
        let mut only_gone = r.clone();
        only_gone.connector.smart_hosts = vec![SmartHost::Name("gone.contoso.com".into())];
        let (name, e) = targets(&only_gone, "contoso.com", &Table).unwrap_err();
        assert_eq!(name, "gone.contoso.com");
        assert_eq!(e, ResolveError::NotFound("gone.contoso.com".into()));
        let mut mx = r;
        mx.connector.use_mx_record = true;
        assert_eq!(targets(&mx, "contoso.com", &Table).unwrap().len(), 2);
        assert!(LiteralResolver.resolve("mail.contoso.com").is_err());
        assert_eq!(
            LiteralResolver.resolve("localhost").unwrap(),
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
        );
    }
}
