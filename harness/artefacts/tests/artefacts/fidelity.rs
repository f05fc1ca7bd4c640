//! Golden files for the shapes checked against real Exchange output (the domain reference,
//! section 11.6), each test citing its public source: the expiry NDR and the delay DSN with the
//! last error in their human part, the connectivity log's `+` line, `Get-SendConnector`'s Guid
//! beside `Get-Queue`'s NextHopConnector.

use hybridlab_artefacts::connectivity::{ConnectivityEvent, ConnectivityNote};
use hybridlab_artefacts::ndr::{DsnAction, NdrReport, read_dsn, write_dsn};
use hybridlab_artefacts::queue::LastError;
use hybridlab_model::reply::Reply;
use time::macros::datetime;

use crate::support::assert_golden;

fn expiry() -> NdrReport {
    NdrReport {
        internal_id: 12_884_901_890,
        server_fqdn: "EDGE01.contoso.com".into(),
        sender: "alice@contoso.com".into(),
        arrival: datetime!(2026-05-02 06:30:00 UTC),
        generated: datetime!(2026-05-04 06:30:00 UTC),
        subject: "Quarterly figures".into(),
        original_message_id: "a1b2@EDGE01.contoso.com".into(),
        recipients: vec!["bob@contoso.mail.onmicrosoft.com".into()],
        reply: Reply::new(550, "4.4.7 QUEUE.Expired; message expired"),
        remote_mta: None,
        action: DsnAction::Failed,
        last_error: Some(LastError {
            led: "451 4.4.397 Error communicating with target host. -> 421 4.2.1 Unable to connect -> SocketTimedout: Socket error code 10060".into(),
            msg: String::new(),
            fqdn: "contoso-mail-onmicrosoft-com.mail.protection.outlook.com".into(),
            ip: "52.101.68.13".into(),
            lrt: "5/4/2026 6:21:00 AM".into(),
        }),
        retry_until: None,
    }
}

/// Expiry NDR: `Server at <host> (<ip>) returned '550 4.4.7 QUEUE.Expired; message expired'` and
/// under it `<time> - Server at ... returned '<LastError>'`. Shapes: the domain reference, section
/// 11.6; the user text and layout of Exchange's expiry NDR:
/// <https://support.everycloud.com/support/solutions/articles/4000041760-spooling-period-email-retry-rate-deferred-email>.
#[test]
fn expiry_ndr_names_the_last_error_in_its_human_part() {
    let text = write_dsn(&expiry());
    assert_golden("NDR-expiry.eml", text.as_bytes());
    let n = read_dsn("NDR-expiry.eml", &text).unwrap();
    let r = &n.recipients[0];
    assert_eq!(r.status.as_deref(), Some("4.4.7"));
    let le = r.last_error.as_ref().unwrap();
    assert!(
        le.led
            .ends_with("-> SocketTimedout: Socket error code 10060")
    );
    assert_eq!(le.ip, "52.101.68.13");
    assert_eq!(le.lrt, "5/4/2026 6:21:00 AM");
    let ev = r.last_error_evidence.as_ref().unwrap();
    assert!(ev.text.starts_with("5/4/2026 6:21:00 AM - Server at "));
}

/// Delay DSN: "Delivery is delayed to these recipients or groups", the remaining time, `Action:
/// delayed`, `'400 4.4.7 Message delayed'` and the last error. Shape:
/// <https://www.stellarinfo.com/blog/fix-server-returned-400-4-4-7-message-delayed-error-in-exchange-server/>
/// and RFC 3464 (`Will-Retry-Until`): <https://www.rfc-editor.org/rfc/rfc3464#section-2.3.8>.
#[test]
fn delay_dsn_as_exchange_writes_it() {
    let mut d = expiry();
    d.action = DsnAction::Delayed;
    d.reply = Reply::new(400, "4.4.7 Message delayed");
    d.generated = datetime!(2026-05-02 10:30:00 UTC);
    d.retry_until = Some(datetime!(2026-05-04 06:30:00 UTC));
    assert_eq!(d.file_name(), "DSN-Delay-12884901890.eml");
    let text = write_dsn(&d);
    assert_golden("DSN-Delay.eml", text.as_bytes());
    assert!(text.contains("for the next 1 days, 20 hours and 0 minutes."));
    let n = read_dsn("DSN-Delay.eml", &text).unwrap();
    assert_eq!(n.recipients[0].action.as_deref(), Some("delayed"));
    assert!(n.recipients[0].last_error.is_some());
}

/// A real NDR's human part is quoted-printable: the last-error line is split by soft line breaks
/// (`=` at the end of a line) and is read whole, with the line it starts on as evidence.
#[test]
fn a_quoted_printable_last_error_line_is_joined() {
    let text = "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nbob@contoso.mail.onmicrosoft.com\r\n3/13/2026 9:31:12 AM - Server at mx.example (52.101.=\r\n68.13) returned '451 4.4.397 Error communicating with target host. -> 421 4.2.1 Unab=\r\nle to connect -> SocketConnectionRefused: Socket error code 10061'\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns;EDGE01.contoso.com\r\n\r\nFinal-Recipient: rfc822;bob@contoso.mail.onmicrosoft.com\r\nAction: failed\r\nStatus: 4.4.7\r\nDiagnostic-Code: smtp;550 4.4.7 QUEUE.Expired; message expired\r\n\r\n--b--\r\n";
    let n = read_dsn("x.eml", text).unwrap();
    let r = &n.recipients[0];
    let le = r.last_error.as_ref().unwrap();
    assert_eq!(
        le.led,
        "451 4.4.397 Error communicating with target host. -> 421 4.2.1 Unable to connect -> SocketConnectionRefused: Socket error code 10061"
    );
    assert_eq!(le.ip, "52.101.68.13");
    assert_eq!(le.fqdn, "mx.example");
    assert_eq!(r.last_error_evidence.as_ref().unwrap().line, 8);
}

/// The connectivity log's `+` line as the one real sample shows it: `<DeliveryType> <connector
/// GUID>;QueueLength=<n>` (KB 2866822, recorded in the domain reference, section 5.5; the log's
/// fields: <http://technet.microsoft.com/en-us/library/bb124500.aspx>). The older shape still reads.
#[test]
fn connectivity_plus_line_carries_delivery_type_and_connector_guid() {
    let at = datetime!(2026-05-02 06:32:13.900 UTC);
    let e = ConnectivityEvent::queue_open(
        at,
        "08DE8A1B2C3D4E5F",
        "contoso.mail.onmicrosoft.com",
        "DnsConnectorDelivery",
        "4ed6f1b1-7a3c-4d2e-9b51-1c0e8f2a6d34",
        1,
    );
    assert_eq!(
        e.to_csv(),
        "2026-05-02T06:32:13.900Z,08DE8A1B2C3D4E5F,SMTP,contoso.mail.onmicrosoft.com,+,DnsConnectorDelivery 4ed6f1b1-7a3c-4d2e-9b51-1c0e8f2a6d34;QueueLength=1"
    );
    assert_eq!(
        e.note(),
        ConnectivityNote::QueueStart {
            connector: "4ed6f1b1-7a3c-4d2e-9b51-1c0e8f2a6d34".into()
        }
    );
    let old = ConnectivityEvent::queue_start(
        at,
        "08DE8A1B2C3D4E5F",
        "contoso.mail.onmicrosoft.com",
        "Outbound to Office 365",
        1,
    );
    assert_eq!(
        old.note(),
        ConnectivityNote::QueueStart {
            connector: "Outbound to Office 365".into()
        }
    );
}
