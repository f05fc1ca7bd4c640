//! Windows Application-log events as plain data: what Exchange's transport writes through the
//! classic event API (`MSExchangeTransport`, `MSExchangeFrontEndTransport`), before any export
//! format (`Get-EventLog | fl`, `Get-WinEvent | fl`, `wevtutil qe /f:text`) is applied.
//!
//! Exchange's events are "classic" events: an id whose high bits carry the severity
//! (`InstanceId` = qualifiers << 16 | id), a category (shown as `Category` by `Get-EventLog` and
//! `TaskDisplayName` by `Get-WinEvent`), a message built from a template and its replacement
//! strings. The writers of the export formats live with the other artefacts.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

crate::token_enum! {
    /// An event's level, as `Get-EventLog` shows it in `EntryType`.
    EventLevel {
        /// `Error` (qualifiers 0xC000).
        Error => "Error",
        /// `Warning` (qualifiers 0x8000).
        Warning => "Warning",
        /// `Information` (qualifiers 0x4000).
        Information => "Information",
    }
}

impl EventLevel {
    /// The `Qualifiers` value `Get-WinEvent` shows for a classic event of this level (49152,
    /// 32768, 16384) \[U: assumed for every Exchange event\].
    pub fn qualifiers(self) -> u16 {
        match self {
            Self::Error => 0xC000,
            Self::Warning => 0x8000,
            Self::Information => 0x4000,
        }
    }

    /// The numeric `Level` of `Get-WinEvent` (2 error, 3 warning, 4 information).
    pub fn win_event_level(self) -> u8 {
        match self {
            Self::Error => 2,
            Self::Warning => 3,
            Self::Information => 4,
        }
    }
}

/// One event of the Application log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowsEvent {
    /// The provider (`MSExchangeFrontEndTransport` for the Front End Transport service,
    /// `MSExchangeTransport` for Hub and Edge).
    pub source: String,
    /// The event id without severity bits (12014, 15004...).
    pub id: u32,
    /// Error, warning or information.
    pub level: EventLevel,
    /// The category name (`TransportService`, `ResourceManager`, `SmtpReceive`...): `Category` in
    /// `Get-EventLog`, `TaskDisplayName` in `Get-WinEvent`.
    pub category: String,
    /// The category's number (`CategoryNumber`, `Task`) \[U: the lab's numbering\].
    pub category_number: u16,
    /// Exchange's symbolic name of the event tuple (`CannotLoadSTARTTLSCertificateFromStore`):
    /// not part of any export, kept for narration.
    pub symbolic_name: String,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The computer (`EXCH01.contoso.com`).
    pub machine: String,
    /// The full message text (CRLF between lines where the template has several).
    pub message: String,
    /// The strings the template was filled with, in order (`ReplacementStrings`).
    pub replacement_strings: Vec<String>,
}

impl WindowsEvent {
    /// `InstanceId` as `Get-EventLog` shows it: the qualifiers in the high 16 bits, the id below
    /// (12014 as an error is 3221237486).
    pub fn instance_id(&self) -> u64 {
        (u64::from(self.level.qualifiers()) << 16) | u64::from(self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_carry_the_severity() {
        let e = WindowsEvent {
            source: "MSExchangeFrontEndTransport".into(),
            id: 12014,
            level: EventLevel::Error,
            category: "TransportService".into(),
            category_number: 1,
            symbolic_name: "CannotLoadSTARTTLSCertificateFromStore".into(),
            time: time::macros::datetime!(2019-05-02 06:30:01 UTC),
            machine: "EXCH01.contoso.com".into(),
            message: String::new(),
            replacement_strings: Vec::new(),
        };
        assert_eq!(e.instance_id(), 3_221_237_486);
        let w = WindowsEvent {
            id: 15004,
            level: EventLevel::Warning,
            ..e
        };
        assert_eq!(w.instance_id(), 2_147_498_652);
        assert_eq!(
            "warning".parse::<EventLevel>().ok(),
            Some(EventLevel::Warning)
        );
    }
}
