//! The finding catalogue (docs/findings.md): every id with its severity, rank and title.
//!
//! Ids are a contract: their spelling never changes once released. The rank is the
//! "root cause first" order of docs/findings.md (errors 1..=36, then the warnings in their listed
//! order, then the info ids); findings are sorted by severity, then rank, then the time of their newest evidence.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Mail fails because of it.
    Error,
    /// Mail flows, but the configuration is fragile or about to break.
    Warning,
    /// Worth knowing.
    Info,
}

impl Severity {
    /// `error`, `warning`, `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! findings {
    ($($(#[$m:meta])* $variant:ident => $id:literal, $sev:ident, $rank:literal, $title:literal;)+) => {
        /// A finding id of docs/findings.md.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum FindingId {
            $($(#[$m])* #[serde(rename = $id)] $variant,)+
        }

        impl FindingId {
            /// Every id, in catalogue order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The kebab-case id (`cert-keyless-duplicate`).
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $id),+ }
            }

            /// Its severity.
            pub fn severity(self) -> Severity {
                match self { $(Self::$variant => Severity::$sev),+ }
            }

            /// Its rank within its severity (1 = reported first).
            pub fn rank(self) -> u8 {
                match self { $(Self::$variant => $rank),+ }
            }

            /// The one-line title.
            pub fn title(self) -> &'static str {
                match self { $(Self::$variant => $title),+ }
            }
        }
    };
}

findings! {
    /// FM-34: the transport still presents the certificate it selected before a change.
    CertCachedAfterChange => "cert-cached-after-change", Error, 1,
        "The transport still presents a certificate from before a change (its certificate cache)";
    /// FM-06: the connector's certificate has expired.
    CertExpired => "cert-expired", Error, 2,
        "The connector's certificate has expired";
    /// FM-04: TlsCertificateName resolves to nothing.
    TlsCertNameNotFound => "tls-cert-name-not-found", Error, 3,
        "TlsCertificateName matches no certificate in the store";
    /// FM-01: the classic case, a key-less twin is chosen.
    CertKeylessDuplicate => "cert-keyless-duplicate", Error, 4,
        "The transport presents a copy of the hybrid certificate that has no private key";
    /// FM-02: the only matching certificate has no key.
    CertMissingPrivateKey => "cert-missing-private-key", Error, 5,
        "The only certificate matching TlsCertificateName has no private key";
    /// FM-03: UnknownCredentials.
    CertKeyInaccessible => "cert-key-inaccessible", Error, 6,
        "The certificate has a private key but the transport cannot read it (UnknownCredentials)";
    /// FM-15/16: no common protocol or cipher.
    TlsVersionMismatch => "tls-version-mismatch", Error, 7,
        "No TLS version or cipher in common with EOP";
    /// FM-18: a device resets the handshake, no evidence of a version problem.
    TlsHandshakeReset => "tls-handshake-reset", Error, 8,
        "The TLS handshake is reset on the way to EOP (a firewall, IPS or TLS-inspecting device)";
    /// FM-11: EOP's chain is not trusted.
    RemoteCertUntrusted => "remote-cert-untrusted", Error, 9,
        "The server does not trust the chain of EOP's certificate";
    /// FM-35/14: DomainValidation name check fails.
    RemoteCertNameMismatch => "remote-cert-name-mismatch", Error, 10,
        "DomainValidation fails: EOP's certificate does not match TlsDomain";
    /// FM-17: STARTTLS removed on the path.
    StarttlsStripped => "starttls-stripped", Error, 11,
        "A firewall removes STARTTLS from EOP's EHLO reply";
    /// FM-21: EOP refuses a cleartext session.
    TlsRequiredCleartext => "tls-required-cleartext", Error, 12,
        "EOP requires TLS but the session is in clear text";
    /// FM-07: certificate names vs TlsSenderCertificateName.
    InboundConnectorCertMismatch => "inbound-connector-cert-mismatch", Error, 13,
        "The certificate's names do not match the Exchange Online connector's TlsSenderCertificateName";
    /// FM-08: no or a self-signed client certificate.
    NoClientCertificate => "no-client-certificate", Error, 14,
        "No certificate, or a self-signed one, is presented to EOP";
    /// FM-10/13: EOP cannot build the client certificate's chain.
    ClientCertUntrusted => "client-cert-untrusted", Error, 15,
        "EOP cannot validate the certificate the server presents (incomplete chain or private CA)";
    /// FM-09: the certificate's domain belongs to another tenant.
    CertDomainNotAccepted => "cert-domain-not-accepted", Error, 16,
        "The certificate's domain is not an accepted domain of your tenant: another tenant's connector takes the mail";
    /// FM-30: 550 5.7.51.
    PartnerConnectorRestriction => "partner-connector-restriction", Error, 17,
        "A Partner connector's restriction catches the on-premises mail (5.7.51)";
    /// FM-23/24: 550 5.7.64.
    RelayDeniedUnattributed => "relay-denied-unattributed", Error, 18,
        "EOP does not recognise the server and refuses to relay (5.7.64)";
    /// FM-22: 451 4.4.62 ATTR35.
    WrongRegionEndpoint => "wrong-region-endpoint", Error, 19,
        "Mail is sent to an EOP endpoint in the wrong region (ATTR35)";
    /// FM-29: EOP reputation verdicts.
    EopThrottled => "eop-throttled", Error, 20,
        "EOP throttles or blocks the sending IP";
    /// FM-26: Exchange Online refuses a recipient.
    RecipientRejected => "recipient-rejected", Error, 21,
        "Exchange Online rejects the recipient (Directory-Based Edge Blocking, unknown address)";
    /// FM-25: DNS failure.
    DnsResolutionFailed => "dns-resolution-failed", Error, 22,
        "The next hop cannot be resolved in DNS";
    /// FM-19: no TCP connection.
    ConnectFailed => "connect-failed", Error, 23,
        "The server cannot open a TCP connection to EOP";
    /// FM-27: a size limit.
    MessageTooLarge => "message-too-large", Error, 24,
        "A message exceeds a size limit on the path";
    /// FM-20: a real timeout.
    ConnectionTimeout => "connection-timeout", Error, 25,
        "A real timeout: the session went silent, no TLS failure";
    /// The other direction: the certificate the receive connector presents to EXO has expired.
    ReceiveCertExpired => "receive-cert-expired", Error, 26,
        "The certificate the receive connector presents to Exchange Online has expired";
    /// FM-05: the receive connector's TlsCertificateName matches nothing, STARTTLS is not offered.
    ReceiveTlsCertNameNotFound => "receive-tls-cert-name-not-found", Error, 27,
        "The receive connector's TlsCertificateName matches no usable certificate: STARTTLS is not offered to Exchange Online";
    /// SMTP inspection masks STARTTLS on the way in.
    InboundStarttlsStripped => "inbound-starttls-stripped", Error, 28,
        "A device in front of Exchange hides STARTTLS from Exchange Online";
    /// FM-40: the receive side cannot negotiate TLS 1.2.
    InboundTlsVersionMismatch => "inbound-tls-version-mismatch", Error, 29,
        "Exchange Online and the receiving server have no TLS version or cipher in common";
    /// FM-38: a device in front of Exchange terminates TLS with its own certificate.
    InboundMiddleboxCert => "inbound-middlebox-cert", Error, 30,
        "Exchange Online sees a certificate that is on no Exchange server: a device in front terminates TLS";
    /// FM-14: the presented certificate lacks the outbound connector's TlsDomain.
    ReceiveCertSubjectMismatch => "receive-cert-subject-mismatch", Error, 31,
        "The certificate presented to Exchange Online does not carry the outbound connector's TlsDomain";
    /// FM-10/13 inbound: EXO does not trust the on-premises chain.
    ReceiveCertUntrusted => "receive-cert-untrusted", Error, 32,
        "Exchange Online does not trust the chain of the certificate the receiving server presents";
    /// FM-39: back pressure on the receiving server.
    OnpremBackPressure => "onprem-back-pressure", Error, 33,
        "The receiving server refuses mail from Exchange Online under back pressure (452 4.3.1)";
    /// FM-37: EXO cannot open TCP 25 to on-premises.
    InboundConnectionRefused => "inbound-connection-refused", Error, 34,
        "Exchange Online cannot open a TCP connection to the on-premises server (refused or timed out)";
    /// FM-41: mail from EXO is accepted but anonymous.
    TlsDomainCapabilitiesMissing => "tls-domain-capabilities-missing", Error, 35,
        "The receive connector does not grant Exchange Online AcceptCloudServicesMail: hybrid mail arrives anonymous";
    /// Failing mail that no rule explains: what was seen and what to collect next.
    UnexplainedFailure => "unexplained-failure", Error, 36,
        "Mail is failing, but these artefacts do not show why: collect the files named below";
    /// FM-01/02 rule R2: the presented certificate is invisible to Get-ExchangeCertificate.
    CertInvisibleToEms => "cert-invisible-to-ems", Warning, 1,
        "The certificate the transport presents is not listed by Get-ExchangeCertificate";
    /// TlsCertificateName syntax.
    LintTlsCertificateNameSyntax => "lint-tls-certificate-name-syntax", Warning, 2,
        "TlsCertificateName is not of the form <I>issuer<S>subject";
    /// FM-06 early warning.
    CertExpiringSoon => "cert-expiring-soon", Warning, 3,
        "A certificate the transport uses expires within 30 days";
    /// FM-01 latent, FM-34.
    LintTlsCertificateNameAmbiguous => "lint-tls-certificate-name-ambiguous", Warning, 4,
        "TlsCertificateName matches several valid certificates";
    /// FM-35 latent.
    LintDomainValidationWithoutTlsDomain => "lint-domainvalidation-without-tlsdomain", Warning, 5,
        "DomainValidation without a TlsDomain";
    /// FM-21 latent.
    LintHybridConnectorWithoutRequireTls => "lint-hybrid-connector-without-requiretls", Warning, 6,
        "A hybrid connector does not require TLS";
    /// DNSRoutingEnabled with smart hosts.
    LintDnsRoutingWithSmarthosts => "lint-dns-routing-with-smarthosts", Warning, 7,
        "DNS routing enabled while smart hosts are set";
    /// FM-22 latent.
    LintSmarthostNotTenantMx => "lint-smarthost-not-tenant-mx", Warning, 8,
        "A hybrid connector's smart host is not a tenant MX host";
    /// FM-01/02/03 after the fix: the latest session delivers with another certificate.
    CertFailureRecovered => "cert-failure-recovered", Info, 1,
        "Mail flows again: the certificate failure in the log no longer occurs";
}

impl fmt::Display for FindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An id that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown finding id {0:?}")]
pub struct UnknownFindingId(pub String);

impl FromStr for FindingId {
    type Err = UnknownFindingId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Self::ALL
            .iter()
            .copied()
            .find(|id| id.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| UnknownFindingId(t.to_string()))
    }
}

impl FindingId {
    /// Errors that fail the whole session, so that one later delivery on the same connector
    /// proves them gone (docs/findings.md, "Failures that mail flow has left behind"): such a
    /// finding is reported as a warning once mail flows again. Attribution and recipient verdicts
    /// (5.7.64, 5.7.51, 5.1.1, size) hit some recipients or messages while others are delivered
    /// in the same sessions, so a delivery says nothing about them.
    pub fn can_recover(self) -> bool {
        matches!(
            self,
            Self::CertExpired
                | Self::TlsHandshakeReset
                | Self::TlsCertNameNotFound
                | Self::CertKeylessDuplicate
                | Self::CertMissingPrivateKey
                | Self::CertKeyInaccessible
                | Self::TlsVersionMismatch
                | Self::RemoteCertUntrusted
                | Self::RemoteCertNameMismatch
                | Self::StarttlsStripped
                | Self::TlsRequiredCleartext
                | Self::WrongRegionEndpoint
                | Self::EopThrottled
                | Self::DnsResolutionFailed
                | Self::ConnectFailed
                | Self::ConnectionTimeout
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_ranks_are_unique_per_severity() {
        for id in FindingId::ALL {
            assert_eq!(id.as_str().parse::<FindingId>(), Ok(*id));
            assert_eq!(
                serde_json::to_string(id).unwrap(),
                format!("\"{}\"", id.as_str())
            );
            let same = FindingId::ALL
                .iter()
                .filter(|o| o.severity() == id.severity() && o.rank() == id.rank())
                .count();
            assert_eq!(same, 1, "{id}");
        }
        assert!("nope".parse::<FindingId>().is_err());
        assert_eq!(FindingId::ALL.len(), 45);
    }
}
