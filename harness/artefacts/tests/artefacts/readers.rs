//! The readers of issue 11: Exchange Online message trace and trace detail (Format-List,
//! Export-Csv, the EAC's CSV report), Windows events (`Get-EventLog | fl` with a multi-line
//! Message, `Get-WinEvent | fl`, `wevtutil qe /f:text` in UTF-16), `Get-MessageTrackingLog | fl`,
//! PowerShell's table view (a `Get-Queue` table, a table pasted after `Format-List` output) and
//! `Test-NetConnection`, all detected by content. Shapes are hand-written after public examples
//! (learn.microsoft.com cmdlet pages and Q&A threads); values are made up.

use hybridlab_artefacts::text::{self, TextEncoding};
use hybridlab_artefacts::{ArtefactKind, ArtefactReader, Artefacts, ListingFormat, ListingKind};
use hybridlab_model::event::EventLevel;
use hybridlab_model::exchange::QueueStatus;
use hybridlab_model::trace::{TraceEventKind, TraceStatus};

fn read(files: &[(&str, Vec<u8>)]) -> Artefacts {
    let mut r = ArtefactReader::new();
    for (name, bytes) in files {
        r.add_bytes(name, bytes);
    }
    r.finish()
}

fn kind_of(a: &Artefacts, file: &str) -> ArtefactKind {
    a.files.iter().find(|f| f.file == file).unwrap().kind
}

const DEFER: &str = "Reason: [{LED=450 4.4.317 Cannot connect to remote server [Message=SubjectMismatch Expected Subject: mail.contoso.com. Presented Subject: CN=EXCH02. Thumbprint: 3A04A91124FAAB142BCFCA13C2B13EF1E820E993.] [LastAttemptedServerName=mail.contoso.com] [LastAttemptedIP=203.0.113.10:25] [SmtpSecurity=-1;-1] [DM6NAM12FT012.eop-nam12.prod.protection.outlook.com 2023-03-07T18:46:06.378Z 08DB1DF24DB12D84]};{MSG=};{FQDN=mail.contoso.com};{IP=203.0.113.10};{LRT=3/7/2023 6:46:06 PM}]. OutboundProxyTargetIP: 203.0.113.10. OutboundProxyTargetHostName: mail.contoso.com";

#[test]
fn message_trace_format_list_and_detail_wrapped() {
    let trace = "\r\n\r\nRunspaceId       : 0f0e9e57-7d4f-4c59-a2b7-6d0e9d0f1a11\r\nOrganization     : contoso.onmicrosoft.com\r\nMessageId        : <a1b2c3@AM6PR01MB1234.eurprd01.prod.outlook.com>\r\nReceived         : 3/7/2023 6:40:12 PM\r\nSenderAddress    : alice@contoso.onmicrosoft.com\r\nRecipientAddress : bob@contoso.com\r\nSubject          : Quarterly numbers\r\nStatus           : Pending\r\nToIP             :\r\nFromIP           : 10.1.2.3\r\nSize             : 22731\r\nMessageTraceId   : ae5c1219-4c90-41bf-fef5-08d837917e7c\r\n\r\n\r\n";
    // Format-List wraps the long Detail onto lines indented to the value column (80 columns).
    let mut detail = String::from(
        "\r\n\r\nOrganization   : contoso.onmicrosoft.com\r\nMessageId      : <a1b2c3@AM6PR01MB1234.eurprd01.prod.outlook.com>\r\nMessageTraceId : ae5c1219-4c90-41bf-fef5-08d837917e7c\r\nDate           : 3/7/2023 6:46:06 PM\r\nEvent          : Defer\r\nAction         :\r\nDetail         : ",
    );
    let chunks: Vec<String> = DEFER
        .chars()
        .collect::<Vec<_>>()
        .chunks(62)
        .map(|c| c.iter().collect())
        .collect();
    for (i, c) in chunks.iter().enumerate() {
        if i > 0 {
            detail.push_str("\r\n                 ");
        }
        detail.push_str(c);
    }
    detail.push_str("\r\nData           : <root />\r\n\r\n\r\n");
    let a = read(&[
        ("trace.txt", text::encode(trace, TextEncoding::Utf16LeBom)),
        ("detail.txt", detail.into_bytes()),
    ]);
    assert_eq!(
        kind_of(&a, "trace.txt"),
        ArtefactKind::Listing {
            of: ListingKind::MessageTrace,
            format: ListingFormat::FormatList
        }
    );
    let t = &a.traces[0].row;
    assert_eq!(t.status, TraceStatus::Pending);
    assert_eq!(t.recipient_address, "bob@contoso.com");
    assert_eq!(t.size, Some(22731));
    assert_eq!(a.trace_details.len(), 1);
    let d = &a.trace_details[0].row;
    assert_eq!(d.event, TraceEventKind::Defer);
    let led = d.led.as_ref().expect("the wrapped LED is read back");
    assert_eq!(
        led.headline(),
        "450 4.4.317 Cannot connect to remote server"
    );
    assert_eq!(
        led.thumbprint.as_deref(),
        Some("3A04A91124FAAB142BCFCA13C2B13EF1E820E993")
    );
    assert_eq!(led.ip.as_deref(), Some("203.0.113.10"));
    assert_eq!(led.server_name.as_deref(), Some("mail.contoso.com"));
    assert_eq!(
        led.eop_host.as_deref(),
        Some("DM6NAM12FT012.eop-nam12.prod.protection.outlook.com")
    );
    assert_eq!(a.files[1].skipped.count, 0);
}

#[test]
fn message_trace_detail_export_csv_and_eac_report() {
    let csv = format!(
        "#TYPE Deserialized.Microsoft.Exchange.Management.FfoReporting.MessageTraceDetail\r\n\"Organization\",\"MessageId\",\"MessageTraceId\",\"Date\",\"Event\",\"Action\",\"Detail\",\"Data\"\r\n\"contoso.onmicrosoft.com\",\"<a1@x>\",\"ae5c1219-4c90-41bf-fef5-08d837917e7c\",\"3/7/2023 6:40:12 PM\",\"Receive\",\"\",\"Message received by: AM6PR01MB1234.eurprd01.prod.outlook.com\",\"<root />\"\r\n\"contoso.onmicrosoft.com\",\"<a1@x>\",\"ae5c1219-4c90-41bf-fef5-08d837917e7c\",\"3/7/2023 6:46:06 PM\",\"Defer\",\"\",\"{}\",\"<root />\"\r\n",
        DEFER.replace('"', "\"\"")
    );
    // The EAC's extended report: one row per event, snake_case columns, LED in recipient_status.
    let eac = "date_time_utc,client_ip,server_hostname,source_context,connector_id,source,event_id,message_id,recipient_address,recipient_status,total_bytes,message_subject,sender_address\r\n2023-03-07T18:46:06.378Z,,DM6NAM12FT012,,Outbound to 4b9f,SMTP,DEFER,<a1@x>,bob@contoso.com,\"450 4.4.316 Connection refused [Message=Socket error code 10061] [LastAttemptedServerName=mail.contoso.com] [LastAttemptedIP=203.0.113.10:25] [DM6NAM12FT012.eop-nam12.prod.protection.outlook.com]\",22731,Quarterly numbers,alice@contoso.onmicrosoft.com\r\n";
    let a = read(&[
        ("detail.csv", text::encode(&csv, TextEncoding::Utf8Bom)),
        ("eac.csv", text::encode(eac, TextEncoding::Utf16LeBom)),
    ]);
    assert_eq!(
        kind_of(&a, "detail.csv"),
        ArtefactKind::Listing {
            of: ListingKind::MessageTraceDetail,
            format: ListingFormat::Csv
        }
    );
    assert_eq!(a.trace_details.len(), 3);
    let defer = &a.trace_details[1];
    assert_eq!(defer.evidence.first.as_ref().unwrap().line, 4);
    assert!(
        defer
            .row
            .led
            .as_ref()
            .unwrap()
            .message
            .as_deref()
            .unwrap()
            .starts_with("SubjectMismatch")
    );
    let eac = &a.trace_details[2].row;
    assert_eq!(eac.event, TraceEventKind::Defer);
    let led = eac.led.as_ref().unwrap();
    assert_eq!(led.enhanced.unwrap().to_string(), "4.4.316");
    assert_eq!(led.message.as_deref(), Some("Socket error code 10061"));
    assert_eq!(eac.recipient_address.as_deref(), Some("bob@contoso.com"));
}

#[test]
fn windows_events_in_three_shapes() {
    // Get-EventLog | fl: the Message spans lines, one of them empty.
    let eventlog = "\r\n\r\nIndex              : 48113\r\nEntryType          : Error\r\nInstanceId         : 3221237486\r\nMessage            : Microsoft Exchange could not find a certificate that contains the\r\n                     domain name mail.contoso.com in the personal store on the local\r\n                     computer.\r\n\r\n                     Therefore, it is unable to support the STARTTLS SMTP verb for the\r\n                     connector Default Frontend EXCH01.\r\nCategory           : TransportService\r\nCategoryNumber     : 1\r\nReplacementStrings : {Default Frontend EXCH01, mail.contoso.com}\r\nSource             : MSExchangeFrontEndTransport\r\nTimeGenerated      : 3/7/2023 6:30:01 PM\r\nTimeWritten        : 3/7/2023 6:30:01 PM\r\nUserName           :\r\n\r\n\r\n";
    let winevent = "\r\n\r\nTimeCreated  : 07.03.2023 18:31:00\r\nProviderName : MSExchangeTransport\r\nId           : 15004\r\nMessage      : The resource pressure increased from Medium to High.\r\n               UsedDiskSpace[C:\\Queue] = 97% [Medium=90% High=95%]\r\n\r\n\r\n";
    let wevtutil = "Event[0]:\r\n  Log Name: Application\r\n  Source: MSExchangeTransport\r\n  Date: 2023-03-07T18:32:00.000\r\n  Event ID: 2004\r\n  Task: SmtpSend\r\n  Level: Warning\r\n  Computer: EXCH02.contoso.com\r\n  Description: \r\nOutbound direct trust authentication failed for certificate 3A04A91124FAAB142BCFCA13C2B13EF1E820E993.\r\n";
    let a = read(&[
        (
            "app-eventlog.txt",
            text::encode(eventlog, TextEncoding::Utf16LeBom),
        ),
        ("app-winevent.txt", winevent.as_bytes().to_vec()),
        (
            "app-wevtutil.txt",
            text::encode(wevtutil, TextEncoding::Utf16LeBom),
        ),
    ]);
    assert_eq!(a.events.len(), 3, "{:#?}", a.files);
    let e = &a.events[0].row;
    assert_eq!((e.id, e.level), (12014, EventLevel::Error));
    assert!(
        e.message.contains("computer.\nTherefore"),
        "{:?}",
        e.message
    );
    assert!(e.message.ends_with("Default Frontend EXCH01."));
    assert_eq!(e.replacement_strings[1], "mail.contoso.com");
    let w = &a.events[1].row;
    assert_eq!((w.id, w.source.as_str()), (15004, "MSExchangeTransport"));
    assert!(w.message.contains("UsedDiskSpace[C:\\Queue]"));
    assert_eq!(w.time, time::macros::datetime!(2023-03-07 18:31:00 UTC));
    let x = &a.events[2];
    assert_eq!((x.row.id, x.row.level), (2004, EventLevel::Warning));
    assert_eq!(x.server.as_deref(), Some("EXCH02"));
    assert_eq!(
        kind_of(&a, "app-wevtutil.txt"),
        ArtefactKind::Listing {
            of: ListingKind::WindowsEvent,
            format: ListingFormat::EventText
        }
    );
    assert_eq!(a.skipped_total(), 0);
}

#[test]
fn tracking_log_net_connection_and_tables() {
    let tracking = "\r\n\r\nRunspaceId              : 4f1d7c2a-9b3e-4e6a-8d15-2c7b9e0a6f31\r\nTimestamp               : 3/7/2023 6:50:00 PM\r\nClientIp                :\r\nClientHostname          : EXCH01\r\nServerIp                : 104.47.10.36\r\nServerHostname          : EXCH01\r\nSourceContext           :\r\nConnectorId             : Outbound to Office 365\r\nSource                  : SMTP\r\nEventId                 : FAIL\r\nInternalMessageId       : 1234\r\nMessageId               : <m1@contoso.com>\r\nRecipients              : {carol@contoso.mail.onmicrosoft.com}\r\nRecipientStatus         : {550 4.4.7 QUEUE.Expired; message expired}\r\nMessageSubject          : Hello\r\nSender                  : bob@contoso.com\r\n\r\n\r\n";
    let tnc = "WARNING: TCP connect to (104.47.10.36 : 25) failed\r\n\r\n\r\nComputerName           : contoso-com.mail.protection.outlook.com\r\nRemoteAddress          : 104.47.10.36\r\nRemotePort             : 25\r\nInterfaceAlias         : Ethernet0\r\nSourceAddress          : 10.0.0.5\r\nPingSucceeded          : False\r\nTcpTestSucceeded       : False\r\n\r\n\r\n";
    let queue_table = "\r\nIdentity                 DeliveryType Status MessageCount Velocity RiskLevel OutboundIPPool NextHopDomain\r\n--------                 ------------ ------ ------------ -------- --------- -------------- -------------\r\nEXCH01\\3                 SmartHost... Retry            17 0        Normal    0              contoso.mail.onmicrosoft.com\r\nEXCH01\\Submission        Undefined    Ready             0 0        Normal    0              Submission\r\n\r\n\r\n";
    // A console session pasted: a Format-List listing, then a table of the same kind.
    let mixed = "[PS] C:\\>Get-Queue EXCH02\\5 | fl Identity,DeliveryType,Status,MessageCount,NextHopDomain\r\n\r\nIdentity      : EXCH02\\5\r\nDeliveryType  : SmartHostConnectorDelivery\r\nStatus        : Retry\r\nMessageCount  : 3\r\nNextHopDomain : contoso.mail.onmicrosoft.com\r\n\r\n[PS] C:\\>Get-Queue -Server EXCH02 | select Identity,DeliveryType,Status,NextHopDomain\r\n\r\nIdentity          DeliveryType Status NextHopDomain\r\n--------          ------------ ------ -------------\r\nEXCH02\\Submission Undefined    Ready  Submission\r\n\r\n";
    let a = read(&[
        ("tracking.txt", tracking.as_bytes().to_vec()),
        ("tnc.txt", text::encode(tnc, TextEncoding::Utf16LeBom)),
        ("queues.txt", queue_table.as_bytes().to_vec()),
        ("console.txt", mixed.as_bytes().to_vec()),
    ]);
    let t = &a.tracking[0];
    assert_eq!(t.row.event_id, "FAIL");
    assert_eq!(
        t.row.led.as_ref().unwrap().enhanced.unwrap().to_string(),
        "4.4.7"
    );
    assert_eq!(t.server.as_deref(), Some("EXCH01"));
    let n = &a.net_connections[0].row;
    assert_eq!(n.tcp_test_succeeded, Some(false));
    assert_eq!(n.remote_port, Some(25));
    assert_eq!(
        kind_of(&a, "queues.txt"),
        ArtefactKind::Listing {
            of: ListingKind::Queue,
            format: ListingFormat::Table
        }
    );
    let q: Vec<_> = a
        .queues
        .iter()
        .map(|q| (q.row.identity.as_str(), q.row.status, q.server.as_deref()))
        .collect();
    assert_eq!(q.len(), 4, "{q:?}");
    assert_eq!(q[0], ("EXCH01\\3", QueueStatus::Retry, Some("EXCH01")));
    assert_eq!(a.queues[0].row.message_count, 17);
    assert_eq!(q[2].0, "EXCH02\\5");
    assert_eq!(
        q[3],
        ("EXCH02\\Submission", QueueStatus::Ready, Some("EXCH02"))
    );
    let console = a.files.iter().find(|f| f.file == "console.txt").unwrap();
    // Only the two prompts are not understood.
    assert_eq!(console.skipped.count, 2, "{:?}", console.skipped);
    // The warning line of Test-NetConnection is counted, not lost.
    assert_eq!(
        a.files
            .iter()
            .find(|f| f.file == "tnc.txt")
            .unwrap()
            .skipped
            .count,
        1
    );
}
