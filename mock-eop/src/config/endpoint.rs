//! `[eop.endpoint]`: the EOP front end the sender reaches, as its replies name it.

use serde::{Deserialize, Serialize};

/// The EOP front end the sender reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Endpoint {
    /// The front-end host named in the banner and the EHLO reply
    /// (`AMS0EPF0000019A.mail.protection.outlook.com`).
    pub hostname: String,
    /// The region (forest) of this endpoint; a tenant in another region gets ATTR35 (4.4.62).
    pub region: String,
    /// The back-end host named in `250 2.6.0 ... [InternalId=..., Hostname=...]`.
    pub backend_host: String,
    /// The host in brackets at the end of reject texts (`... Relay Access Denied [host]`).
    pub reject_host: String,
    /// Whether the banner ends with a bracketed 16-hex session id (current banners do; older
    /// ones did not).
    pub banner_session_id: bool,
    /// The form of the bracketed tag at the end of reject texts: `current` (since about 2023:
    /// host, time and session id) or `legacy` (the host alone).
    pub reply_tag: ReplyTagEra,
}

/// The era of the bracketed tag EOP appends to reject texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyTagEra {
    /// `[DM6NAM11FT088.eop-nam11.prod.protection.outlook.com 2023-10-28T12:19:31.847Z
    /// 08DBD70830F39917]`: host, UTC time with milliseconds, session id.
    #[default]
    Current,
    /// `[AM5EUR02FT017.eop-EUR02.prod.protection.outlook.com]`: the host alone (before 2023).
    Legacy,
}

/// `2023-10-28T12:19:31.847Z`.
const TAG_TIME: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

impl Endpoint {
    /// What goes between the brackets at the end of a reject text, for a session `session_id`
    /// at `now`: `<reject_host> <time> <session id>` (current) or `<reject_host>` (legacy).
    pub fn reply_tag(&self, now: time::OffsetDateTime, session_id: &str) -> String {
        match self.reply_tag {
            ReplyTagEra::Legacy => self.reject_host.clone(),
            ReplyTagEra::Current => {
                let at = now
                    .to_offset(time::UtcOffset::UTC)
                    .format(TAG_TIME)
                    .unwrap_or_default();
                format!("{} {at} {session_id}", self.reject_host)
            }
        }
    }
}

impl Default for Endpoint {
    fn default() -> Self {
        Self {
            hostname: "AMS0EPF0000019A.mail.protection.outlook.com".into(),
            region: "EUR".into(),
            backend_host: "AM0PR01MB1234.eurprd01.prod.exchangelabs.com".into(),
            reject_host: "AMS0EPF0000019A.eurprd04.prod.outlook.com".into(),
            banner_session_id: true,
            reply_tag: ReplyTagEra::Current,
        }
    }
}
