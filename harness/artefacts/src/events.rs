//! Windows Application-log events as admins export them, read into
//! [`hybridlab_model::event::WindowsEvent`]s:
//! - `Get-EventLog -LogName Application | Format-List` (`Index`, `EntryType`, `InstanceId`,
//!   `Message`, `Category`, `CategoryNumber`, `ReplacementStrings`, `Source`, `TimeGenerated`...);
//! - `Get-WinEvent | Format-List` (`TimeCreated`, `ProviderName`, `Id`, `Message`; with `*` also
//!   `LevelDisplayName`, `TaskDisplayName`, `MachineName`...);
//! - `wevtutil qe Application /f:text` (`Event[0]:` blocks of `  Key: value` lines, the
//!   `Description:` running to the next block, see
//!   <https://learn.microsoft.com/windows-server/administration/windows-commands/wevtutil>).
//!
//! The first two arrive as listings (text, JSON, CSV or table) and go through the shared
//! [`PsObject`] readers; `Message` spans several lines there (continuations indented to the value
//! column, blank lines inside a message kept by [`crate::format_list`]). The third is parsed here
//! into the same objects. An event without a readable time gets the Unix epoch (documented on
//! [`event_from_object`]).

use hybridlab_model::event::{EventLevel, WindowsEvent};
use time::OffsetDateTime;

use super::ps::{Parsed, PsObject, PsProperty, PsValue, parse_ps_datetime, server_name};
use super::text::{Evidence, split_lines};

/// Whether an object is an event: `Get-EventLog` (`EntryType` + `InstanceId`/`EventID`),
/// `Get-WinEvent` (`ProviderName` + `Id`) or a `wevtutil` block (`Source` + `Event ID`).
pub fn is_event(obj: &PsObject) -> bool {
    (obj.has_loose(&["EntryType"]) && obj.has_loose(&["InstanceId", "EventID"]))
        || (obj.has_loose(&["ProviderName"])
            && obj.has_loose(&["Id"])
            && obj.has_loose(&["TimeCreated", "Message"]))
        || (obj.has_loose(&["Source"]) && obj.has_loose(&["Event ID"]) && obj.has("Log Name"))
}

/// The level from `EntryType`/`LevelDisplayName`/`Level` (a word or `Get-WinEvent`'s number:
/// 1 critical and 2 error read as Error, 3 Warning, anything else Information).
fn level_of(obj: &PsObject) -> EventLevel {
    let word = obj
        .text_loose(&["EntryType", "LevelDisplayName", "Level"])
        .unwrap_or_default();
    let w = word.trim().to_ascii_lowercase();
    match w.as_str() {
        "error" | "critical" | "1" | "2" | "fehler" | "erreur" => EventLevel::Error,
        "warning" | "3" | "warnung" | "avertissement" => EventLevel::Warning,
        _ => EventLevel::Information,
    }
}

/// An event from a listed object. The id is `EventID`/`Id`/`Event ID`, else `InstanceId` without
/// its severity bits. `time` is `TimeGenerated`/`TimeCreated`/`Date`, else the Unix epoch (no
/// export the readers know omits it). `machine` is `MachineName`/`Computer` (the object's
/// [`Parsed::server`] is that machine's NetBIOS name when no other field names a server).
pub fn event_from_object(obj: &PsObject) -> Option<Parsed<WindowsEvent>> {
    let id = obj
        .text_loose(&["EventID", "Id", "Event ID"])
        .and_then(|t| t.trim().parse::<u32>().ok())
        .or_else(|| {
            obj.text_loose(&["InstanceId"])
                .and_then(|t| t.trim().parse::<u64>().ok())
                .map(|n| (n & 0xFFFF) as u32)
        })?;
    let machine = obj
        .text_loose(&["MachineName", "Computer"])
        .unwrap_or_default();
    let ev = WindowsEvent {
        source: obj
            .text_loose(&["Source", "ProviderName"])
            .unwrap_or_default(),
        id,
        level: level_of(obj),
        category: obj
            .text_loose(&["Category", "TaskDisplayName", "Task"])
            .unwrap_or_default(),
        category_number: obj
            .text_loose(&["CategoryNumber"])
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0),
        symbolic_name: String::new(),
        time: obj
            .text_loose(&["TimeGenerated", "TimeCreated", "Date", "TimeWritten"])
            .and_then(|t| parse_ps_datetime(&t))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        message: obj
            .text_loose(&["Message", "Description"])
            .unwrap_or_default(),
        replacement_strings: obj.list("ReplacementStrings"),
        machine: machine.clone(),
    };
    let mut p = Parsed::of(ev, obj);
    if p.server.is_none() {
        p.server = server_name(&machine);
    }
    Some(p)
}

/// Whether `text` is `wevtutil qe ... /f:text` output (an `Event[n]:` line first).
pub fn is_wevtutil_text(text: &str) -> bool {
    split_lines(text)
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| wevtutil_block_start(l).is_some())
}

fn wevtutil_block_start(line: &str) -> Option<()> {
    let t = line.trim();
    let inner = t.strip_prefix("Event[")?.strip_suffix("]:")?;
    inner.parse::<u64>().ok().map(|_| ())
}

/// Parses `wevtutil qe /f:text` output into one object per event (property names as printed:
/// `Log Name`, `Source`, `Date`, `Event ID`, `Task`, `Level`, `Computer`, `Description`...).
/// Returns the objects and the lines of no event (counted as skipped by the caller).
pub fn parse_wevtutil(file: &str, text: &str) -> (Vec<PsObject>, Vec<Evidence>) {
    let mut objects = Vec::new();
    let mut stray = Vec::new();
    let mut cur: Option<PsObject> = None;
    let mut in_description = false;
    for (i, raw) in split_lines(text).enumerate() {
        let ev = Evidence::new(file, i + 1, raw);
        if wevtutil_block_start(raw).is_some() {
            if let Some(o) = cur.take() {
                objects.push(o);
            }
            cur = Some(PsObject::default());
            in_description = false;
            continue;
        }
        let Some(obj) = cur.as_mut() else {
            if !raw.trim().is_empty() {
                stray.push(ev);
            }
            continue;
        };
        if in_description {
            if let Some(PsProperty {
                value: PsValue::Text(t),
                ..
            }) = obj.props.last_mut()
            {
                t.push('\n');
                t.push_str(raw);
            } else if let Some(p) = obj.props.last_mut() {
                p.value = PsValue::text(raw);
            }
            continue;
        }
        let field = raw
            .strip_prefix("  ")
            .and_then(|r| r.split_once(':'))
            .filter(|(k, _)| !k.trim().is_empty() && !k.starts_with(' '));
        match field {
            Some((k, v)) => {
                let key = k.trim();
                in_description = key.eq_ignore_ascii_case("Description");
                obj.props.push(PsProperty {
                    name: key.to_string(),
                    value: PsValue::text(v.trim()),
                    evidence: ev,
                });
            }
            None if raw.trim().is_empty() => {}
            None => stray.push(ev),
        }
    }
    if let Some(o) = cur.take() {
        objects.push(o);
    }
    for o in &mut objects {
        if let Some(p) = o.props.last_mut()
            && p.name.eq_ignore_ascii_case("Description")
            && let PsValue::Text(t) = &p.value
        {
            p.value = PsValue::text(t.trim().to_string());
        }
    }
    (objects, stray)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wevtutil_text_blocks() {
        let text = "Event[0]:\r\n  Log Name: Application\r\n  Source: MSExchangeFrontEndTransport\r\n  Date: 2019-05-02T06:30:01.123\r\n  Event ID: 12014\r\n  Task: TransportService\r\n  Level: Error\r\n  Opcode: Info\r\n  Keyword: Classic\r\n  User: N/A\r\n  User Name: N/A\r\n  Computer: EXCH01.contoso.com\r\n  Description: \r\nMicrosoft Exchange could not find a certificate that contains the domain name mail.contoso.com in the personal store on the local computer.\r\nTherefore, it is unable to support the STARTTLS SMTP verb for the connector Default Frontend EXCH01.\r\n\r\nEvent[1]:\r\n  Log Name: Application\r\n  Source: MSExchangeTransport\r\n  Date: 2019-05-02T06:31:00.000\r\n  Event ID: 15004\r\n  Task: ResourceManager\r\n  Level: Warning\r\n  Computer: EXCH02.contoso.com\r\n  Description: The resource pressure increased from Medium to High.\r\n";
        assert!(is_wevtutil_text(text));
        let (objs, stray) = parse_wevtutil("app.txt", text);
        assert!(stray.is_empty());
        assert_eq!(objs.len(), 2);
        assert!(is_event(&objs[0]));
        let e = event_from_object(&objs[0]).unwrap();
        assert_eq!(e.row.id, 12014);
        assert_eq!(e.row.level, EventLevel::Error);
        assert_eq!(e.server.as_deref(), Some("EXCH01"));
        assert!(
            e.row
                .message
                .starts_with("Microsoft Exchange could not find")
        );
        assert!(e.row.message.contains("\nTherefore"));
        let w = event_from_object(&objs[1]).unwrap();
        assert_eq!(w.row.level, EventLevel::Warning);
        assert_eq!(
            w.row.message,
            "The resource pressure increased from Medium to High."
        );
    }
}
