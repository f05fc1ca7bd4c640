//! `[eop.endpoint]`: the EOP front end the sender reaches, as its replies name it.

use serde::{Deserialize, Serialize};

/// The EOP front end the sender reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Endpoint {
    /// The front-end host named in the banner and the EHLO reply
    /// (`AM5EUR02FT017.mail.protection.outlook.com`).
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
}

impl Default for Endpoint {
    fn default() -> Self {
        Self {
            hostname: "AM5EUR02FT017.mail.protection.outlook.com".into(),
            region: "EUR".into(),
            backend_host: "AM0PR01MB1234.eurprd01.prod.exchangelabs.com".into(),
            reject_host: "AM5EUR02FT017.eop-EUR02.prod.protection.outlook.com".into(),
            banner_session_id: true,
        }
    }
}
