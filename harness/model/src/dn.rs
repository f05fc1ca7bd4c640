//! Distinguished names as the lab writes them: the .NET rendering (`CN=mail.contoso.com, O=Contoso
//! Ltd, S=Washington, C=US`, most specific first), parsed into attributes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::x509::dotnet_quote;

/// A distinguished name that cannot be parsed or generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid distinguished name {dn:?}: {reason}")]
pub struct DnError {
    /// The name as written.
    pub dn: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One attribute of a distinguished name, with its .NET short name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DnAttr {
    /// .NET short name: `CN`, `OU`, `O`, `L`, `S`, `C`, `E`, `DC`, `STREET`, or `OID.x.y.z`.
    pub key: String,
    /// The value, unquoted.
    pub value: String,
}

/// A distinguished name in .NET display order (most specific first).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DnSpec(pub Vec<DnAttr>);

impl DnSpec {
    /// A DN with only a common name.
    pub fn cn(cn: &str) -> Self {
        Self(vec![DnAttr {
            key: "CN".into(),
            value: cn.into(),
        }])
    }

    /// The first CN value, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|a| a.key.eq_ignore_ascii_case("CN"))
            .map(|a| a.value.as_str())
    }
}

impl fmt::Display for DnSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|a| format!("{}={}", a.key, dotnet_quote(&a.value)))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

impl FromStr for DnSpec {
    type Err = DnError;

    /// Parses `CN=mail.contoso.com, O="Contoso, Ltd", C=US`. `ST=` is accepted for `S=`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| DnError {
            dn: s.to_string(),
            reason: reason.to_string(),
        };
        let mut attrs = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            let eq = rest.find('=').ok_or_else(|| err("expected KEY=value"))?;
            let key = rest[..eq].trim();
            if key.is_empty() || key.contains(',') {
                return Err(err("empty attribute name"));
            }
            rest = rest[eq + 1..].trim_start();
            let value;
            if let Some(q) = rest.strip_prefix('"') {
                let mut v = String::new();
                let mut chars = q.char_indices().peekable();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    if c == '"' {
                        if chars.peek().map(|(_, c)| *c) == Some('"') {
                            v.push('"');
                            chars.next();
                        } else {
                            end = Some(i + 1);
                            break;
                        }
                    } else {
                        v.push(c);
                    }
                }
                let end = end.ok_or_else(|| err("unterminated quote"))?;
                value = v;
                rest = q[end..].trim_start();
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                value = rest[..end].trim().to_string();
                rest = &rest[end..];
            }
            let key = if key.eq_ignore_ascii_case("ST") {
                "S".to_string()
            } else {
                key.to_ascii_uppercase()
            };
            attrs.push(DnAttr { key, value });
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
                if rest.is_empty() {
                    return Err(err("trailing comma"));
                }
            } else if !rest.is_empty() {
                return Err(err("expected ',' between attributes"));
            }
        }
        if attrs.is_empty() {
            return Err(err("empty name"));
        }
        Ok(Self(attrs))
    }
}

serde_via_str!(DnSpec, ToString::to_string);
