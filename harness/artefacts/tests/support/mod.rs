//! Shared fixtures for the artefact tests: hand-written certificate facts, the classic case's
//! sessions, listings rows, and the golden-file comparison.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use hybridlab_artefacts::certs::{CertListingRow, CertificateStatus, ExchangeService, RootCaType};
use hybridlab_artefacts::connectors::{
    InboundConnectorRow, OutboundConnectorRow, ReceiveConnectorRow, SendConnectorRow,
};
use hybridlab_artefacts::protocol_log::{CertRole, ProtocolLogSession, SessionEvent, TimedEvent};
use hybridlab_artefacts::queue::{LastError, MessageRow, MessageStatus, QueueRow};
use hybridlab_model::exchange::{
    DeliveryType, DisconnectReason, QueueStatus, SecurityStatus, TlsAuthLevel,
};
use hybridlab_model::reply::Reply;
use hybridlab_model::size::ByteSize;
use hybridlab_model::x509::CertFacts;
use time::OffsetDateTime;
use time::macros::datetime;

/// The directory holding golden files.
pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `actual` with `tests/golden/<name>` byte for byte. With `UPDATE_GOLDEN=1` the file
/// is (re)written instead, for reviewing changes with `git diff`.
pub fn assert_golden(name: &str, actual: &[u8]) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        let e = String::from_utf8_lossy(&expected);
        let a = String::from_utf8_lossy(actual);
        for (i, (el, al)) in e.split('\n').zip(a.split('\n')).enumerate() {
            if el != al {
                panic!(
                    "{} differs at line {}:\n expected: {el:?}\n   actual: {al:?}",
                    path.display(),
                    i + 1
                );
            }
        }
        panic!(
            "{} differs in length: expected {} bytes, got {}",
            path.display(),
            expected.len(),
            actual.len()
        );
    }
}

/// Reads an input sample.
pub fn input(name: &str) -> Vec<u8> {
    std::fs::read(golden_dir().join("inputs").join(name)).unwrap()
}

/// Serialises a value as pretty JSON with a trailing newline (reader goldens).
pub fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s.into_bytes()
}

pub const SUBJECT: &str = "CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US";
pub const DIGICERT: &str = "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US";
pub const KEYED_THUMB: &str = "78E1BE82F683EE6D8CB9B9266FC1185AE0890C41";
pub const KEYLESS_THUMB: &str = "3D1F0A9C55E2B7414E0F6A8D2C93B1E7F4A60D18";
pub const CONNECTOR: &str = "Outbound to Office 365 4ed6f1b1-7a3c-4d2e-9b51-1c0e8f2a6d34";
pub const EOP_HOST: &str = "AM5EUR02FT017.mail.protection.outlook.com";
pub const NEXT_HOP: &str = "tenant-mail-onmicrosoft-com.mail.protection.outlook.com";

/// The on-prem certificate: `keyless` picks the key-less twin (same subject and issuer, another
/// thumbprint and serial, validity a year earlier).
pub fn contoso_cert(keyless: bool) -> CertFacts {
    CertFacts {
        subject: SUBJECT.into(),
        issuer: DIGICERT.into(),
        serial: if keyless {
            "0A7B4E2C91D35F6084A1B2C3D4E5F607".into()
        } else {
            "0C5A1F0E8B7D6C5B4A39281706F5E4D3".into()
        },
        thumbprint: if keyless { KEYLESS_THUMB } else { KEYED_THUMB }.into(),
        not_before: if keyless {
            datetime!(2019-01-15 00:00:00 UTC)
        } else {
            datetime!(2019-03-01 00:00:00 UTC)
        },
        not_after: if keyless {
            datetime!(2021-01-14 23:59:59 UTC)
        } else {
            datetime!(2021-03-01 12:00:00 UTC)
        },
        common_names: vec!["mail.contoso.com".into()],
        dns_names: vec!["mail.contoso.com".into(), "autodiscover.contoso.com".into()],
        is_self_signed: false,
        is_ca: false,
        public_key_bits: 2048,
        key_algorithm: "RSA".into(),
        extended_key_usages: vec!["ServerAuth".into(), "ClientAuth".into()],
    }
}

/// EOP's server certificate.
pub fn eop_cert() -> CertFacts {
    CertFacts {
        subject:
            "CN=mail.protection.outlook.com, O=Microsoft Corporation, L=Redmond, S=Washington, C=US"
                .into(),
        issuer: "CN=DigiCert Cloud Services CA-1, O=DigiCert Inc, C=US".into(),
        serial: "0F8A4B3E6C2D1E7F9A0B5C4D3E2F1A6B".into(),
        thumbprint: "A0C1E2F3849566778899AABBCCDDEEFF00112233".into(),
        not_before: datetime!(2018-07-24 00:00:00 UTC),
        not_after: datetime!(2020-07-24 12:00:00 UTC),
        common_names: vec!["mail.protection.outlook.com".into()],
        dns_names: vec![
            "*.mail.protection.outlook.com".into(),
            "*.mail.eo.outlook.com".into(),
            "mail.protection.outlook.com".into(),
            "outlook.com".into(),
        ],
        is_self_signed: false,
        is_ca: false,
        public_key_bits: 2048,
        key_algorithm: "RSA".into(),
        extended_key_usages: vec!["ServerAuth".into(), "ClientAuth".into()],
    }
}

fn ev(at: OffsetDateTime, event: SessionEvent) -> TimedEvent {
    TimedEvent { at, event }
}

fn sent(at: OffsetDateTime, line: &str) -> TimedEvent {
    ev(at, SessionEvent::Sent { line: line.into() })
}

fn recv(at: OffsetDateTime, code: u16, text: &str) -> TimedEvent {
    ev(
        at,
        SessionEvent::Received {
            reply: Reply::new(code, text),
        },
    )
}

pub fn eop_ehlo(with_starttls: bool) -> Reply {
    let mut lines = vec![
        format!("{EOP_HOST} Hello [198.51.100.10]"),
        "SIZE 157286400".into(),
        "PIPELINING".into(),
        "DSN".into(),
        "ENHANCEDSTATUSCODES".into(),
    ];
    if with_starttls {
        lines.push("STARTTLS".into());
    }
    for k in ["8BITMIME", "BINARYMIME", "CHUNKING", "SMTPUTF8"] {
        lines.push(k.into());
    }
    Reply::multi(250, lines)
}

/// The classic case (docs/domain.md section 5.3): the key-less twin is chosen,
/// NoCredentials, `-,,Local`.
pub fn classic_session() -> ProtocolLogSession {
    let t0 = datetime!(2019-05-02 06:32:13.801 UTC);
    let ms = |n: i64| t0 + time::Duration::milliseconds(n);
    ProtocolLogSession {
        connector_id: CONNECTOR.into(),
        session_id: "08D6CEB1A2F3C4D5".into(),
        local: Some("10.0.0.5:27436".parse().unwrap()),
        remote: "104.47.10.36:25".parse().unwrap(),
        events: vec![
            ev(ms(0), SessionEvent::AttemptingConnect),
            ev(ms(51), SessionEvent::Connected),
            recv(
                ms(109),
                220,
                &format!(
                    "{EOP_HOST} Microsoft ESMTP MAIL Service ready at Thu, 2 May 2019 06:32:13 +0000"
                ),
            ),
            sent(ms(110), "EHLO edge01.contoso.com"),
            ev(
                ms(159),
                SessionEvent::Received {
                    reply: eop_ehlo(true),
                },
            ),
            sent(ms(160), "STARTTLS"),
            recv(ms(209), 220, "2.0.0 SMTP server ready"),
            ev(
                ms(210),
                SessionEvent::Certificate {
                    role: CertRole::Sending,
                    cert: contoso_cert(true),
                },
            ),
            ev(
                ms(212),
                SessionEvent::TlsFailed {
                    status: SecurityStatus::NoCredentials,
                },
            ),
            ev(
                ms(212),
                SessionEvent::Disconnected {
                    reason: DisconnectReason::Local,
                },
            ),
        ],
    }
}

/// A successful hybrid delivery (docs/domain.md section 5.2), on another session at the same
/// time.
pub fn success_session() -> ProtocolLogSession {
    let t0 = datetime!(2019-05-02 06:32:13.850 UTC);
    let ms = |n: i64| t0 + time::Duration::milliseconds(n);
    ProtocolLogSession {
        connector_id: CONNECTOR.into(),
        session_id: "08D6CEB1A2F3C4D6".into(),
        local: Some("10.0.0.5:27437".parse().unwrap()),
        remote: "104.47.10.36:25".parse().unwrap(),
        events: vec![
            ev(ms(0), SessionEvent::AttemptingConnect),
            ev(ms(51), SessionEvent::Connected),
            recv(ms(109), 220, &format!("{EOP_HOST} Microsoft ESMTP MAIL Service ready at Thu, 2 May 2019 06:32:13 +0000")),
            sent(ms(110), "EHLO edge01.contoso.com"),
            ev(ms(159), SessionEvent::Received { reply: eop_ehlo(true) }),
            sent(ms(160), "STARTTLS"),
            recv(ms(209), 220, "2.0.0 SMTP server ready"),
            ev(ms(210), SessionEvent::Certificate { role: CertRole::Sending, cert: contoso_cert(false) }),
            ev(ms(319), SessionEvent::TlsNegotiated { text: "TLS protocol SP_PROT_TLS1_2_CLIENT negotiation succeeded using bulk encryption algorithm CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 with strength 0 bits and key exchange algorithm CALG_ECDH_EPHEM with strength 384 bits".into() }),
            ev(ms(319), SessionEvent::Certificate { role: CertRole::Remote, cert: eop_cert() }),
            sent(ms(320), "EHLO edge01.contoso.com"),
            ev(ms(369), SessionEvent::Received { reply: eop_ehlo(false) }),
            ev(ms(370), SessionEvent::Info { data: "12884901890;2019-05-02T06:30:00.900Z;1".into(), context: "sending message".into() }),
            sent(ms(370), "MAIL FROM:<alice@contoso.com> SIZE=10250"),
            sent(ms(370), "RCPT TO:<bob@contoso.mail.onmicrosoft.com>"),
            recv(ms(419), 250, "2.1.0 Sender OK"),
            recv(ms(419), 250, "2.1.5 Recipient OK"),
            sent(ms(420), "BDAT 10250 LAST"),
            recv(ms(599), 250, "2.6.0 <a1b2c3d4e5f6@EXCH01.contoso.com> [InternalId=12345678901234, Hostname=AM0PR01MB1234.eurprd01.prod.exchangelabs.com] 10250 bytes in 0.150, 66.732 KB/sec Queued mail for delivery"),
            sent(ms(600), "QUIT"),
            recv(ms(649), 221, "2.0.0 Service closing transmission channel"),
            ev(ms(650), SessionEvent::Disconnected { reason: DisconnectReason::Local }),
        ],
    }
}

/// A receive session on the on-prem side (EXO delivering inbound), for RECV logs.
pub fn receive_session() -> ProtocolLogSession {
    let t0 = datetime!(2019-05-02 06:40:02.010 UTC);
    let ms = |n: i64| t0 + time::Duration::milliseconds(n);
    ProtocolLogSession {
        connector_id: "EXCH01\\Default Frontend EXCH01".into(),
        session_id: "08D6CEB1A2F3C5E7".into(),
        local: Some("10.0.0.10:25".parse().unwrap()),
        remote: "40.107.22.55:23456".parse().unwrap(),
        events: vec![
            ev(ms(0), SessionEvent::Connected),
            ev(ms(0), SessionEvent::Info { data: "SMTPSubmit SMTPAcceptAnyRecipient SMTPAcceptAuthenticationFlag SMTPAcceptAnySender SMTPAcceptAuthoritativeDomainSender BypassAntiSpam BypassMessageSizeLimit SMTPAcceptEXCH50 AcceptRoutingHeaders".into(), context: "Set Session Permissions".into() }),
            sent(ms(1), "220 mail.contoso.com Microsoft ESMTP MAIL Service ready at Thu, 2 May 2019 06:40:02 +0000"),
            ev(ms(40), SessionEvent::ReceivedLine { line: "EHLO EUR03-AM5-obe.outbound.protection.outlook.com".into() }),
            sent(ms(41), "250  mail.contoso.com Hello [40.107.22.55] SIZE 37748736 PIPELINING DSN ENHANCEDSTATUSCODES STARTTLS X-ANONYMOUSTLS AUTH NTLM X-EXPS GSSAPI NTLM 8BITMIME BINARYMIME CHUNKING XRDST"),
            ev(ms(80), SessionEvent::ReceivedLine { line: "STARTTLS".into() }),
            sent(ms(81), "220 2.0.0 SMTP server ready"),
            ev(ms(82), SessionEvent::Certificate { role: CertRole::Sending, cert: contoso_cert(false) }),
            ev(ms(150), SessionEvent::TlsNegotiated { text: "TLS protocol SP_PROT_TLS1_2_SERVER negotiation succeeded using bulk encryption algorithm CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 with strength 0 bits and key exchange algorithm CALG_ECDH_EPHEM with strength 384 bits".into() }),
            ev(ms(150), SessionEvent::Certificate { role: CertRole::Received, cert: eop_cert() }),
            ev(ms(151), SessionEvent::Info { data: String::new(), context: "TlsDomainCapabilities='AcceptCloudServicesMail'; Status='Success'; Domain='mail.protection.outlook.com'".into() }),
            ev(ms(300), SessionEvent::ReceivedLine { line: "QUIT".into() }),
            sent(ms(301), "221 2.0.0 Closing connection."),
            ev(ms(302), SessionEvent::Disconnected { reason: DisconnectReason::Local }),
        ],
    }
}

/// The store as listings show it: key-less twin first, keyed twin, Exchange's self-signed
/// certificate, the Auth certificate.
pub fn cert_rows() -> Vec<CertListingRow> {
    let mut keyless = CertListingRow::from_facts(&contoso_cert(true), false);
    keyless.friendly_name = Some("mail.contoso.com".into());
    let mut keyed = CertListingRow::from_facts(&contoso_cert(false), true);
    keyed.services = Some(vec![
        ExchangeService::Imap,
        ExchangeService::Pop,
        ExchangeService::Iis,
        ExchangeService::Smtp,
    ]);
    keyed.status = Some(CertificateStatus::Valid);
    keyed.root_ca_type = Some(RootCaType::ThirdParty);
    keyed.friendly_name = Some("mail.contoso.com 2019".into());
    keyed.private_key_exportable = Some(true);
    let edge = CertListingRow {
        thumbprint: "5E9A01B2C3D4E5F60718293A4B5C6D7E8F901A2B".into(),
        subject: "CN=EDGE01".into(),
        issuer: "CN=EDGE01".into(),
        not_before: Some(datetime!(2019-02-11 09:14:22 UTC)),
        not_after: Some(datetime!(2024-02-11 09:14:22 UTC)),
        has_private_key: Some(true),
        services: Some(vec![ExchangeService::Smtp]),
        certificate_domains: vec!["EDGE01".into(), "edge01.contoso.com".into()],
        certificate_domains_truncated: false,
        is_self_signed: Some(true),
        status: Some(CertificateStatus::Valid),
        serial_number: Some("1F2E3D4C5B6A79884A1B2C3D4E5F6071".into()),
        public_key_size: Some(2048),
        root_ca_type: Some(RootCaType::Registry),
        friendly_name: Some("Microsoft Exchange".into()),
        private_key_exportable: Some(false),
        enhanced_key_usage: vec!["Server Authentication (1.3.6.1.5.5.7.3.1)".into()],
        store: Some("LocalMachine\\My".into()),
    };
    let auth = CertListingRow {
        thumbprint: "8BB44C52F03EF30AEAB27528A1019F0887A7A383".into(),
        subject: "CN=Microsoft Exchange Server Auth Certificate".into(),
        issuer: "CN=Microsoft Exchange Server Auth Certificate".into(),
        not_before: Some(datetime!(2019-02-11 09:20:01 UTC)),
        not_after: Some(datetime!(2024-01-16 09:20:01 UTC)),
        has_private_key: Some(true),
        services: Some(vec![ExchangeService::Smtp]),
        certificate_domains: vec![],
        certificate_domains_truncated: false,
        is_self_signed: Some(true),
        status: Some(CertificateStatus::Valid),
        serial_number: Some("310196A39840EB964D5E2FD29D3B431C".into()),
        public_key_size: Some(2048),
        root_ca_type: Some(RootCaType::None),
        friendly_name: Some("Microsoft Exchange Server Auth Certificate".into()),
        private_key_exportable: Some(true),
        enhanced_key_usage: vec!["Server Authentication (1.3.6.1.5.5.7.3.1)".into()],
        store: Some("LocalMachine\\My".into()),
    };
    vec![keyless, keyed, edge, auth]
}

/// The classic case's queue.
pub fn classic_queue() -> QueueRow {
    QueueRow {
        identity: "EDGE01\\3".into(),
        delivery_type: DeliveryType::SmartHostConnectorDelivery,
        status: QueueStatus::Retry,
        message_count: 12,
        next_hop_domain: "contoso.mail.onmicrosoft.com".into(),
        tls_domain: Some("mail.protection.outlook.com".into()),
        next_hop_connector: Some("4ed6f1b1-7a3c-4d2e-9b51-1c0e8f2a6d34".into()),
        last_error: Some(LastError {
            led: "451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out"
                .into(),
            msg: String::new(),
            fqdn: NEXT_HOP.into(),
            ip: "104.47.10.36".into(),
            lrt: "5/2/2019 6:32:14 AM".into(),
        }),
        retry_count: 7,
        first_retry_time: Some(datetime!(2019-05-02 04:10:02 UTC)),
        last_retry_time: Some(datetime!(2019-05-02 06:32:14 UTC)),
        next_retry_time: Some(datetime!(2019-05-02 07:02:14 UTC)),
    }
}

/// A healthy queue.
pub fn idle_queue() -> QueueRow {
    QueueRow {
        identity: "EDGE01\\Submission".into(),
        delivery_type: DeliveryType::Undefined,
        status: QueueStatus::Ready,
        message_count: 0,
        next_hop_domain: "Submission".into(),
        tls_domain: None,
        next_hop_connector: Some("00000000-0000-0000-0000-000000000000".into()),
        last_error: None,
        retry_count: 0,
        first_retry_time: None,
        last_retry_time: None,
        next_retry_time: None,
    }
}

/// A message in the classic queue.
pub fn classic_message() -> MessageRow {
    let q = classic_queue();
    MessageRow {
        identity: "EDGE01\\3\\12884901890".into(),
        queue: "EDGE01\\3".into(),
        subject: "Quarterly figures".into(),
        from_address: "alice@contoso.com".into(),
        status: MessageStatus::Retry,
        size_bytes: Some(10_250),
        message_source_name: "SMTP:Default internal receive connector EDGE01".into(),
        source_ip: "10.0.0.20".into(),
        scl: Some(-1),
        date_received: Some(datetime!(2019-05-02 04:09:58 UTC)),
        expiration_time: Some(datetime!(2019-05-04 04:09:58 UTC)),
        last_error: q.last_error,
        retry_count: 7,
        recipients: vec!["bob@contoso.mail.onmicrosoft.com".into()],
        internet_message_id: "<a1b2c3d4e5f6@EXCH01.contoso.com>".into(),
    }
}

/// The HCW send connector pinned to the certificate.
pub fn hcw_send_connector() -> SendConnectorRow {
    SendConnectorRow {
        name: "Outbound to Office 365 4ed6f1b1-7a3c-4d2e-9b51-1c0e8f2a6d34".into(),
        identity: None,
        guid: Some("4ed6f1b1-7a3c-4d2e-9b51-1c0e8f2a6d34".into()),
        address_spaces: vec!["smtp:contoso.mail.onmicrosoft.com;1".into()],
        cloud_services_mail_enabled: Some(true),
        comment: None,
        connection_inactivity_timeout: Some(time::Duration::minutes(10)),
        connector_type: Some("Default".into()),
        dns_routing_enabled: Some(true),
        domain_secure_enabled: Some(false),
        enabled: Some(true),
        error_policies: Some("Default".into()),
        force_helo: Some(false),
        fqdn: Some("mail.contoso.com".into()),
        frontend_proxy_enabled: Some(false),
        ignore_starttls: Some(false),
        is_scoped_connector: Some(false),
        max_message_size: Some(ByteSize::Bytes(36_700_160)),
        port: Some(25),
        protocol_logging_level: Some("Verbose".into()),
        require_oorg: Some(false),
        require_tls: Some(true),
        smart_host_auth_mechanism: Some("None".into()),
        smart_hosts: vec![],
        smtp_max_messages_per_connection: Some(20),
        source_ip_address: Some("0.0.0.0".into()),
        source_transport_servers: vec!["EDGE01".into()],
        tls_auth_level: Some(TlsAuthLevel::DomainValidation),
        tls_certificate_name: Some(format!("<I>{DIGICERT}<S>{SUBJECT}")),
        tls_domain: Some("mail.protection.outlook.com".into()),
        use_external_dns_servers_enabled: Some(false),
    }
}

pub fn receive_connector() -> ReceiveConnectorRow {
    ReceiveConnectorRow {
        name: "Default Frontend EXCH01".into(),
        identity: Some("EXCH01\\Default Frontend EXCH01".into()),
        server: Some("EXCH01".into()),
        transport_role: Some("FrontendTransport".into()),
        auth_mechanism: vec![
            "Tls".into(),
            "Integrated".into(),
            "BasicAuth".into(),
            "BasicAuthRequireTLS".into(),
            "ExchangeServer".into(),
        ],
        banner: None,
        bindings: vec!["[::]:25".into(), "0.0.0.0:25".into()],
        enabled: Some(true),
        fqdn: Some("mail.contoso.com".into()),
        tls_certificate_name: Some(format!("<I>{DIGICERT}<S>{SUBJECT}")),
        tls_domain_capabilities: vec!["mail.protection.outlook.com:AcceptCloudServicesMail".into()],
        require_tls: Some(false),
        permission_groups: vec![
            "AnonymousUsers".into(),
            "ExchangeServers".into(),
            "ExchangeLegacyServers".into(),
        ],
        remote_ip_ranges: vec![
            "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".into(),
            "0.0.0.0-255.255.255.255".into(),
        ],
        max_message_size: Some(ByteSize::Bytes(37_748_736)),
        protocol_logging_level: Some("Verbose".into()),
        connection_timeout: Some(time::Duration::minutes(10)),
        connection_inactivity_timeout: Some(time::Duration::minutes(5)),
        suppress_x_anonymous_tls: Some(false),
    }
}

pub fn inbound_connector() -> InboundConnectorRow {
    InboundConnectorRow {
        name: "Inbound from 3a5f0b1c-8d2e-4f6a-9b7c-1d2e3f4a5b6c".into(),
        identity: None,
        enabled: Some(true),
        connector_type: Some("OnPremises".into()),
        connector_source: Some("HybridWizard".into()),
        comment: None,
        sender_ip_addresses: vec![],
        sender_domains: vec!["smtp:*;1".into()],
        associated_accepted_domains: vec![],
        require_tls: Some(true),
        restrict_domains_to_ip_addresses: Some(false),
        restrict_domains_to_certificate: Some(false),
        cloud_services_mail_enabled: Some(true),
        treat_messages_as_internal: Some(false),
        tls_sender_certificate_name: Some("mail.contoso.com".into()),
    }
}

pub fn outbound_connector() -> OutboundConnectorRow {
    OutboundConnectorRow {
        name: "Outbound to 3a5f0b1c-8d2e-4f6a-9b7c-1d2e3f4a5b6c".into(),
        identity: None,
        enabled: Some(true),
        use_mx_record: Some(false),
        comment: None,
        connector_type: Some("OnPremises".into()),
        connector_source: Some("HybridWizard".into()),
        recipient_domains: vec!["contoso.com".into(), "fabrikam.com".into()],
        smart_hosts: vec!["mail.contoso.com".into()],
        tls_domain: Some("mail.contoso.com".into()),
        tls_settings: Some(TlsAuthLevel::DomainValidation),
        is_transport_rule_scoped: Some(false),
        route_all_messages_via_on_premises: Some(false),
        cloud_services_mail_enabled: Some(true),
        all_accepted_domains: Some(false),
        test_mode: Some(false),
        is_validated: Some(true),
    }
}
