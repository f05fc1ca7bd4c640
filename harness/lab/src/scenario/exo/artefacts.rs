//! The files of an `exo-to-onprem` run, in the shapes the real tools give (docs/formats.md):
//!
//! - per server `<SERVER>/RECVyyyymmdd-N.LOG` (the RECV protocol log),
//!   `<SERVER>/Get-ExchangeCertificate.txt` and `<SERVER>/Get-EventLog-Application.txt`
//!   (`Get-EventLog -LogName Application | Format-List`, newest first);
//! - `Get-ReceiveConnector.txt` (every server's connectors, Format-List);
//! - Exchange Online: `exo/Get-MessageTrace.txt` and `.csv`, `exo/Get-MessageTraceDetail.txt` and
//!   `.csv` (Format-List, and `Export-Csv -NoTypeInformation`), `exo/Get-OutboundConnector.txt`,
//!   `exo/Validate-OutboundConnector.txt`;
//! - the lab's own records, not read by the diagnosis: `lab/exo-deliveries.json` (every attempt
//!   with its SMTP transcript) and `lab/receive-records.json` (sessions, messages, refusals,
//!   device sessions, events).
//!
//! [`diagnose_files`] reads the same files back through `hybridlab_artefacts::ArtefactReader` and
//! diagnoses them (the closed loop).

use hybridlab_artefacts::connectors::{
    OutboundConnectorRow, write_outbound_connector_list, write_receive_connector_list,
};
use hybridlab_artefacts::format_list::{FlOptions, FlRecord, render};
use hybridlab_artefacts::protocol_log::{LogWriterOptions, ProtocolLogSession, write_files};
use hybridlab_artefacts::ps::PsValue;
use hybridlab_model::delivery::{DeliveryRecord, DeliverySettings};
use hybridlab_model::event::WindowsEvent;
use hybridlab_model::exo::OutboundConnector;
use hybridlab_model::led::en_us_datetime;
use hybridlab_model::trace::{MessageTrace, TraceEvent};
use time::OffsetDateTime;

use super::runner::ExoReplay;
use crate::scenario::model::Scenario;

/// One file of the run: its path relative to the scenario's output folder, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFile {
    /// `EXCH01/RECV20260502-1.LOG`, `exo/Get-MessageTrace.txt`.
    pub name: String,
    /// The text.
    pub content: String,
    /// The lab's own record (not an Exchange artefact; the diagnosis does not read it).
    pub lab_only: bool,
}

impl OutFile {
    fn new(name: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            content: content.into(),
            lab_only: false,
        }
    }
}

/// The computer name `Get-MessageTrace` output carries (`PSComputerName`).
pub const EXO_COMPUTER: &str = "outlook.office365.com";

/// Every file of the run.
pub fn files(s: &Scenario, r: &ExoReplay, settings: &DeliverySettings) -> Vec<OutFile> {
    let opts = FlOptions::default();
    let mut out = Vec::new();
    for sv in &r.servers {
        let sessions: Vec<ProtocolLogSession> = r
            .site
            .sessions
            .iter()
            .filter(|x| x.server.eq_ignore_ascii_case(&sv.name))
            .filter_map(|x| x.protocol_log.clone())
            .collect();
        let lo = LogWriterOptions::receive().with_cert_style(sv.settings.cert_block);
        for f in write_files(&sessions, &lo) {
            out.push(OutFile::new(format!("{}/{}", sv.name, f.name), f.content));
        }
        out.push(OutFile::new(
            format!("{}/Get-ExchangeCertificate.txt", sv.name),
            hybridlab_artefacts::certs::write_exchange_certificate_list(
                &sv.store.listing_rows(r.end),
                &opts,
            ),
        ));
        let events: Vec<&WindowsEvent> = r
            .site
            .events
            .iter()
            .filter(|(server, _)| server.eq_ignore_ascii_case(&sv.name))
            .map(|(_, e)| e)
            .collect();
        out.push(OutFile::new(
            format!("{}/Get-EventLog-Application.txt", sv.name),
            event_log_list(&events),
        ));
    }
    let rows: Vec<_> = r
        .servers
        .iter()
        .flat_map(|sv| sv.connectors.iter().map(|c| c.listing_row()))
        .collect();
    out.push(OutFile::new(
        "Get-ReceiveConnector.txt",
        write_receive_connector_list(&rows, &opts),
    ));
    let traces: Vec<&MessageTrace> = r.records.iter().map(|d| &d.trace).collect();
    let (from, to) = (r.end - time::Duration::hours(48), r.end);
    out.push(OutFile::new(
        "exo/Get-MessageTrace.txt",
        render(&trace_records(&traces, from, to), &opts),
    ));
    out.push(OutFile::new(
        "exo/Get-MessageTrace.csv",
        csv(&trace_records(&traces, from, to)),
    ));
    out.push(OutFile::new(
        "exo/Get-MessageTraceDetail.txt",
        render(&detail_records(&traces, from, to), &opts),
    ));
    out.push(OutFile::new(
        "exo/Get-MessageTraceDetail.csv",
        csv(&detail_records(&traces, from, to)),
    ));
    let outbound: Vec<OutboundConnectorRow> = r
        .tenant
        .outbound_connectors
        .iter()
        .map(outbound_row)
        .collect();
    out.push(OutFile::new(
        "exo/Get-OutboundConnector.txt",
        write_outbound_connector_list(&outbound, &opts),
    ));
    out.push(OutFile::new(
        "exo/Validate-OutboundConnector.txt",
        validation(s, r, settings),
    ));
    out.push(OutFile {
        name: "lab/exo-deliveries.json".into(),
        content: serde_json::to_string_pretty(&r.records).unwrap_or_default(),
        lab_only: true,
    });
    out.push(OutFile {
        name: "lab/receive-records.json".into(),
        content: serde_json::to_string_pretty(&r.site).unwrap_or_default(),
        lab_only: true,
    });
    out
}

fn date(t: OffsetDateTime) -> PsValue {
    PsValue::Text(en_us_datetime(t))
}

/// `Get-MessageTrace | Format-List` objects (EXO V3 module output; the `PS*` properties the
/// remote session adds first).
pub fn trace_records(
    traces: &[&MessageTrace],
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Vec<FlRecord> {
    traces
        .iter()
        .enumerate()
        .map(|(i, t)| {
            vec![
                ("PSComputerName".into(), PsValue::text(EXO_COMPUTER)),
                (
                    "RunspaceId".into(),
                    PsValue::text(hybridlab_artefacts::queue::LAB_RUNSPACE_ID),
                ),
                ("PSShowComputerName".into(), PsValue::text("False")),
                ("Organization".into(), PsValue::text(&t.organization)),
                ("MessageId".into(), PsValue::text(&t.message_id)),
                ("Received".into(), date(t.received)),
                ("SenderAddress".into(), PsValue::text(&t.sender_address)),
                (
                    "RecipientAddress".into(),
                    PsValue::text(&t.recipient_address),
                ),
                ("Subject".into(), PsValue::text(&t.subject)),
                ("Status".into(), PsValue::text(t.status.as_str())),
                (
                    "ToIP".into(),
                    PsValue::text(t.to_ip.clone().unwrap_or_default()),
                ),
                (
                    "FromIP".into(),
                    PsValue::text(t.from_ip.clone().unwrap_or_default()),
                ),
                ("Size".into(), PsValue::text(t.size.to_string())),
                ("MessageTraceId".into(), PsValue::text(&t.message_trace_id)),
                ("StartDate".into(), date(from)),
                ("EndDate".into(), date(to)),
                ("Index".into(), PsValue::text(i.to_string())),
            ]
        })
        .collect()
}

/// `Get-MessageTrace | Get-MessageTraceDetail | Format-List` objects, every event of every
/// message in order.
pub fn detail_records(
    traces: &[&MessageTrace],
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Vec<FlRecord> {
    let row = |t: &MessageTrace, e: &TraceEvent| -> FlRecord {
        vec![
            ("PSComputerName".into(), PsValue::text(EXO_COMPUTER)),
            (
                "RunspaceId".into(),
                PsValue::text(hybridlab_artefacts::queue::LAB_RUNSPACE_ID),
            ),
            ("PSShowComputerName".into(), PsValue::text("False")),
            ("Organization".into(), PsValue::text(&t.organization)),
            ("MessageId".into(), PsValue::text(&t.message_id)),
            ("MessageTraceId".into(), PsValue::text(&t.message_trace_id)),
            ("Date".into(), date(e.date)),
            ("Event".into(), PsValue::text(e.event.as_str())),
            ("Action".into(), PsValue::text(&e.action)),
            ("Detail".into(), PsValue::text(&e.detail)),
            ("Data".into(), PsValue::text(&e.data)),
            ("StartDate".into(), date(from)),
            ("EndDate".into(), date(to)),
        ]
    };
    traces
        .iter()
        .flat_map(|t| t.events.iter().map(move |e| row(t, e)))
        .collect()
}

/// `Export-Csv -NoTypeInformation` of objects: a quoted header of the first object's property
/// names, then one quoted row per object, CRLF line ends.
pub fn csv(records: &[FlRecord]) -> String {
    let Some(first) = records.first() else {
        return String::new();
    };
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = String::new();
    let header: Vec<String> = first.iter().map(|(n, _)| q(n)).collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for r in records {
        let row: Vec<String> = r.iter().map(|(_, v)| q(&v.display(None))).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// `Get-EventLog -LogName Application | Format-List` of `events`, newest first: `Index`,
/// `EntryType`, `InstanceId`, `Message` (further lines at the value column), `Category`,
/// `CategoryNumber`, `ReplacementStrings`, `Source`, `TimeGenerated`, `TimeWritten`, `UserName`.
/// Not wrapped (as `Out-File -Width 4096`).
pub fn event_log_list(events: &[&WindowsEvent]) -> String {
    const NAMES: [&str; 11] = [
        "Index",
        "EntryType",
        "InstanceId",
        "Message",
        "Category",
        "CategoryNumber",
        "ReplacementStrings",
        "Source",
        "TimeGenerated",
        "TimeWritten",
        "UserName",
    ];
    let width = NAMES.iter().map(|n| n.len()).max().unwrap_or(0);
    let mut out = String::from("\r\n\r\n");
    let mut sorted: Vec<&&WindowsEvent> = events.iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(e.time));
    let base = 41_000 + events.len();
    for (i, e) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let strings = format!("{{{}}}", e.replacement_strings.join(", "));
        let values: [String; 11] = [
            (base - i).to_string(),
            e.level.to_string(),
            e.instance_id().to_string(),
            e.message.clone(),
            e.category.clone(),
            e.category_number.to_string(),
            strings,
            e.source.clone(),
            en_us_datetime(e.time),
            en_us_datetime(e.time),
            String::new(),
        ];
        for (name, value) in NAMES.iter().zip(values) {
            out.push_str(&format!("{name:<width$} :"));
            for (k, line) in value.replace("\r\n", "\n").split('\n').enumerate() {
                if k == 0 {
                    if !line.is_empty() {
                        out.push(' ');
                        out.push_str(line);
                    }
                } else {
                    out.push_str("\r\n");
                    out.push_str(&" ".repeat(width + 3));
                    out.push_str(line);
                }
            }
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n\r\n");
    out
}

/// The `Get-OutboundConnector` row of a connector.
pub fn outbound_row(c: &OutboundConnector) -> OutboundConnectorRow {
    OutboundConnectorRow {
        name: c.name.clone(),
        identity: Some(c.name.clone()),
        enabled: Some(c.enabled),
        use_mx_record: Some(c.use_mx_record),
        comment: None,
        connector_type: Some(format!("{:?}", c.connector_type)),
        connector_source: Some(format!("{:?}", c.connector_source)),
        recipient_domains: c.recipient_domains.iter().map(|d| d.0.clone()).collect(),
        smart_hosts: c.smart_hosts.iter().map(ToString::to_string).collect(),
        tls_domain: c.tls_domain.clone(),
        tls_settings: c.tls_settings.to_string().parse().ok(),
        is_transport_rule_scoped: Some(c.is_transport_rule_scoped),
        route_all_messages_via_on_premises: Some(c.route_all_messages_via_on_premises),
        cloud_services_mail_enabled: Some(c.cloud_services_mail_enabled),
        all_accepted_domains: Some(c.all_accepted_domains),
        test_mode: Some(false),
        is_validated: Some(false),
    }
}

/// `Validate-OutboundConnector -Identity <connector> -Recipients <first recipient> | Format-List`
/// at the end of the run, as the lab models it \[U: the cmdlet's output object is not
/// documented\]: one object per connector that carried mail, `Status` `Succeeded` when the last
/// attempt delivered, else `Failed` with the LED of the last attempt as `Detail`.
pub fn validation(_s: &Scenario, r: &ExoReplay, settings: &DeliverySettings) -> String {
    let mut objects: Vec<FlRecord> = Vec::new();
    for c in &r.tenant.outbound_connectors {
        let last: Option<&DeliveryRecord> = r
            .records
            .iter()
            .rfind(|d| d.attempts.iter().any(|a| a.connector == c.name));
        let Some(d) = last else { continue };
        let a = d.attempts.last();
        let (status, detail) = match a.map(|a| &a.outcome) {
            Some(o) if o.is_delivered() => ("Succeeded", String::new()),
            Some(o) => (
                "Failed",
                o.led().map(ToString::to_string).unwrap_or_default(),
            ),
            None => ("Failed", String::new()),
        };
        objects.push(vec![
            ("Identity".into(), PsValue::text(&c.name)),
            (
                "SmartHost".into(),
                PsValue::text(a.map(|a| a.target_host.clone()).unwrap_or_default()),
            ),
            (
                "Recipient".into(),
                PsValue::text(&d.trace.recipient_address),
            ),
            ("Status".into(), PsValue::text(status)),
            ("Detail".into(), PsValue::text(detail)),
            ("ServiceHost".into(), PsValue::text(&settings.service_host)),
        ]);
    }
    render(&objects, &FlOptions::default())
}

/// Diagnoses the run's Exchange files exactly as a customer's export (the lab's own records are
/// left out).
pub fn diagnose_files(files: &[OutFile]) -> hybridlab_diagnose::Report {
    let mut reader = hybridlab_artefacts::ArtefactReader::new();
    for f in files.iter().filter(|f| !f.lab_only) {
        reader.add_bytes(&f.name, f.content.as_bytes());
    }
    hybridlab_diagnose::diagnose(&reader.finish(), &hybridlab_diagnose::Options::default())
}
