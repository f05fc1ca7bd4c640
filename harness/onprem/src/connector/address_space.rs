//! Address spaces: which recipient domains a send connector routes, at what cost.

use std::fmt;
use std::str::FromStr;

use super::ConnectorError;

/// One address space: `SMTP:contoso.mail.onmicrosoft.com;1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddressSpace {
    /// The address type: `SMTP` (other types are kept verbatim).
    pub kind: String,
    /// The domain pattern: `contoso.com`, `*.contoso.com` (its subdomains) or `*` (any domain).
    pub domain: String,
    /// The routing cost, 1-100: of the connectors whose space matches, the lowest cost wins.
    pub cost: u8,
}

impl AddressSpace {
    /// Whether a recipient domain falls in this space (`*` all; `*.contoso.com` any subdomain).
    pub fn matches(&self, domain: &str) -> bool {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        let p = self.domain.to_ascii_lowercase();
        if p == "*" {
            return true;
        }
        match p.strip_prefix("*.") {
            Some(suffix) => d.ends_with(&format!(".{suffix}")),
            None => d == p,
        }
    }

    /// How specific the space is (longer is more specific; `*` is least).
    pub fn specificity(&self) -> usize {
        if self.domain == "*" {
            0
        } else {
            self.domain.trim_start_matches("*.").len() + usize::from(!self.domain.starts_with('*'))
        }
    }
}

impl fmt::Display for AddressSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{};{}", self.kind, self.domain, self.cost)
    }
}

impl FromStr for AddressSpace {
    type Err = ConnectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| ConnectorError::BadAddressSpace {
            value: s.to_string(),
            reason,
        };
        let t = s.trim();
        let (kind, rest) = match t.split_once(':') {
            Some((k, r)) => (k.to_ascii_uppercase(), r),
            None => ("SMTP".to_string(), t),
        };
        let (domain, cost) = match rest.rsplit_once(';') {
            Some((d, c)) => (
                d,
                c.trim()
                    .parse::<u8>()
                    .map_err(|_| bad("cost is not 1-100"))?,
            ),
            None => (rest, 1),
        };
        if !(1..=100).contains(&cost) {
            return Err(bad("cost is not 1-100"));
        }
        let domain = domain.trim();
        if domain.is_empty() {
            return Err(bad("the domain is empty"));
        }
        Ok(Self {
            kind,
            domain: domain.to_string(),
            cost,
        })
    }
}

hybridlab_model::serde_via_str!(AddressSpace, ToString::to_string);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::SendConnector;

    #[test]
    fn address_spaces() {
        let a: AddressSpace = "smtp:contoso.mail.onmicrosoft.com;1".parse().unwrap();
        assert!(a.matches("Contoso.mail.onmicrosoft.com"));
        assert!(!a.matches("fabrikam.mail.onmicrosoft.com"));
        let w: AddressSpace = "SMTP:*;5".parse().unwrap();
        assert!(w.matches("anything.example"));
        let s: AddressSpace = "*.contoso.com".parse().unwrap();
        assert!(s.matches("a.b.contoso.com") && !s.matches("contoso.com"));
        assert!("SMTP:x;0".parse::<AddressSpace>().is_err());
        assert!("SMTP:;1".parse::<AddressSpace>().is_err());
        let mut c = SendConnector::hybrid("contoso", None);
        c.address_spaces.push(w);
        assert_eq!(c.route_cost("contoso.mail.onmicrosoft.com").unwrap().0, 1);
        assert_eq!(c.route_cost("example.org").unwrap().0, 5);
    }
}
