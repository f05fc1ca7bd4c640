//! Exchange's vocabulary, shared by the lab (which produces it) and the diagnosis (which reads it):
//! SChannel status names, disconnect reasons, queue states, Exchange versions and the transport's
//! synthetic replies. Every `Display` writes the exact token Exchange writes, and every `FromStr`
//! reads it back (case-insensitively), so the lab's artefacts and a customer's parse the same way.

use std::fmt;
use std::str::FromStr;

use crate::reply::Reply;
use serde::{Deserialize, Serialize};

/// Declares a token enum with exact Display/FromStr spellings (FromStr ignores case) and serde
/// through the same spellings: Exchange's vocabulary here, in the artefact formats and in the
/// diagnosis. The one token-enum macro of the workspace.
///
/// Two forms:
/// - `Variant => "Token"`: serde derives through the exact spellings.
/// - `Variant = 16 => "Token"`: a .NET enum whose numeric value shows up too (`ConvertTo-Json` of
///   live objects writes numbers). Adds `value()` and `from_value()`; `FromStr` and `Deserialize`
///   accept the number or the name (any case), and a bad token's serde error lists the names.
#[macro_export]
macro_rules! token_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant),+
        }

        $crate::token_enum!(@tokens $name { $($variant => $text),+ });

        impl std::str::FromStr for $name {
            type Err = $crate::exchange::UnknownToken;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let t = s.trim();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(t))
                    .ok_or_else(|| $crate::exchange::UnknownToken { kind: stringify!($name), token: t.to_string() })
            }
        }
    };

    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $num:literal => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant),+
        }

        $crate::token_enum!(@tokens $name { $($variant => $text),+ });

        impl $name {
            /// The .NET enum value (`ConvertTo-Json` of live objects writes numbers).
            pub fn value(self) -> u32 {
                match self { $(Self::$variant => $num),+ }
            }

            /// From the .NET enum value.
            pub fn from_value(n: u32) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.value() == n)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::exchange::UnknownToken;
            /// The name (any case) or the .NET value.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let t = s.trim();
                let found = match t.parse::<u32>() {
                    Ok(n) => Self::from_value(n),
                    Err(_) => Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(t)),
                };
                found.ok_or_else(|| $crate::exchange::UnknownToken { kind: stringify!($name), token: t.to_string() })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        /// Reads the name (any case) or the .NET value, as `FromStr` does.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(|e: $crate::exchange::UnknownToken| {
                    serde::de::Error::custom(format!(
                        "{e}, expected one of: {}",
                        Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                })
            }
        }
    };

    (@tokens $name:ident { $($variant:ident => $text:literal),+ }) => {
        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The exact token Exchange writes.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A token that is not one of the known spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {token:?}")]
pub struct UnknownToken {
    /// Which vocabulary.
    pub kind: &'static str,
    /// The input.
    pub token: String,
}

token_enum! {
    /// The .NET `SecurityStatus` name Exchange logs in `TLS negotiation failed with error <Name>`
    /// (docs/domain.md section 2.5).
    SecurityStatus {
        /// The selected certificate has no private key (SEC_E_NO_CREDENTIALS).
        NoCredentials => "NoCredentials",
        /// The key exists but the transport cannot open it (SEC_E_UNKNOWN_CREDENTIALS).
        UnknownCredentials => "UnknownCredentials",
        /// The peer's chain ends at an untrusted root.
        UntrustedRoot => "UntrustedRoot",
        /// The peer's certificate is expired.
        CertExpired => "CertExpired",
        /// Generic certificate processing failure.
        CertUnknown => "CertUnknown",
        /// Malformed TLS record (a middlebox, or plaintext where TLS was expected).
        IllegalMessage => "IllegalMessage",
        /// No common protocol version or cipher suite.
        AlgorithmMismatch => "AlgorithmMismatch",
        /// Garbage during the handshake.
        InvalidToken => "InvalidToken",
        /// Name mismatch at the SSPI level.
        WrongPrincipal => "WrongPrincipal",
        /// Clock skew.
        TimeSkew => "TimeSkew",
        /// The peer sent a fatal alert or the message was altered.
        MessageAltered => "MessageAltered",
        /// Decryption failed.
        DecryptFailure => "DecryptFailure",
        /// The peer reset or closed the connection during the handshake.
        SocketError => "SocketError",
    }
}

impl SecurityStatus {
    /// The protocol-log info text: `TLS negotiation failed with error <Name>`.
    pub fn log_text(self) -> String {
        format!("TLS negotiation failed with error {self}")
    }

    /// Parses `TLS negotiation failed with error <Name>`.
    pub fn from_log_text(text: &str) -> Option<Self> {
        text.trim()
            .strip_prefix("TLS negotiation failed with error ")
            .and_then(|t| t.parse().ok())
    }

    /// Whether Exchange classifies the failure as a local disconnect (an SSPI error: the canned
    /// `421 4.4.1 Connection timed out`) rather than a remote one (`SocketError`).
    pub fn is_local(self) -> bool {
        self != Self::SocketError
    }
}

/// Why a session ended, as the last protocol-log line shows it (`-,,Local`, `-,,Remote(SocketError)`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisconnectReason {
    /// `Local`: this side closed (after QUIT, or an SSPI failure).
    Local,
    /// `Remote(<what>)`: the peer closed or reset (`Remote(SocketError)`, `Remote(ConnectionReset)`).
    Remote(String),
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local => f.write_str("Local"),
            Self::Remote(what) if what.is_empty() => f.write_str("Remote"),
            Self::Remote(what) => write!(f, "Remote({what})"),
        }
    }
}

impl FromStr for DisconnectReason {
    type Err = UnknownToken;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("Local") {
            return Ok(Self::Local);
        }
        if t.eq_ignore_ascii_case("Remote") {
            return Ok(Self::Remote(String::new()));
        }
        if let Some(inner) = t.strip_prefix("Remote(").and_then(|r| r.strip_suffix(')')) {
            return Ok(Self::Remote(inner.to_string()));
        }
        Err(UnknownToken {
            kind: "DisconnectReason",
            token: t.to_string(),
        })
    }
}

token_enum! {
    /// Exchange Server version; decides the LastError wrapper wording (docs/domain.md section 2.6).
    ExchangeVersion {
        /// Exchange 2010 (long "Primary target IP address responded with" form).
        Exchange2010 => "2010",
        /// Exchange 2013 (long form).
        Exchange2013 => "2013",
        /// Exchange 2016 (`451 4.4.395 ... -> ...`).
        Exchange2016 => "2016",
        /// Exchange 2019 (`451 4.4.395 ... -> ...`).
        Exchange2019 => "2019",
        /// Exchange Server Subscription Edition (as 2019).
        ExchangeSe => "SE",
    }
}

impl ExchangeVersion {
    /// 2016 and later use the short `-> <inner>` wrappers.
    pub fn uses_arrow_wrappers(self) -> bool {
        !matches!(self, Self::Exchange2010 | Self::Exchange2013)
    }
}

token_enum! {
    /// Send connector `TlsAuthLevel`.
    TlsAuthLevel {
        /// Any certificate; only encryption.
        EncryptionOnly => "EncryptionOnly",
        /// The remote chain must build to a trusted root and be in date.
        CertificateValidation => "CertificateValidation",
        /// CertificateValidation plus the remote name must match `TlsDomain`.
        DomainValidation => "DomainValidation",
    }
}

token_enum! {
    /// `Get-Queue` Status.
    QueueStatus {
        /// No status (shown for some special queues).
        None => "None",
        /// Delivering now.
        Active => "Active",
        /// Connecting.
        Connecting => "Connecting",
        /// Waiting for a connection slot.
        Ready => "Ready",
        /// Waiting for the next retry after a failure.
        Retry => "Retry",
        /// Suspended by an admin.
        Suspended => "Suspended",
    }
}

token_enum! {
    /// `Get-Queue` DeliveryType.
    DeliveryType {
        /// Send connector with MX routing.
        DnsConnectorDelivery => "DnsConnectorDelivery",
        /// Send connector with smart hosts.
        SmartHostConnectorDelivery => "SmartHostConnectorDelivery",
        /// Mailbox server to Edge.
        SmtpRelayWithinAdSiteToEdge => "SmtpRelayWithinAdSiteToEdge",
        /// Cross-site relay.
        SmtpRelayToRemoteAdSite => "SmtpRelayToRemoteAdSite",
        /// Local delivery.
        SmtpDeliveryToMailbox => "SmtpDeliveryToMailbox",
        /// No route.
        Unreachable => "Unreachable",
        /// Unknown.
        Undefined => "Undefined",
        /// Shadow redundancy queue.
        ShadowRedundancy => "ShadowRedundancy",
        /// Mailbox server to a DAG.
        SmtpRelayToDag => "SmtpRelayToDag",
        /// Mailbox server to a mailbox delivery group.
        SmtpRelayToMailboxDeliveryGroup => "SmtpRelayToMailboxDeliveryGroup",
        /// To the source servers of a connector.
        SmtpRelayToConnectorSourceServers => "SmtpRelayToConnectorSourceServers",
        /// To specific servers.
        SmtpRelayToServers => "SmtpRelayToServers",
        /// Within the AD site.
        SmtpRelayWithinAdSite => "SmtpRelayWithinAdSite",
        /// Delivery agent connector.
        DeliveryAgent => "DeliveryAgent",
        /// Foreign connector.
        NonSmtpGatewayDelivery => "NonSmtpGatewayDelivery",
        /// Mailbox transport delivery.
        MapiDelivery => "MapiDelivery",
    }
}

/// The transport's synthetic replies: what Exchange records as the "response" of a connection that
/// failed locally (docs/domain.md section 2.6 and 4.4). They never came from the remote server.
pub mod synthetic {
    use super::Reply;

    /// `421 4.4.1 Connection timed out`: a real timeout, or any SSPI failure during STARTTLS.
    pub fn connection_timed_out() -> Reply {
        Reply::new(421, "4.4.1 Connection timed out")
    }
    /// `421 4.4.2 Connection dropped due to SocketError`.
    pub fn connection_dropped() -> Reply {
        Reply::new(421, "4.4.2 Connection dropped due to SocketError")
    }
    /// `421 4.2.1 Unable to connect`.
    pub fn unable_to_connect() -> Reply {
        Reply::new(421, "4.2.1 Unable to connect")
    }
    /// `454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not be found.`
    pub fn tls_certificate_name_not_found() -> Reply {
        Reply::new(
            454,
            "4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not be found.",
        )
    }
    /// `454 4.7.5 Certificate validation failure`.
    pub fn certificate_validation_failure() -> Reply {
        Reply::new(454, "4.7.5 Certificate validation failure")
    }
    /// `451 5.7.3 STARTTLS is required to send mail` (RequireTLS connector, STARTTLS not offered).
    pub fn starttls_required() -> Reply {
        Reply::new(451, "5.7.3 STARTTLS is required to send mail")
    }
    /// `421 TLSAuthLevel cannot be DomainValidation with out a valid TLS Domain.` (typo as in Exchange).
    pub fn domain_validation_without_domain() -> Reply {
        Reply::new(
            421,
            "TLSAuthLevel cannot be DomainValidation with out a valid TLS Domain.",
        )
    }
    /// `550 5.3.4 SMTPSEND.OverAdvertisedSize; message size exceeds fixed maximum size`.
    pub fn over_advertised_size() -> Reply {
        Reply::new(
            550,
            "5.3.4 SMTPSEND.OverAdvertisedSize; message size exceeds fixed maximum size",
        )
    }
    /// `550 4.4.7 QUEUE.Expired; message expired`.
    pub fn queue_expired() -> Reply {
        Reply::new(550, "4.4.7 QUEUE.Expired; message expired")
    }
    /// `400 4.4.7 Message delayed`: what a delay DSN reports (its human part adds the last
    /// error).
    pub fn message_delayed() -> Reply {
        Reply::new(400, "4.4.7 Message delayed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for s in SecurityStatus::ALL {
            assert_eq!(SecurityStatus::from_log_text(&s.log_text()), Some(*s));
        }
        assert_eq!("nocredentials".parse(), Ok(SecurityStatus::NoCredentials));
        assert!("Nope".parse::<SecurityStatus>().is_err());
        for d in [
            DisconnectReason::Local,
            DisconnectReason::Remote("SocketError".into()),
        ] {
            assert_eq!(d.to_string().parse::<DisconnectReason>().unwrap(), d);
        }
        assert_eq!(
            DisconnectReason::Remote("SocketError".into()).to_string(),
            "Remote(SocketError)"
        );
        assert_eq!("2019".parse(), Ok(ExchangeVersion::Exchange2019));
        assert_eq!(
            TlsAuthLevel::DomainValidation.to_string(),
            "DomainValidation"
        );
    }
}
