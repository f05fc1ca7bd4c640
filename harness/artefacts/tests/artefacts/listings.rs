//! Listings: writer goldens for every cmdlet (Format-List and ConvertTo-Json), write→read round
//! trips, and reader goldens over hand-written exports (UTF-16LE from Windows PowerShell 5.1,
//! wrapped values at 80 and 120 columns, cut enumerations, numbers for enums, ISO and `\/Date()\/`
//! dates, other cultures' dates, pasted blank lines, a truncated last line).

use crate::support::*;
use hybridlab_artefacts::certs::{
    self, CertListingRow, CertListingSource, CertificateStatus, ExchangeService, RootCaType,
};
use hybridlab_artefacts::connectors::{self, SendConnectorRow};
use hybridlab_artefacts::format_list::FlOptions;
use hybridlab_artefacts::ps_json::JsonStyle;
use hybridlab_artefacts::queue::{self, LastError};
use hybridlab_artefacts::text::{self, TextEncoding};
use hybridlab_artefacts::{ArtefactKind, ArtefactReader, Artefacts, ListingFormat, ListingKind};
use hybridlab_model::exchange::{DeliveryType, QueueStatus, TlsAuthLevel};
use time::macros::datetime;

fn read_one(name: &str, bytes: &[u8]) -> Artefacts {
    let mut r = ArtefactReader::new();
    r.add_bytes(name, bytes);
    r.finish()
}

fn utf16(s: &str) -> Vec<u8> {
    text::encode(s, TextEncoding::Utf16LeBom)
}

#[test]
fn exchange_certificate_list_golden_hides_the_keyless_twin() {
    let text = certs::write_exchange_certificate_list(&cert_rows(), &FlOptions::default());
    assert_golden("Get-ExchangeCertificate.fl.txt", text.as_bytes());
    assert!(
        !text.contains(KEYLESS_THUMB),
        "Get-ExchangeCertificate lists only keyed certificates"
    );
    assert!(text.contains(&format!("Thumbprint         : {KEYED_THUMB}\r\n")));
    for line in text.split("\r\n") {
        assert!(line.chars().count() <= 79, "{line:?}");
    }
}

#[test]
fn cert_provider_list_golden_shows_every_certificate() {
    let text = certs::write_cert_provider_list(&cert_rows(), &FlOptions::default());
    assert_golden("Get-ChildItem-Cert.fl.txt", text.as_bytes());
    assert!(text.contains(KEYLESS_THUMB));
    assert!(text.contains("HasPrivateKey            : False\r\n"));
}

#[test]
fn certificate_json_goldens() {
    let rows = cert_rows();
    assert_golden(
        "Get-ExchangeCertificate.ps51.json",
        certs::write_exchange_certificate_json(&rows, JsonStyle::WindowsPowerShell, "EDGE01")
            .as_bytes(),
    );
    assert_golden(
        "Get-ExchangeCertificate.ps7.json",
        certs::write_exchange_certificate_json(&rows, JsonStyle::PowerShell7, "EDGE01").as_bytes(),
    );
    assert_golden(
        "Get-ChildItem-Cert.ps51.json",
        certs::write_cert_provider_json(&rows, JsonStyle::WindowsPowerShell).as_bytes(),
    );
}

/// What a listing shows of a row (the fields the cmdlet prints).
fn shown(r: &CertListingRow, source: CertListingSource) -> CertListingRow {
    let mut r = r.clone();
    match source {
        CertListingSource::ExchangeCertificate => {
            r.store = None;
            r.enhanced_key_usage = vec![];
            r.friendly_name = None;
            r.private_key_exportable = None;
            if r.services.is_none() {
                r.services = Some(vec![]);
            }
        }
        CertListingSource::CertProvider => {
            r.services = None;
            r.is_self_signed = None;
            r.status = None;
            r.public_key_size = None;
            r.root_ca_type = None;
            r.private_key_exportable = None;
        }
    }
    r
}

#[test]
fn certificate_listings_round_trip_in_every_format() {
    let rows = cert_rows();
    let lossless = FlOptions::lossless();
    let cases: Vec<(&str, Vec<u8>, CertListingSource, ListingFormat)> = vec![
        (
            "exch.txt",
            utf16(&certs::write_exchange_certificate_list(
                &rows,
                &FlOptions::default(),
            )),
            CertListingSource::ExchangeCertificate,
            ListingFormat::FormatList,
        ),
        (
            "exch-wide.txt",
            certs::write_exchange_certificate_list(&rows, &lossless).into_bytes(),
            CertListingSource::ExchangeCertificate,
            ListingFormat::FormatList,
        ),
        (
            "exch51.json",
            certs::write_exchange_certificate_json(&rows, JsonStyle::WindowsPowerShell, "EDGE01")
                .into_bytes(),
            CertListingSource::ExchangeCertificate,
            ListingFormat::Json,
        ),
        (
            "exch7.json",
            certs::write_exchange_certificate_json(&rows, JsonStyle::PowerShell7, "EDGE01")
                .into_bytes(),
            CertListingSource::ExchangeCertificate,
            ListingFormat::Json,
        ),
        (
            "prov.txt",
            utf16(&certs::write_cert_provider_list(
                &rows,
                &FlOptions::default(),
            )),
            CertListingSource::CertProvider,
            ListingFormat::FormatList,
        ),
        (
            "prov51.json",
            certs::write_cert_provider_json(&rows, JsonStyle::WindowsPowerShell).into_bytes(),
            CertListingSource::CertProvider,
            ListingFormat::Json,
        ),
    ];
    for (name, bytes, source, format) in cases {
        let a = read_one(name, &bytes);
        assert_eq!(
            a.files[0].skipped.count, 0,
            "{name}: {:?}",
            a.files[0].skipped
        );
        let of = match source {
            CertListingSource::ExchangeCertificate => ListingKind::ExchangeCertificate,
            CertListingSource::CertProvider => ListingKind::CertProvider,
        };
        assert_eq!(
            a.files[0].kind,
            ArtefactKind::Listing { of, format },
            "{name}"
        );
        let got: Vec<CertListingRow> = a
            .certificates
            .iter()
            .map(|c| c.parsed.row.clone())
            .collect();
        let want: Vec<CertListingRow> = rows
            .iter()
            .filter(|r| {
                source == CertListingSource::CertProvider || r.has_private_key == Some(true)
            })
            .map(|r| {
                let mut w = shown(r, source);
                if format == ListingFormat::Json && source == CertListingSource::ExchangeCertificate
                {
                    w.friendly_name = r.friendly_name.clone();
                    w.private_key_exportable = r.private_key_exportable;
                }
                w
            })
            .collect();
        assert_eq!(got, want, "{name}");
        assert!(
            a.certificates
                .iter()
                .all(|c| c.source == source && c.format == format)
        );
    }
}

#[test]
fn queue_and_message_goldens_and_round_trips() {
    let queues = vec![classic_queue(), idle_queue()];
    let text = queue::write_queue_list(&queues, &FlOptions::default());
    assert_golden("Get-Queue.fl.txt", text.as_bytes());
    assert_golden(
        "Get-Queue.ps51.json",
        queue::write_queue_json(&queues, JsonStyle::WindowsPowerShell).as_bytes(),
    );
    let msgs = vec![classic_message()];
    let mtext = queue::write_message_list(&msgs, &FlOptions::default());
    assert_golden("Get-Message.fl.txt", mtext.as_bytes());
    assert_golden(
        "Get-Message.ps7.json",
        queue::write_message_json(&msgs, JsonStyle::PowerShell7).as_bytes(),
    );

    for bytes in [
        utf16(&text),
        queue::write_queue_json(&queues, JsonStyle::WindowsPowerShell).into_bytes(),
        queue::write_queue_json(&queues, JsonStyle::PowerShell7).into_bytes(),
    ] {
        let a = read_one("q", &bytes);
        assert_eq!(a.files[0].skipped.count, 0);
        let got: Vec<_> = a.queues.iter().map(|p| p.row.clone()).collect();
        assert_eq!(got, queues);
    }
    for bytes in [
        utf16(&mtext),
        queue::write_message_json(&msgs, JsonStyle::PowerShell7).into_bytes(),
    ] {
        let a = read_one("m", &bytes);
        let got: Vec<_> = a.messages.iter().map(|p| p.row.clone()).collect();
        assert_eq!(got, msgs);
    }
}

#[test]
fn connector_goldens_and_round_trips() {
    let send = vec![hcw_send_connector()];
    let text = connectors::write_send_connector_list(&send, &FlOptions::default());
    assert_golden("Get-SendConnector.fl.txt", text.as_bytes());
    let a = read_one("sc", &utf16(&text));
    let got: Vec<SendConnectorRow> = a.send_connectors.iter().map(|p| p.row.clone()).collect();
    let mut want = send.clone();
    want[0].identity = Some(want[0].name.clone());
    assert_eq!(got, want);
    let a = read_one(
        "sc.json",
        connectors::write_send_connector_json(&send, JsonStyle::WindowsPowerShell).as_bytes(),
    );
    assert_eq!(a.send_connectors[0].row, want[0]);

    let recv = vec![receive_connector()];
    let text = connectors::write_receive_connector_list(&recv, &FlOptions::default());
    assert_golden("Get-ReceiveConnector.fl.txt", text.as_bytes());
    assert_eq!(
        read_one("rc", text.as_bytes()).receive_connectors[0].row,
        recv[0]
    );

    let inb = vec![inbound_connector()];
    let text = connectors::write_inbound_connector_list(&inb, &FlOptions::default());
    assert_golden("Get-InboundConnector.fl.txt", text.as_bytes());
    let mut want = inb[0].clone();
    want.identity = Some(want.name.clone());
    assert_eq!(
        read_one("ic", text.as_bytes()).inbound_connectors[0].row,
        want
    );

    let outb = vec![outbound_connector()];
    let text = connectors::write_outbound_connector_list(&outb, &FlOptions::default());
    assert_golden("Get-OutboundConnector.fl.txt", text.as_bytes());
    let mut want = outb[0].clone();
    want.identity = Some(want.name.clone());
    assert_eq!(
        read_one("oc", text.as_bytes()).outbound_connectors[0].row,
        want
    );
}

#[test]
fn reads_hand_written_certificate_exports() {
    let mut r = ArtefactReader::new();
    for name in [
        "exchange-certificates.txt",
        "cert-provider.txt",
        "cert-provider-selected.txt",
        "exchange-certificate-ps51.json",
        "cert-provider-ps7.json",
    ] {
        r.add_bytes(name, &input(name));
    }
    let a = r.finish();
    assert_golden("read_certificates.json", &json(&a));

    let kinds: Vec<ArtefactKind> = a.files.iter().map(|f| f.kind).collect();
    use ListingFormat::*;
    use ListingKind::*;
    assert_eq!(
        kinds,
        [
            ArtefactKind::Listing {
                of: ExchangeCertificate,
                format: FormatList
            },
            ArtefactKind::Listing {
                of: CertProvider,
                format: FormatList
            },
            ArtefactKind::Listing {
                of: CertProvider,
                format: FormatList
            },
            ArtefactKind::Listing {
                of: ExchangeCertificate,
                format: Json
            },
            ArtefactKind::Listing {
                of: CertProvider,
                format: Json
            },
        ]
    );
    assert_eq!(a.files[0].encoding, TextEncoding::Utf16LeBom);
    // Prompt lines of the console copy are skipped and counted.
    assert_eq!(a.files[1].skipped.count, 2);

    let exch: Vec<&CertListingRow> = a
        .certificates
        .iter()
        .filter(|c| c.source == CertListingSource::ExchangeCertificate && c.format == FormatList)
        .map(|c| &c.parsed.row)
        .collect();
    assert_eq!(exch.len(), 3);
    let keyed = exch[0];
    assert_eq!(keyed.thumbprint, KEYED_THUMB);
    assert_eq!(keyed.issuer, DIGICERT, "wrapped value joined back");
    assert_eq!(keyed.subject, SUBJECT);
    assert_eq!(
        keyed.certificate_domains,
        [
            "mail.contoso.com",
            "autodiscover.contoso.com",
            "owa.contoso.com",
            "smtp.contoso.com"
        ]
    );
    assert!(keyed.certificate_domains_truncated);
    assert_eq!(
        keyed.services.as_deref(),
        Some(
            &[
                ExchangeService::Imap,
                ExchangeService::Pop,
                ExchangeService::Iis,
                ExchangeService::Smtp
            ][..]
        )
    );
    assert_eq!(keyed.not_after, Some(datetime!(2021-03-01 12:00:00 UTC)));
    assert_eq!(keyed.status, Some(CertificateStatus::Valid));
    assert_eq!(keyed.root_ca_type, Some(RootCaType::ThirdParty));
    let thumb_ev = a.certificates[0]
        .parsed
        .evidence
        .prop("Thumbprint")
        .unwrap();
    assert_eq!(thumb_ev.line, 21);
    assert_eq!(thumb_ev.text, format!("Thumbprint         : {KEYED_THUMB}"));

    let provider: Vec<&CertListingRow> = a
        .certificates
        .iter()
        .filter(|c| c.source == CertListingSource::CertProvider && c.format == FormatList)
        .map(|c| &c.parsed.row)
        .collect();
    assert_eq!(provider.len(), 4);
    assert_eq!(provider[0].thumbprint, KEYLESS_THUMB);
    assert_eq!(provider[0].has_private_key, Some(false));
    assert_eq!(provider[0].store.as_deref(), Some("LocalMachine\\My"));
    assert_eq!(provider[1].has_private_key, Some(true));
    // de-DE dates and blank lines pasted between properties.
    assert_eq!(provider[2].thumbprint, KEYLESS_THUMB);
    assert_eq!(
        provider[2].not_after,
        Some(datetime!(2021-01-14 23:59:59 UTC))
    );
    assert_eq!(provider[3].has_private_key, Some(true));

    let json51 = &a
        .certificates
        .iter()
        .find(|c| c.format == Json && c.source == CertListingSource::ExchangeCertificate)
        .unwrap()
        .parsed
        .row;
    assert_eq!(
        json51.services.as_deref().map(<[_]>::len),
        Some(4),
        "flags number 27"
    );
    assert_eq!(
        json51.status,
        Some(CertificateStatus::Valid),
        "enum number 1"
    );
    assert_eq!(json51.not_after, Some(datetime!(2021-03-01 12:00:00 UTC)));
    assert_eq!(
        json51.certificate_domains,
        ["mail.contoso.com", "autodiscover.contoso.com"]
    );
    let ps7: Vec<&CertListingRow> = a
        .certificates
        .iter()
        .filter(|c| c.format == Json && c.source == CertListingSource::CertProvider)
        .map(|c| &c.parsed.row)
        .collect();
    assert_eq!(
        ps7[0].not_after,
        Some(datetime!(2021-01-14 23:59:59 UTC)),
        "offset normalised"
    );
    assert_eq!(
        ps7[0].enhanced_key_usage[0],
        "Server Authentication (1.3.6.1.5.5.7.3.1)"
    );
    assert_eq!(
        ps7[0].certificate_domains,
        ["mail.contoso.com", "autodiscover.contoso.com"]
    );
}

#[test]
fn reads_hand_written_queue_message_and_connector_exports() {
    let mut r = ArtefactReader::new();
    for name in [
        "queues.txt",
        "queues-ps51.json",
        "messages.txt",
        "send-connectors.txt",
        "receive-connectors.txt",
        "inbound-connectors.txt",
        "outbound-connectors.txt",
    ] {
        r.add_bytes(name, &input(name));
    }
    let a = r.finish();
    assert_golden("read_queues_connectors.json", &json(&a));

    let expected_le = LastError {
        led: "451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out"
            .into(),
        msg: String::new(),
        fqdn: NEXT_HOP.into(),
        ip: "104.47.10.36".into(),
        lrt: "5/2/2019 6:32:14 AM".into(),
    };
    assert_eq!(a.queues.len(), 4);
    for q in [&a.queues[0].row, &a.queues[2].row] {
        assert_eq!(q.identity, "EDGE01\\3");
        assert_eq!(q.status, QueueStatus::Retry);
        assert_eq!(q.delivery_type, DeliveryType::SmartHostConnectorDelivery);
        assert_eq!(
            q.last_error.as_ref(),
            Some(&expected_le),
            "wrapped, LRT first, hard-cut word"
        );
        assert_eq!(q.next_retry_time, Some(datetime!(2019-05-02 07:02:14 UTC)));
        assert_eq!(q.message_count, 12);
    }
    assert_eq!(a.queues[1].row.status, QueueStatus::Ready);
    assert_eq!(a.files[0].skipped.count, 1, "the truncated last line");
    let le_ev = a.queues[0].evidence.prop("LastError").unwrap();
    assert!(
        le_ev
            .text
            .starts_with("LastError                        : [{LRT=5/2/2019")
    );

    assert_eq!(a.messages.len(), 2);
    assert_eq!(
        a.messages[0].row.recipients,
        ["bob@contoso.mail.onmicrosoft.com"]
    );
    assert_eq!(a.messages[0].row.size_bytes, Some(10_250));
    assert_eq!(a.messages[0].row.last_error.as_ref(), Some(&expected_le));
    assert_eq!(a.messages[1].row.recipients.len(), 2);

    assert_eq!(a.send_connectors.len(), 2);
    let hcw = &a.send_connectors[0].row;
    assert_eq!(
        hcw.tls_certificate_name.as_deref(),
        Some(format!("<I>{DIGICERT}<S>{SUBJECT}").as_str())
    );
    assert_eq!(hcw.tls_auth_level, Some(TlsAuthLevel::DomainValidation));
    assert_eq!(hcw.require_tls, Some(true));
    assert_eq!(hcw.address_spaces, ["smtp:contoso.mail.onmicrosoft.com;1"]);
    let relay = &a.send_connectors[1].row;
    assert_eq!(relay.smart_hosts, ["[192.0.2.25]", "relay.isp.example"]);
    assert_eq!(relay.tls_auth_level, None);
    assert_eq!(relay.dns_routing_enabled, Some(false));

    let rc = &a.receive_connectors[0].row;
    assert_eq!(
        rc.auth_mechanism,
        [
            "Tls",
            "Integrated",
            "BasicAuth",
            "BasicAuthRequireTLS",
            "ExchangeServer"
        ]
    );
    assert_eq!(
        rc.tls_domain_capabilities,
        ["mail.protection.outlook.com:AcceptCloudServicesMail"]
    );
    assert_eq!(rc.bindings, ["[::]:25", "0.0.0.0:25"]);

    assert_eq!(a.inbound_connectors.len(), 2);
    assert_eq!(
        a.inbound_connectors[0]
            .row
            .tls_sender_certificate_name
            .as_deref(),
        Some("mail.contoso.com")
    );
    assert_eq!(
        a.inbound_connectors[1].row.sender_ip_addresses,
        ["203.0.113.0/24"]
    );
    assert_eq!(
        a.inbound_connectors[1].row.restrict_domains_to_ip_addresses,
        Some(true)
    );
    assert_eq!(
        a.outbound_connectors[0].row.tls_settings,
        Some(TlsAuthLevel::DomainValidation)
    );
    assert_eq!(
        a.outbound_connectors[0].row.recipient_domains,
        ["contoso.com", "fabrikam.com"]
    );
}

#[test]
fn generated_certificates_survive_the_listings_structurally() {
    use hybridlab_labkit::pki::{CertAuthority, CertSpec};
    let now = datetime!(2019-05-02 06:00:00 UTC);
    let ca = CertAuthority::root(&CertSpec::authority(DIGICERT.parse().unwrap(), now)).unwrap();
    let mut spec = CertSpec::leaf("mail.contoso.com", now);
    spec.subject = SUBJECT.parse().unwrap();
    spec.dns_names = vec!["mail.contoso.com".into(), "autodiscover.contoso.com".into()];
    let keyed = ca.issue(&spec).unwrap();
    let twin = ca.issue(&spec).unwrap();
    assert_ne!(keyed.facts.thumbprint, twin.facts.thumbprint);
    let rows = vec![
        CertListingRow::from_facts(&twin.facts, false),
        CertListingRow::from_facts(&keyed.facts, true),
    ];
    let a = read_one(
        "store.txt",
        &utf16(&certs::write_cert_provider_list(
            &rows,
            &FlOptions::default(),
        )),
    );
    let got: Vec<(String, String, String, Option<bool>)> = a
        .certificates
        .iter()
        .map(|c| {
            (
                c.parsed.row.thumbprint.clone(),
                c.parsed.row.subject.clone(),
                c.parsed.row.issuer.clone(),
                c.parsed.row.has_private_key,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                twin.facts.thumbprint,
                SUBJECT.to_string(),
                DIGICERT.to_string(),
                Some(false)
            ),
            (
                keyed.facts.thumbprint.clone(),
                SUBJECT.to_string(),
                DIGICERT.to_string(),
                Some(true)
            ),
        ]
    );
    let a = read_one(
        "gec.txt",
        certs::write_exchange_certificate_list(&rows, &FlOptions::default()).as_bytes(),
    );
    assert_eq!(a.certificates.len(), 1);
    assert_eq!(
        a.certificates[0].parsed.row.thumbprint,
        keyed.facts.thumbprint
    );
    assert_eq!(
        a.certificates[0].parsed.row.x509_identifier(),
        keyed.facts.x509_identifier()
    );
}
