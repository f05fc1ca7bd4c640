//! The words the reports use for the lab's enums, so no Rust `Debug` output (`Tls { status:
//! NoCredentials }`) reaches a reader: Exchange's own tokens where Exchange has one
//! (`OnPremises`, `NoCredentials`), plain English otherwise.

use hybridlab_model::exo::ConnectorType;
use hybridlab_model::record::CloseReason;
use hybridlab_onprem::sender::report::FailureKind;
use hybridlab_onprem::server::ServerRole;
use hybridlab_receive::perimeter::Refusal;
use hybridlab_receive::session::CrossPremises;

/// Why the sender's session failed, in the words of Exchange's logs where it has them.
pub(crate) fn failure(k: &FailureKind) -> String {
    match k {
        FailureKind::Dns => "DNS query failed".into(),
        FailureKind::ConnectFailed { failure } => format!(
            "connect failed: {} (Winsock {})",
            failure.as_str(),
            failure.winsock_code()
        ),
        FailureKind::BannerRejected => "the banner was not 220".into(),
        FailureKind::EhloRejected => "EHLO rejected".into(),
        FailureKind::StartTlsRequired => "TLS required but STARTTLS not offered".into(),
        FailureKind::StartTlsRejected => "STARTTLS refused".into(),
        FailureKind::CertificateNotFound => "no certificate matches TlsCertificateName".into(),
        FailureKind::DomainValidationWithoutDomain => "DomainValidation without a TlsDomain".into(),
        FailureKind::Tls { status } => format!("TLS negotiation failed with error {status}"),
        FailureKind::CertificateValidation { status } => {
            format!("the remote certificate failed validation: {status}")
        }
        FailureKind::TimedOut => "timed out waiting for the server".into(),
        FailureKind::Dropped => "the connection was closed or reset".into(),
        FailureKind::ProtocolError => "the server's answer is not SMTP".into(),
        FailureKind::ServerClosed => "the server closed the session".into(),
    }
}

/// The transport role as Exchange names it.
pub(crate) fn role(r: ServerRole) -> &'static str {
    match r {
        ServerRole::Edge => "Edge Transport",
        ServerRole::Mailbox => "Mailbox",
    }
}

/// `ConnectorType` as `Get-InboundConnector` prints it.
pub(crate) fn connector_type(t: ConnectorType) -> &'static str {
    match t {
        ConnectorType::OnPremises => "OnPremises",
        ConnectorType::Partner => "Partner",
    }
}

/// Why the mock's session ended.
pub(crate) fn close_reason(c: CloseReason) -> &'static str {
    match c {
        CloseReason::Open => "still open",
        CloseReason::Quit => "the client sent QUIT",
        CloseReason::ClientClosed => "the client closed the connection",
        CloseReason::IdleTimeout => "idle timeout",
        CloseReason::SessionTimeout => "session time limit",
        CloseReason::TooManyErrors => "too many protocol errors",
        CloseReason::Fault => "a fault closed it",
        CloseReason::TlsFailed => "the TLS handshake failed",
        CloseReason::Shutdown => "the mock shut down",
        CloseReason::IoError => "a read or write failed",
        CloseReason::Limit => "a limit of the endpoint closed it",
    }
}

/// What the header firewall did with the cross-premises headers.
pub(crate) fn cross_premises(c: CrossPremises) -> &'static str {
    match c {
        CrossPremises::Honoured => "honoured",
        CrossPremises::Dropped => "dropped",
        CrossPremises::Absent => "absent",
    }
}

/// What a firewall does with a source not on its allow-list.
pub(crate) fn refusal(r: Refusal) -> &'static str {
    match r {
        Refusal::Reset => "reset",
        Refusal::Drop => "dropped silently",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybridlab_model::exchange::SecurityStatus;

    #[test]
    fn a_tls_failure_reads_as_exchange_logs_it() {
        let k = FailureKind::Tls {
            status: SecurityStatus::NoCredentials,
        };
        let text = failure(&k);
        assert_eq!(text, "TLS negotiation failed with error NoCredentials");
        assert!(!text.contains('{'), "{text}");
    }
}
