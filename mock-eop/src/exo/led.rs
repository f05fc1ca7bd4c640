//! Exchange Online's LEDs for a delivery through an outbound connector, built with
//! [`hybridlab_model::led::Led`]: what failed, in the words the message trace shows
//! (`450 4.4.316 Connection refused [Message=Socket error code 10061] [LastAttemptedServerName=...]
//! [LastAttemptedIP=...] [SmtpSecurity=-2;-2] [<service host> <time> <session id>]`), and the
//! `550 5.4.3xx Message expired ...` texts of the final failure.
//!
//! Shapes from public cases (Microsoft Q&A threads, the mail flow intelligence page
//! <https://learn.microsoft.com/en-us/defender-office-365/connectors-mail-flow-intelligence>,
//! the Exchange Team blog on hybrid TLS certificates). Not confirmed, so chosen here: the
//! `SmtpSecurity` pair is `-1;-1` for certificate failures and `-2;-2` for connect and TLS
//! failures and is left out for a server's reply; `4.4.318` carries no `[Message=...]`.

use std::net::SocketAddr;

use hybridlab_model::delivery::{CertificateFailureForm, ChainStatus};
use hybridlab_model::led::{Led, LedItem, ReplyTag};
use hybridlab_model::reply::{EnhancedCode, Reply};
use time::OffsetDateTime;

/// Why a TLS handshake failed, in Exchange Online's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsFailure {
    /// The peer closed or refused the handshake (alerts, no common version or suite).
    SocketError,
    /// The connection was reset during the handshake.
    ConnectionAborted,
    /// The peer's bytes were not TLS (an SMTP-inspecting device, a server answering in clear).
    IllegalMessage,
}

impl TlsFailure {
    /// The `[Message=...]` text.
    pub fn message(self) -> &'static str {
        match self {
            Self::SocketError => "451 4.4.0 TLS negotiation failed with error SocketError",
            Self::ConnectionAborted => {
                "451 4.4.0 TLS negotiation failed with error ConnectionAborted"
            }
            Self::IllegalMessage => "451 4.4.0 Security status IllegalMessage",
        }
    }
}

/// Why a certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateProblem {
    /// The chain check failed.
    Chain(ChainStatus),
    /// DomainValidation: the certificate does not carry the expected name.
    SubjectMismatch,
}

impl CertificateProblem {
    /// The status word that starts the `[Message=...]` text.
    pub fn word(&self) -> &str {
        match self {
            Self::Chain(c) => c.exo_word(),
            Self::SubjectMismatch => "SubjectMismatch",
        }
    }
}

/// Why one attempt did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The smart host's name did not resolve.
    Dns(String),
    /// TCP connect refused (10061).
    ConnectRefused,
    /// TCP connect timed out (10060).
    ConnectTimedOut,
    /// TCP connect failed otherwise; the Winsock error code.
    ConnectFailed(u32),
    /// TLS required and the EHLO reply offered no STARTTLS.
    StartTlsRequired,
    /// The handshake failed.
    Tls(TlsFailure),
    /// The certificate failed the connector's TlsSettings.
    Certificate {
        /// What is wrong.
        problem: CertificateProblem,
        /// The name expected (TlsDomain, else the host).
        expected: String,
        /// The presented certificate's subject, .NET rendering.
        subject: String,
        /// Its SHA-1 thumbprint (40 hex).
        thumbprint: String,
    },
    /// The server answered the session or a command with this (transient) reply.
    Reply(Reply),
    /// The server's bytes were not SMTP.
    ProtocolError,
    /// The server closed the connection, or stopped answering, before the message was accepted.
    ClosedAbruptly,
}

/// Where and when a failure happened (the LED's bracketed parts).
#[derive(Debug, Clone, Copy)]
pub struct LedContext<'a> {
    /// `LastAttemptedServerName`.
    pub target_host: &'a str,
    /// `LastAttemptedIP` (address and port), when known.
    pub target: Option<SocketAddr>,
    /// The service host of the tag.
    pub service_host: &'a str,
    /// The session id of the tag.
    pub session_id: &'a str,
    /// When.
    pub now: OffsetDateTime,
    /// Which code certificate failures get.
    pub form: CertificateFailureForm,
}

fn code(s: &str) -> Option<EnhancedCode> {
    EnhancedCode::parse_prefix(s).map(|(c, _)| c)
}

/// ISO 8601 with milliseconds and `Z`, as the tag writes it.
pub fn iso_millis(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The LED of a deferral.
pub fn deferral(failure: &Failure, ctx: &LedContext<'_>) -> Led {
    const CANNOT: (&str, &str) = ("4.4.317", "Cannot connect to remote server");
    let (enhanced, text, message, security): (&str, &str, Option<String>, Option<&str>) =
        match failure {
            Failure::Dns(m) => ("4.4.312", "DNS query failed", Some(m.clone()), None),
            Failure::ConnectRefused => (
                "4.4.316",
                "Connection refused",
                Some("Socket error code 10061".into()),
                Some("-2;-2"),
            ),
            Failure::ConnectTimedOut => (
                "4.4.315",
                "Connection timed out",
                Some("Socket error code 10060".into()),
                Some("-2;-2"),
            ),
            Failure::ConnectFailed(c) => (
                CANNOT.0,
                CANNOT.1,
                Some(format!(
                    "Failed to connect. Winsock error code: {c}, Win32 error code: {c}"
                )),
                Some("-2;-2"),
            ),
            Failure::StartTlsRequired => (
                CANNOT.0,
                CANNOT.1,
                Some("451 5.7.3 STARTTLS is required to send mail".into()),
                Some("-2;-2"),
            ),
            Failure::Tls(t) => (CANNOT.0, CANNOT.1, Some(t.message().into()), Some("-2;-2")),
            Failure::Certificate {
                problem,
                expected,
                subject,
                thumbprint,
            } => {
                let (e, t) = match ctx.form {
                    CertificateFailureForm::CannotConnect => CANNOT,
                    CertificateFailureForm::CertificateValidationFailed => {
                        ("4.7.320", "Certificate validation failed")
                    }
                };
                (
                    e,
                    t,
                    Some(format!(
                        "{} Expected Subject: {expected}. Presented Subject: {subject}. Thumbprint: {thumbprint}.",
                        problem.word()
                    )),
                    Some("-1;-1"),
                )
            }
            Failure::Reply(r) => (CANNOT.0, CANNOT.1, Some(r.one_line()), None),
            Failure::ProtocolError => (
                CANNOT.0,
                CANNOT.1,
                Some("421 4.4.0 Remote server response was not RFC conformant".into()),
                Some("-2;-2"),
            ),
            Failure::ClosedAbruptly => ("4.4.318", "Connection was closed abruptly", None, None),
        };
    let mut led = Led::new(450, code(enhanced), text);
    if let Some(m) = message {
        led = led.with(LedItem::Message(m));
    }
    led = led.with(LedItem::LastAttemptedServerName(
        ctx.target_host.to_string(),
    ));
    if let Some(t) = ctx.target {
        led = led.with(LedItem::LastAttemptedIp(t.to_string()));
    }
    if let Some(s) = security {
        led = led.with(LedItem::SmtpSecurity(s.into()));
    }
    led.with(LedItem::Tag(ReplyTag {
        host: ctx.service_host.to_string(),
        time: Some(iso_millis(ctx.now)),
        session: Some(ctx.session_id.to_string()),
    }))
}

/// The LED of a permanent failure: the server's reply as recorded.
pub fn permanent(reply: &Reply) -> Led {
    Led::parse(&reply.one_line()).unwrap_or_else(|| Led::new(reply.code, None, reply.text()))
}

/// The LED of the final failure when the message expires, from the last deferral:
/// `550 5.4.316 Message expired, connection refused(<message>)`,
/// `550 5.4.317 Message expired, cannot connect to remote server(<message>)`, else
/// `550 5.4.300 Message expired -> <last LED>`.
pub fn expired(last: Option<&Led>) -> Led {
    let Some(last) = last else {
        return Led::new(550, code("5.4.300"), "Message expired");
    };
    let detail = last.message().unwrap_or(&last.text).to_string();
    match last.enhanced.map(|e| e.to_string()).as_deref() {
        Some("4.4.316") => Led::new(
            550,
            code("5.4.316"),
            format!("Message expired, connection refused({detail})"),
        ),
        Some("4.4.317" | "4.7.320") => Led::new(
            550,
            code("5.4.317"),
            format!("Message expired, cannot connect to remote server({detail})"),
        ),
        _ => {
            let plain = Led {
                items: Vec::new(),
                ..last.clone()
            };
            Led::new(550, code("5.4.300"), format!("Message expired -> {plain}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> LedContext<'static> {
        LedContext {
            target_host: "mail.contoso.com",
            target: Some("203.0.113.10:25".parse().unwrap()),
            service_host: "DM6NAM12FT012.eop-nam12.prod.protection.outlook.com",
            session_id: "08DB1DF24DB12D84",
            now: time::macros::datetime!(2023-03-07 18:46:06.378 UTC),
            form: CertificateFailureForm::CannotConnect,
        }
    }

    #[test]
    fn the_public_shapes() {
        assert_eq!(
            deferral(&Failure::Tls(TlsFailure::SocketError), &ctx()).to_string(),
            "450 4.4.317 Cannot connect to remote server [Message=451 4.4.0 TLS negotiation failed with error SocketError] [LastAttemptedServerName=mail.contoso.com] [LastAttemptedIP=203.0.113.10:25] [SmtpSecurity=-2;-2] [DM6NAM12FT012.eop-nam12.prod.protection.outlook.com 2023-03-07T18:46:06.378Z 08DB1DF24DB12D84]"
        );
        let refused = deferral(&Failure::ConnectRefused, &ctx());
        assert!(
            refused
                .to_string()
                .starts_with("450 4.4.316 Connection refused [Message=Socket error code 10061] [LastAttemptedServerName=mail.contoso.com]")
        );
        let cert = Failure::Certificate {
            problem: CertificateProblem::SubjectMismatch,
            expected: "mail.contoso.com".into(),
            subject: "CN=EXCH01".into(),
            thumbprint: "3A04A91124FAAB142BCFCA13C2B13EF1E820E993".into(),
        };
        let led = deferral(&cert, &ctx());
        assert_eq!(
            led.message(),
            Some(
                "SubjectMismatch Expected Subject: mail.contoso.com. Presented Subject: CN=EXCH01. Thumbprint: 3A04A91124FAAB142BCFCA13C2B13EF1E820E993."
            )
        );
        assert_eq!(
            led.thumbprint().as_deref(),
            Some("3A04A91124FAAB142BCFCA13C2B13EF1E820E993")
        );
        let old = LedContext {
            form: CertificateFailureForm::CertificateValidationFailed,
            ..ctx()
        };
        assert!(
            deferral(&cert, &old)
                .to_string()
                .starts_with("450 4.7.320 Certificate validation failed [Message=SubjectMismatch")
        );
        let r = deferral(
            &Failure::Reply(Reply::new(
                452,
                "4.3.1 Insufficient system resources (UsedDiskSpace[C:\\Queue])",
            )),
            &ctx(),
        );
        assert_eq!(
            r.message(),
            Some("452 4.3.1 Insufficient system resources (UsedDiskSpace[C:\\Queue])")
        );
        // what the LED writer gives, the LED reader reads back
        for f in [
            Failure::ConnectTimedOut,
            Failure::ClosedAbruptly,
            Failure::Dns("x".into()),
            cert,
        ] {
            let led = deferral(&f, &ctx());
            assert_eq!(Led::parse(&led.to_string()).unwrap(), led);
        }
    }

    #[test]
    fn expiry_texts() {
        let refused = deferral(&Failure::ConnectRefused, &ctx());
        assert_eq!(
            expired(Some(&refused)).to_string(),
            "550 5.4.316 Message expired, connection refused(Socket error code 10061)"
        );
        let tls = deferral(&Failure::StartTlsRequired, &ctx());
        assert_eq!(
            expired(Some(&tls)).to_string(),
            "550 5.4.317 Message expired, cannot connect to remote server(451 5.7.3 STARTTLS is required to send mail)"
        );
        let closed = deferral(&Failure::ClosedAbruptly, &ctx());
        assert_eq!(
            expired(Some(&closed)).to_string(),
            "550 5.4.300 Message expired -> 450 4.4.318 Connection was closed abruptly"
        );
        assert_eq!(
            permanent(&Reply::new(550, "5.1.1 User unknown")).to_string(),
            "550 5.1.1 User unknown"
        );
    }
}
