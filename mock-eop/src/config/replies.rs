//! `[eop.replies]`: replacement texts for the replies whose exact EOP wording is not certain.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use hybridlab_model::reply::Reply;

/// Replacement reply lines (`"550 5.7.64 ..."`); `{host}` is replaced by the endpoint's
/// `reject_host`, `{ip}` by the client's address. Unset = the texts in [`hybridlab_model::reply::eop`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplyOverrides {
    /// Attributed connector requires TLS, session is cleartext (`451 5.7.3 ...`).
    pub starttls_required: Option<ReplyTemplate>,
    /// Relay from an unattributed sender (`550 5.7.64 TenantAttribution; ...`).
    pub relay_denied: Option<ReplyTemplate>,
    /// Unaccepted sender domain without a certificate connector (`550 5.7.64 ... ATTR36 ...`).
    pub relay_denied_attr36: Option<ReplyTemplate>,
    /// Partner connector restriction violated (`550 5.7.51 TenantInboundAttribution; ...`).
    pub partner_restricted: Option<ReplyTemplate>,
    /// A sender domain of the recipient's tenant sent directly while the tenant has
    /// RejectDirectSend (`550 5.7.68 ...`).
    pub direct_send_denied: Option<ReplyTemplate>,
    /// Tenant in another region (`451 4.4.62 ... ATTR35 ...`).
    pub wrong_region: Option<ReplyTemplate>,
    /// The reply to a non-last BDAT chunk \[U\]; `{size}` is the chunk size.
    pub bdat_chunk: Option<ReplyTemplate>,
}

/// A reply line with `{host}`, `{ip}` or `{size}` placeholders, checked to start with a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTemplate(pub String);

impl ReplyTemplate {
    /// The reply with placeholders filled.
    pub fn render(&self, host: &str, ip: &str, size: usize) -> Reply {
        let text = self
            .0
            .replace("{host}", host)
            .replace("{ip}", ip)
            .replace("{size}", &size.to_string());
        // A host or IP with a control character in it must not break the reply into lines.
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Reply::parse_line(&text).unwrap_or_else(|| Reply::new(451, text))
    }
}

/// A reply template that is not `<code> <text>` with a code from 200 to 599.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a reply line (`<code> <text>` on one line, code 200-599)")]
pub struct NotAReplyLine(pub String);

impl FromStr for ReplyTemplate {
    type Err = NotAReplyLine;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let one_line = !s
            .trim_end_matches(['\r', '\n'])
            .chars()
            .any(char::is_control);
        match Reply::parse_line(s) {
            Some(r) if r.code >= 200 && one_line => Ok(Self(s.to_string())),
            _ => Err(NotAReplyLine(s.to_string())),
        }
    }
}

hybridlab_model::serde_via_str!(ReplyTemplate, |v| v.0.clone());
