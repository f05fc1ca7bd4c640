//! hybridlab's shared vocabulary: what both sides of the lab (the mock EOP and the on-premises
//! Exchange), the artefact formats and the diagnosis all speak. No IO, no clock, no tokio.
//!
//! # Layout
//! - [`core`]: [`core::ProtocolCore`], the one vocabulary of the sans-IO protocol cores.
//! - [`reply`]: SMTP replies as data, enhanced status codes, the canned texts EOP sends.
//! - [`exchange`]: Exchange's tokens (SChannel status names, disconnect reasons, queue states,
//!   versions, the transport's synthetic replies) and [`token_enum!`], the one macro for them.
//! - [`x509`]: certificate facts the Windows way (thumbprint, .NET DN rendering, wildcard rules).
//! - [`event`]: Windows Application-log events as plain data (id, level, category, message).
//! - [`dn`]: distinguished names as the lab writes them (`CN=..., O=..., C=US`).
//! - [`identifier`]: `<I>issuer<S>subject`, the `TlsCertificateName` form.
//! - [`led`]: last-error details: the `[{LED=..};{MSG=..};..]` frame of queues and message traces,
//!   Exchange Online's delivery LED and service tags.
//! - [`timespan`]: .NET `TimeSpan` durations (`00:05:00`, `1.00:00:00`, `30s`).
//! - [`size`]: byte sizes as Exchange writes them (`35 MB (36,700,160 bytes)`, `Unlimited`).
//! - [`located`]: errors placed in a TOML file (`file:line:column`) by toml's spans and key paths.
//! - [`exo`]: Exchange Online objects (tenants, accepted domains, inbound and outbound connectors).
//! - [`delivery`]: Exchange Online's delivery to on-premises: its uncertain behaviours as settings
//!   and the record of every attempt.
//! - [`trace`]: Exchange Online's message trace (`Get-MessageTrace` rows and their detail events).
//! - [`attribution`]: EOP's tenant-attribution verdicts.
//! - [`record`]: the mock EOP's session and message records (JSON lines), read by the diagnosis.

/// `Serialize` as a string and `Deserialize` through `FromStr` (its error becomes the serde
/// error, so a config loader can point at the field). `$to` turns a value into its text.
#[macro_export]
macro_rules! serde_via_str {
    ($t:ty, $to:expr) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let to: fn(&$t) -> String = $to;
                s.serialize_str(&to(self))
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub mod attribution;
pub mod core;
pub mod delivery;
pub mod dn;
pub mod event;
pub mod exchange;
pub mod exo;
pub mod identifier;
pub mod led;
pub mod located;
pub mod record;
pub mod reply;
pub mod size;
pub mod timespan;
pub mod trace;
pub mod x509;
