//! Rules no sample bundle exercises, on artefacts the lab writes: the lab's own protocol-log,
//! certificate, connector and queue writers produce the files, the same readers that read a
//! customer's export read them back, and the engine diagnoses them. Certificates are generated at
//! test time (rcgen, through the lab's certificate store).

use hybridlab_artefacts::ArtefactReader;
use hybridlab_artefacts::certs::{
    CertListingRow, ExchangeService, write_cert_provider_list, write_exchange_certificate_list,
};
use hybridlab_artefacts::connectors::{
    InboundConnectorRow, SendConnectorRow, write_inbound_connector_list, write_send_connector_list,
};
use hybridlab_artefacts::format_list::FlOptions;
use hybridlab_artefacts::protocol_log::{
    CertBlockStyle, CertRole, LogWriterOptions, ProtocolLogSession, SessionEvent, TimedEvent,
    write_log,
};
use hybridlab_artefacts::queue::{LastError, QueueRow, write_queue_list};
use hybridlab_diagnose::{FindingId, Options, Report, diagnose};
use hybridlab_model::exchange::{
    DeliveryType, DisconnectReason, QueueStatus, SecurityStatus, TlsAuthLevel,
};
use hybridlab_model::reply::Reply;
use hybridlab_model::x509::CertFacts;
use hybridlab_onprem::certstore::{CertStore, fixtures};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-05-02 06:30:00 UTC);
const CONNECTOR: &str = "Outbound to Office 365";

/// A session built event by event, one millisecond apart.
struct Session {
    t: OffsetDateTime,
    s: ProtocolLogSession,
}

impl Session {
    fn new(id: u32, at: OffsetDateTime) -> Self {
        let mut s = Self {
            t: at,
            s: ProtocolLogSession {
                connector_id: CONNECTOR.to_string(),
                session_id: format!("08DE64A0B7C1{id:04X}"),
                local: Some("10.0.0.5:27417".parse().unwrap()),
                remote: "104.47.10.36:25".parse().unwrap(),
                events: Vec::new(),
            },
        };
        s.ev(SessionEvent::AttemptingConnect)
            .ev(SessionEvent::Connected);
        s
    }

    fn ev(&mut self, e: SessionEvent) -> &mut Self {
        self.s.events.push(TimedEvent {
            at: self.t,
            event: e,
        });
        self.t += Duration::milliseconds(1);
        self
    }

    fn wait(&mut self, d: Duration) -> &mut Self {
        self.t += d;
        self
    }

    fn recv(&mut self, code: u16, text: &str) -> &mut Self {
        self.ev(SessionEvent::Received {
            reply: Reply::new(code, text),
        })
    }

    fn send(&mut self, line: &str) -> &mut Self {
        self.ev(SessionEvent::Sent {
            line: line.to_string(),
        })
    }

    /// Banner, EHLO (STARTTLS offered, `Hello [ip]`), STARTTLS, 220.
    fn through_starttls(&mut self, ip: &str) -> &mut Self {
        self.recv(
            220,
            "AM5EUR02FT017.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready",
        )
        .send("EHLO mail.contoso.com")
        .ev(SessionEvent::Received {
            reply: Reply::multi(
                250,
                vec![
                    format!("AM5EUR02FT017.mail.protection.outlook.com Hello [{ip}]"),
                    "SIZE 157286400".into(),
                    "PIPELINING".into(),
                    "STARTTLS".into(),
                    "8BITMIME".into(),
                ],
            ),
        })
        .send("STARTTLS")
        .recv(220, "2.0.0 SMTP server ready")
    }

    fn sending(&mut self, cert: &CertFacts) -> &mut Self {
        self.ev(SessionEvent::Certificate {
            role: CertRole::Sending,
            cert: cert.clone(),
        })
    }

    fn tls_ok(&mut self, remote: &CertFacts) -> &mut Self {
        self.ev(SessionEvent::TlsNegotiated {
            text: "TLS protocol SP_PROT_TLS1_2_CLIENT negotiation succeeded using bulk encryption algorithm CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 with strength 0 bits and key exchange algorithm CALG_ECDH_EPHEM with strength 384 bits".into(),
        })
        .ev(SessionEvent::Certificate { role: CertRole::Remote, cert: remote.clone() })
    }

    fn mail(&mut self, rcpt_reply: (u16, &str)) -> &mut Self {
        self.send("EHLO mail.contoso.com")
            .recv(
                250,
                "AM5EUR02FT017.mail.protection.outlook.com Hello [198.51.100.10]",
            )
            .send("MAIL FROM:<alice@contoso.com> SIZE=2048")
            .send("RCPT TO:<bob@fabrikam.com>")
            .recv(250, "2.1.0 Sender OK")
            .recv(rcpt_reply.0, rcpt_reply.1)
    }

    fn end(&mut self) -> ProtocolLogSession {
        self.ev(SessionEvent::Disconnected {
            reason: DisconnectReason::Local,
        });
        self.s.clone()
    }
}

/// EOP's certificate as the send log records it.
fn eop_cert() -> CertFacts {
    CertFacts {
        subject:
            "CN=mail.protection.outlook.com, O=Microsoft Corporation, L=Redmond, S=Washington, C=US"
                .into(),
        issuer: "CN=DigiCert Cloud Services CA-1, O=DigiCert Inc, C=US".into(),
        serial: "0C4F2210F8330BC0987F30BBE8E35A65".into(),
        thumbprint: "6A24BF590212BEA48871C66A218D37FB572CEBB9".into(),
        not_before: datetime!(2026-01-01 00:00 UTC),
        not_after: datetime!(2027-01-01 00:00 UTC),
        common_names: vec!["mail.protection.outlook.com".into()],
        dns_names: vec![
            "mail.protection.outlook.com".into(),
            "*.mail.protection.outlook.com".into(),
        ],
        is_self_signed: false,
        is_ca: false,
        public_key_bits: 2048,
        key_algorithm: "RSA".into(),
        extended_key_usages: vec![],
    }
}

fn hybrid_connector(tls_name: Option<String>) -> SendConnectorRow {
    SendConnectorRow {
        name: CONNECTOR.into(),
        address_spaces: vec!["smtp:contoso.mail.onmicrosoft.com;1".into()],
        cloud_services_mail_enabled: Some(true),
        connection_inactivity_timeout: Some(Duration::minutes(10)),
        dns_routing_enabled: Some(true),
        enabled: Some(true),
        fqdn: Some("mail.contoso.com".into()),
        ignore_starttls: Some(false),
        require_tls: Some(true),
        tls_auth_level: Some(TlsAuthLevel::DomainValidation),
        tls_certificate_name: tls_name,
        tls_domain: Some("mail.protection.outlook.com".into()),
        ..SendConnectorRow::default()
    }
}

fn queue(led: &str) -> QueueRow {
    QueueRow {
        identity: "EDGE01\\3".into(),
        delivery_type: DeliveryType::DnsConnectorDelivery,
        status: QueueStatus::Retry,
        message_count: 3,
        next_hop_domain: "contoso.mail.onmicrosoft.com".into(),
        tls_domain: Some("mail.protection.outlook.com".into()),
        next_hop_connector: None,
        last_error: Some(LastError {
            led: led.into(),
            msg: String::new(),
            fqdn: "contoso-mail-onmicrosoft-com.mail.protection.outlook.com".into(),
            ip: "104.47.10.36".into(),
            lrt: "5/2/2026 6:40:00 AM".into(),
        }),
        retry_count: 2,
        first_retry_time: None,
        last_retry_time: None,
        next_retry_time: None,
    }
}

/// Listing rows of a lab store, keyed ones enabled for SMTP.
fn rows(store: &CertStore) -> Vec<CertListingRow> {
    store
        .my()
        .iter()
        .map(|e| {
            let mut r = CertListingRow::from_facts(&e.facts, e.has_private_key);
            r.services = Some(if e.has_private_key {
                vec![ExchangeService::Smtp]
            } else {
                vec![]
            });
            r
        })
        .collect()
}

#[derive(Default)]
struct Bundle {
    sessions: Vec<ProtocolLogSession>,
    style: CertBlockStyle,
    certs: Vec<CertListingRow>,
    connectors: Vec<SendConnectorRow>,
    inbound: Vec<InboundConnectorRow>,
    queues: Vec<QueueRow>,
}

impl Bundle {
    fn diagnose(&self) -> Report {
        let mut r = ArtefactReader::new();
        let fl = FlOptions::default();
        if !self.sessions.is_empty() {
            let log = write_log(
                &self.sessions,
                &LogWriterOptions::send().with_cert_style(self.style),
            );
            r.add_bytes("SEND20260502-1.LOG", log.as_bytes());
        }
        if !self.certs.is_empty() {
            r.add_bytes(
                "store.txt",
                write_cert_provider_list(&self.certs, &fl).as_bytes(),
            );
            r.add_bytes(
                "gec.txt",
                write_exchange_certificate_list(&self.certs, &fl).as_bytes(),
            );
        }
        if !self.connectors.is_empty() {
            r.add_bytes(
                "connectors.txt",
                write_send_connector_list(&self.connectors, &fl).as_bytes(),
            );
        }
        if !self.inbound.is_empty() {
            r.add_bytes(
                "exo.txt",
                write_inbound_connector_list(&self.inbound, &fl).as_bytes(),
            );
        }
        if !self.queues.is_empty() {
            r.add_bytes("queue.txt", write_queue_list(&self.queues, &fl).as_bytes());
        }
        diagnose(&r.finish(), &Options::default())
    }
}

fn classic(keyless_first: bool) -> (Bundle, String, String) {
    let store = CertStore::build(&fixtures::classic_twins(keyless_first), T0).unwrap();
    let nokey = store.entry("twin-nokey").unwrap();
    let keyed = store.entry("keyed").unwrap();
    let chosen = if keyless_first { nokey } else { keyed };
    let mut sessions = Vec::new();
    for k in 0..3u32 {
        let mut s = Session::new(k, T0 + Duration::minutes(10 * i64::from(k)));
        s.through_starttls("198.51.100.10").sending(&chosen.facts);
        if keyless_first {
            s.ev(SessionEvent::TlsFailed {
                status: SecurityStatus::NoCredentials,
            });
        } else {
            s.tls_ok(&eop_cert()).mail((250, "2.1.5 Recipient OK"));
        }
        sessions.push(s.end());
    }
    let b = Bundle {
        sessions,
        certs: rows(&store),
        connectors: vec![hybrid_connector(Some(keyed.x509_identifier()))],
        queues: if keyless_first {
            vec![queue(
                "451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out",
            )]
        } else {
            vec![]
        },
        ..Bundle::default()
    };
    (
        b,
        nokey.facts.thumbprint.clone(),
        keyed.facts.thumbprint.clone(),
    )
}

#[test]
fn lab_written_classic_case_diagnoses_to_the_keyless_twin() {
    let (b, nokey, keyed) = classic(true);
    let r = b.diagnose();
    assert_eq!(r.top_id(), Some("cert-keyless-duplicate"), "{:?}", r.ids());
    assert!(r.find(FindingId::CertInvisibleToEms).is_some());
    assert!(r.find(FindingId::ConnectionTimeout).is_none());
    assert!(
        r.find(FindingId::LintTlsCertificateNameAmbiguous).is_none(),
        "explained by the twin"
    );
    let fix = r.top().unwrap().fix.join("\n");
    assert!(
        fix.contains(&format!("Cert:\\LocalMachine\\My\\{nokey} | Remove-Item")),
        "{fix}"
    );
    assert!(!fix.contains(&format!("{keyed} | Remove-Item")), "{fix}");
    // Most recent occurrence first.
    let top = r.top().unwrap();
    assert!(
        top.evidence[0].text.contains(&nokey)
            && top.evidence[0].text.contains("Certificate thumbprint")
    );
    assert!(top.evidence[1].text.contains("NoCredentials"));
    assert!(
        top.evidence[0].text.starts_with("2026-05-02T06:50:00"),
        "{}",
        top.evidence[0].text
    );
}

#[test]
fn keyed_twin_enumerated_first_only_warns_about_the_ambiguity() {
    let (b, _, _) = classic(false);
    let r = b.diagnose();
    assert!(!r.has_error(), "{:?}", r.ids());
    assert_eq!(
        r.top_id(),
        Some("lint-tls-certificate-name-ambiguous"),
        "{:?}",
        r.ids()
    );
}

#[test]
fn one_line_certificate_blocks_read_the_same() {
    let (mut b, _, _) = classic(true);
    b.style = CertBlockStyle::OneLine;
    assert_eq!(b.diagnose().top_id(), Some("cert-keyless-duplicate"));
}

#[test]
fn without_a_twin_the_key_is_missing() {
    let (mut b, nokey, keyed) = classic(true);
    b.certs.retain(|c| c.thumbprint != keyed);
    let r = b.diagnose();
    assert_eq!(
        r.top_id(),
        Some("cert-missing-private-key"),
        "{:?}",
        r.ids()
    );
    let fix = r.top().unwrap().fix.join("\n");
    assert!(!fix.contains("Remove-Item"), "{fix}");
    assert!(
        fix.contains(&format!("-Thumbprint {nokey} -Services SMTP")),
        "{fix}"
    );
}

fn inbound(name: Option<&str>) -> InboundConnectorRow {
    InboundConnectorRow {
        name: "Inbound from 5d2e7a90".into(),
        enabled: Some(true),
        connector_type: Some("OnPremises".into()),
        sender_domains: vec!["smtp:*;1".into()],
        require_tls: Some(true),
        restrict_domains_to_ip_addresses: Some(false),
        restrict_domains_to_certificate: Some(false),
        cloud_services_mail_enabled: Some(true),
        tls_sender_certificate_name: name.map(str::to_string),
        ..InboundConnectorRow::default()
    }
}

fn self_signed() -> CertFacts {
    CertFacts {
        subject: "CN=EXCH01".into(),
        issuer: "CN=EXCH01".into(),
        serial: "4895A1F7651083BF6C6200713A0EDDF4".into(),
        thumbprint: "8BAA856DBF117EC70DCB243A289E6B525961AB9C".into(),
        not_before: datetime!(2024-01-01 00:00 UTC),
        not_after: datetime!(2029-01-01 00:00 UTC),
        common_names: vec!["EXCH01".into()],
        dns_names: vec!["EXCH01".into(), "exch01.corp.contoso.com".into()],
        is_self_signed: true,
        is_ca: false,
        public_key_bits: 2048,
        key_algorithm: "RSA".into(),
        extended_key_usages: vec![],
    }
}

#[test]
fn a_self_signed_certificate_to_a_certificate_attributed_tenant_is_no_client_certificate() {
    let mut s = Session::new(1, T0);
    s.through_starttls("198.51.100.10")
        .sending(&self_signed())
        .tls_ok(&eop_cert())
        .mail((550, "5.7.64 TenantAttribution; Relay Access Denied [AM4PEPF00027A6C.eop-EUR04.prod.protection.outlook.com]"));
    let b = Bundle {
        sessions: vec![s.end()],
        connectors: vec![hybrid_connector(None)],
        inbound: vec![inbound(Some("mail.contoso.com"))],
        ..Bundle::default()
    };
    let r = b.diagnose();
    assert_eq!(r.top_id(), Some("no-client-certificate"), "{:?}", r.ids());
    assert!(r.find(FindingId::RelayDeniedUnattributed).is_some());
    assert!(r.find(FindingId::InboundConnectorCertMismatch).is_none());
    // IP attribution (no TlsSenderCertificateName): the self-signed certificate is by design.
    let b = Bundle {
        inbound: vec![inbound(None)],
        ..b
    };
    let r = b.diagnose();
    assert_eq!(
        r.top_id(),
        Some("relay-denied-unattributed"),
        "{:?}",
        r.ids()
    );
}

#[test]
fn a_certificate_without_the_expected_name_is_an_inbound_connector_mismatch() {
    let store = CertStore::build(&fixtures::classic_twins(false), T0).unwrap();
    let keyed = store.entry("keyed").unwrap();
    let mut s = Session::new(1, T0);
    s.through_starttls("198.51.100.10")
        .sending(&keyed.facts)
        .tls_ok(&eop_cert())
        .mail((550, "5.7.64 TenantAttribution; Relay Access Denied [AM4PEPF00027A6C.eop-EUR04.prod.protection.outlook.com]"));
    let b = Bundle {
        sessions: vec![s.end()],
        connectors: vec![hybrid_connector(Some(keyed.x509_identifier()))],
        inbound: vec![inbound(Some("smtp.contoso.net"))],
        certs: vec![CertListingRow::from_facts(&keyed.facts, true)],
        ..Bundle::default()
    };
    let r = b.diagnose();
    assert_eq!(
        r.top_id(),
        Some("inbound-connector-cert-mismatch"),
        "{:?}",
        r.ids()
    );
    let top = r.top().unwrap();
    assert!(
        top.explanation.contains("smtp.contoso.net")
            && top.explanation.contains("mail.contoso.com")
    );
    assert!(top.fix.join("\n").contains(
        "Set-InboundConnector \"Inbound from 5d2e7a90\" -TlsSenderCertificateName mail.contoso.com"
    ));
    // A wildcard that covers the name matches (RFC 6125: one label).
    let b = Bundle {
        inbound: vec![inbound(Some("*.contoso.com"))],
        ..b
    };
    assert!(
        b.diagnose()
            .find(FindingId::InboundConnectorCertMismatch)
            .is_none()
    );
}

#[test]
fn a_wrong_tls_domain_is_a_remote_name_mismatch_not_an_untrusted_chain() {
    let store = CertStore::build(&fixtures::classic_twins(false), T0).unwrap();
    let keyed = store.entry("keyed").unwrap();
    let mut s = Session::new(1, T0);
    s.through_starttls("198.51.100.10")
        .sending(&keyed.facts)
        .tls_ok(&eop_cert())
        .ev(SessionEvent::Info {
            data: String::new(),
            context: "Remote certificate chain validation status: 'SubjectMismatch'".into(),
        });
    let mut conn = hybrid_connector(Some(keyed.x509_identifier()));
    conn.tls_domain = Some("mail.contoso.com".into());
    let b = Bundle {
        sessions: vec![s.end()],
        connectors: vec![conn],
        certs: vec![CertListingRow::from_facts(&keyed.facts, true)],
        queues: vec![queue(
            "451 4.4.395 Target host responded with error. -> 454 4.7.5 Certificate validation failure",
        )],
        ..Bundle::default()
    };
    let r = b.diagnose();
    assert_eq!(
        r.top_id(),
        Some("remote-cert-name-mismatch"),
        "{:?}",
        r.ids()
    );
    assert!(r.find(FindingId::RemoteCertUntrusted).is_none());
    assert!(
        r.top()
            .unwrap()
            .fix
            .join("\n")
            .contains("-TlsDomain mail.protection.outlook.com")
    );
}

#[test]
fn an_expired_certificate_in_a_one_line_block_is_cert_expired() {
    let mut cert = self_signed();
    cert.subject = "CN=mail.contoso.com, O=Contoso Ltd, C=US".into();
    cert.issuer = "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US".into();
    cert.not_after = T0 - Duration::days(3);
    let mut s = Session::new(1, T0);
    s.through_starttls("198.51.100.10")
        .sending(&cert)
        .tls_ok(&eop_cert())
        .mail((250, "2.1.5 Recipient OK"));
    let b = Bundle {
        sessions: vec![s.end()],
        style: CertBlockStyle::OneLine,
        ..Bundle::default()
    };
    let r = b.diagnose();
    assert_eq!(r.top_id(), Some("cert-expired"), "{:?}", r.ids());
}

#[test]
fn configuration_lints() {
    let mut dns_and_smarthosts =
        hybrid_connector(Some("78E1BE82F683EE6D8CB9B9266FC1185AE0890C41".into()));
    dns_and_smarthosts.smart_hosts = vec!["contoso-com.mail.protection.outlook.com".into()];
    let b = Bundle {
        connectors: vec![dns_and_smarthosts],
        ..Bundle::default()
    };
    let r = b.diagnose();
    assert!(!r.has_error(), "{:?}", r.ids());
    assert!(
        r.find(FindingId::LintDnsRoutingWithSmarthosts).is_some(),
        "{:?}",
        r.ids()
    );
    let syntax = r
        .find(FindingId::LintTlsCertificateNameSyntax)
        .expect("syntax lint");
    assert!(
        syntax
            .fix
            .join("\n")
            .contains("-Thumbprint 78E1BE82F683EE6D8CB9B9266FC1185AE0890C41")
    );
    assert!(r.find(FindingId::LintSmarthostNotTenantMx).is_none());
}

#[test]
fn one_attempt_at_the_end_of_a_log_is_not_a_connect_failure() {
    let (mut b, _, _) = classic(false);
    let mut s = Session::new(9, T0 + Duration::hours(1));
    s.s.events.truncate(1); // `attempting to connect` only: the log was copied mid-connect
    b.sessions.push(s.s.clone());
    let r = b.diagnose();
    assert!(r.find(FindingId::ConnectFailed).is_none(), "{:?}", r.ids());
    // Two of them are a pattern.
    let mut s2 = Session::new(10, T0 + Duration::hours(2));
    s2.s.events.truncate(1);
    b.sessions.push(s2.s.clone());
    assert!(b.diagnose().find(FindingId::ConnectFailed).is_some());
}

#[test]
fn a_tls_failure_explains_the_timeout_wording_and_a_silent_session_does_not_hide_it() {
    // A session that went silent for the inactivity timeout, in the same connector as TLS
    // failures: both are reported, the TLS failure first.
    let (mut b, _, _) = classic(true);
    let store = CertStore::build(&fixtures::classic_twins(true), T0).unwrap();
    let keyed = store.entry("keyed").unwrap();
    // the certificate the silent session presents is in the store listing too (a certificate
    // missing from the full listing would be cert-cached-after-change)
    b.certs.extend(
        rows(&store)
            .into_iter()
            .filter(|r| r.thumbprint == keyed.facts.thumbprint),
    );
    let mut s = Session::new(20, T0 + Duration::hours(3));
    s.through_starttls("198.51.100.10")
        .sending(&keyed.facts)
        .tls_ok(&eop_cert())
        .send("EHLO mail.contoso.com")
        .recv(
            250,
            "AM5EUR02FT017.mail.protection.outlook.com Hello [198.51.100.10]",
        )
        .send("MAIL FROM:<scans@contoso.com> SIZE=31457280")
        .send("RCPT TO:<archive@contoso.mail.onmicrosoft.com>")
        .recv(250, "2.1.0 Sender OK")
        .recv(250, "2.1.5 Recipient OK")
        .send("BDAT 31457280 LAST")
        .wait(Duration::minutes(10));
    b.sessions.push(s.end());
    let r = b.diagnose();
    let ids = r.ids();
    assert_eq!(ids[0], "cert-keyless-duplicate", "{ids:?}");
    assert!(ids.contains(&"connection-timeout"), "{ids:?}");
    let t = r.find(FindingId::ConnectionTimeout).unwrap();
    assert!(
        t.evidence
            .iter()
            .any(|e| e.text.contains("BDAT 31457280 LAST"))
    );
}

#[test]
fn domain_validation_without_tls_domain_on_a_smart_host_connector_is_a_name_mismatch() {
    // The transport gives up before STARTTLS: only the queue carries its verdict.
    let mut s = Session::new(1, T0);
    s.recv(
        220,
        "AM5EUR02FT017.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready",
    )
    .send("EHLO mail.contoso.com")
    .recv(
        250,
        "AM5EUR02FT017.mail.protection.outlook.com Hello [198.51.100.10]",
    )
    .send("QUIT")
    .recv(221, "2.0.0 Service closing transmission channel");
    let mut conn = hybrid_connector(None);
    conn.tls_domain = None;
    conn.dns_routing_enabled = Some(false);
    conn.smart_hosts = vec!["contoso-com.mail.protection.outlook.com".into()];
    let b = Bundle {
        sessions: vec![s.end()],
        connectors: vec![conn],
        queues: vec![queue(
            "451 4.4.395 Target host responded with error. -> 421 TLSAuthLevel cannot be DomainValidation with out a valid TLS Domain.",
        )],
        ..Bundle::default()
    };
    let r = b.diagnose();
    assert_eq!(
        r.top_id(),
        Some("remote-cert-name-mismatch"),
        "{:?}",
        r.ids()
    );
    assert!(
        r.find(FindingId::LintDomainValidationWithoutTlsDomain)
            .is_some()
    );
    let top = r.top().unwrap();
    assert!(
        top.evidence[0].text.contains("LastError"),
        "{:?}",
        top.evidence
    );
    assert!(
        top.fix
            .join("\n")
            .contains("-TlsDomain mail.protection.outlook.com")
    );
}

#[test]
fn direct_send_refused_is_reported_not_silent() {
    let store = CertStore::build(&fixtures::classic_twins(false), T0).unwrap();
    let keyed = store.entry("keyed").unwrap();
    let mut s = Session::new(1, T0);
    s.through_starttls("198.51.100.10").sending(&keyed.facts).tls_ok(&eop_cert()).mail((
        550,
        "5.7.68 TenantInboundAttribution; Direct Send not allowed for this organization from unauthorized sources",
    ));
    let b = Bundle {
        sessions: vec![s.end()],
        connectors: vec![hybrid_connector(Some(keyed.x509_identifier()))],
        ..Bundle::default()
    };
    let r = b.diagnose();
    assert_eq!(
        r.top_id(),
        Some("relay-denied-unattributed"),
        "{:?}",
        r.ids()
    );
    assert!(r.top().unwrap().explanation.contains("5.7.68"));
}

/// docs/findings.md documents every id of the catalogue: its own section, and errors in the
/// precedence table at their rank (the catalogue and the page never drift apart).
#[test]
fn findings_page_documents_every_id_at_its_rank() {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/findings.md"),
    )
    .unwrap();
    for id in FindingId::ALL {
        let s = id.as_str();
        assert!(
            page.contains(&format!("### `{s}`")),
            "docs/findings.md has no section for {s}"
        );
        if id.severity() == hybridlab_diagnose::Severity::Error {
            let row = format!("| {} | `{s}` |", id.rank());
            assert!(
                page.contains(&row),
                "docs/findings.md: no precedence row {row:?}"
            );
        } else {
            assert!(page.contains(&format!("`{s}`")), "{s}");
        }
    }
}

/// The ids of a Markdown table's first column written as `` `id` `` after `heading`.
fn table_ids(page: &str, heading: &str) -> std::collections::BTreeSet<String> {
    let start = page.find(heading).expect("heading present");
    let rest = &page[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

/// docs/architecture.md's findings list, docs/findings.md's sections and the catalogue hold the
/// same ids: none missing, none extra.
#[test]
fn architecture_list_findings_page_and_catalogue_agree() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let arch = std::fs::read_to_string(docs.join("architecture.md")).unwrap();
    let page = std::fs::read_to_string(docs.join("findings.md")).unwrap();
    let catalogue: std::collections::BTreeSet<String> = FindingId::ALL
        .iter()
        .map(|id| id.as_str().to_string())
        .collect();
    assert_eq!(
        table_ids(&arch, "\n## Findings\n"),
        catalogue,
        "docs/architecture.md"
    );
    let sections: std::collections::BTreeSet<String> = page
        .lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    assert_eq!(sections, catalogue, "docs/findings.md sections");
}
