//! hybridlab: the on-premises Exchange side of the lab, scenario replay and diagnosis.
//!
//! # Layout
//! - [`exchange`]: Exchange's vocabulary (SChannel status names, disconnect reasons, queue states,
//!   versions, the transport's synthetic replies), shared by the lab and the diagnosis.
//! - [`artefacts`]: protocol logs, queues and listings in Exchange's formats.
//! - [`connector`]: the send connector, transport retry settings, server identity, SChannel settings.
//! - [`certstore`]: `Cert:\LocalMachine\My` with the Windows-only flags, plus the lab trust stores.
//! - [`resolver`]: the lab resolver (smart host / MX names to the mock; never real DNS).
//! - [`message`]: outbound messages and their MIME text (CrossPremises header promotion).
//! - [`selection`]: outbound STARTTLS certificate selection (TlsCertificateName and FQDN paths).
//! - [`sender`]: the sans-IO Exchange-like SMTP client, its SChannel-like TLS, and the tokio driver.
//! - [`transport`]: the delivery queue, retries on the virtual clock, DSN/NDR, the LastError wrapper.

pub mod artefacts;
pub mod certstore;
pub mod connector;
pub mod exchange;
pub mod message;
pub mod resolver;
pub mod selection;
pub mod sender;
pub mod transport;
