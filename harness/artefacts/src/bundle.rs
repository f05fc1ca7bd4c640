//! Everything a lab run knows, as the files a support engineer collects from a real server.
//!
//! An [`ArtefactBundle`] holds the data in Exchange's shapes (protocol log sessions, connectivity
//! events, queue and message rows, certificate rows, send connector rows, and optionally the mock
//! EOP's session records and exported certificates); [`ArtefactBundle::render`] turns it into named
//! file contents without touching the disk, and [`ArtefactBundle::write_to`] writes them into a
//! folder. The on-prem model fills a bundle with `Transport::artefact_bundle`.
//!
//! Files (names fixed; the protocol and connectivity logs carry their date):
//!
//! | file | content |
//! |---|---|
//! | `SENDyyyymmdd-N.LOG` | SMTP send protocol log ([`super::protocol_log::write_files`]) |
//! | `CONNECTLOGyyyymmdd-1.LOG` | connectivity log, one file per UTC day |
//! | `Get-Queue.txt`, `Get-Queue.json` | `Get-Queue \| Format-List`, `Get-Queue \| ConvertTo-Json` |
//! | `Get-Message.txt` | `Get-Message \| Format-List` |
//! | `Get-ExchangeCertificate.txt` | `Get-ExchangeCertificate \| Format-List` (keyed certificates only) |
//! | `Get-ChildItem-Cert.txt` | `Get-ChildItem Cert:\LocalMachine\My \| Format-List *` (all) |
//! | `Get-SendConnector.txt` | `Get-SendConnector \| Format-List` |
//! | `Get-InboundConnector.txt` | Exchange Online `Get-InboundConnector \| Format-List` of the organisation's tenant (when known) |
//! | `NDR-<internal id>.eml` | each non-delivery report the transport generated (RFC 3464, [`super::ndr`]) |
//! | `mock-eop-sessions.jsonl` | the mock's session records, one JSON document per line (when given) |
//! | `certificates/<thumbprint>.cer`, `.key` | exported certificates (PEM) and keys, mode 0600 (when asked) |

use std::path::{Path, PathBuf};

use hybridlab_model::record::SessionRecord;

use super::certs::{CertListingRow, write_cert_provider_list, write_exchange_certificate_list};
use super::connectivity::{self, ConnectivityEvent};
use super::connectors::{
    InboundConnectorRow, SendConnectorRow, write_inbound_connector_list, write_send_connector_list,
};
use super::format_list::FlOptions;
use super::ndr::NdrReport;
use super::protocol_log::{LogWriterOptions, ProtocolLogSession, write_files};
use super::ps_json::JsonStyle;
use super::queue::{MessageRow, QueueRow, write_message_list, write_queue_json, write_queue_list};

/// `Get-Queue | Format-List`.
pub const QUEUE_LIST: &str = "Get-Queue.txt";
/// `Get-Queue | ConvertTo-Json`.
pub const QUEUE_JSON: &str = "Get-Queue.json";
/// `Get-Message | Format-List`.
pub const MESSAGE_LIST: &str = "Get-Message.txt";
/// `Get-ExchangeCertificate | Format-List`.
pub const EXCHANGE_CERTIFICATE_LIST: &str = "Get-ExchangeCertificate.txt";
/// `Get-ChildItem Cert:\LocalMachine\My | Format-List *`.
pub const CERT_PROVIDER_LIST: &str = "Get-ChildItem-Cert.txt";
/// `Get-SendConnector | Format-List`.
pub const SEND_CONNECTOR_LIST: &str = "Get-SendConnector.txt";
/// Exchange Online `Get-InboundConnector | Format-List`.
pub const INBOUND_CONNECTOR_LIST: &str = "Get-InboundConnector.txt";
/// The mock EOP's session records (JSON lines, as `mock-eop serve --records` writes them).
pub const MOCK_RECORDS: &str = "mock-eop-sessions.jsonl";
/// The folder exported certificates and keys go to.
pub const CERTIFICATE_DIR: &str = "certificates";

/// A certificate exported from the store, with its key when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedCertificate {
    /// 40 uppercase hex digits (the file name).
    pub thumbprint: String,
    /// The certificate in PEM (`-----BEGIN CERTIFICATE-----`).
    pub cert_pem: String,
    /// The PKCS#8 key, PEM (written mode 0600).
    pub key_pem: Option<String>,
}

/// What a lab run knows, in Exchange's shapes.
#[derive(Debug, Clone, Default)]
pub struct ArtefactBundle {
    /// The server name (`EDGE01`), for identities that name it.
    pub server: String,
    /// Send protocol log sessions (empty when the connector's ProtocolLoggingLevel is None).
    pub send_sessions: Vec<ProtocolLogSession>,
    /// Connectivity log lines, in time order.
    pub connectivity: Vec<ConnectivityEvent>,
    /// `Get-Queue` rows.
    pub queues: Vec<QueueRow>,
    /// `Get-Message` rows.
    pub messages: Vec<MessageRow>,
    /// Every certificate of `LocalMachine\My` (the Exchange listing keeps the keyed ones).
    pub certificates: Vec<CertListingRow>,
    /// `Get-SendConnector` rows.
    pub send_connectors: Vec<SendConnectorRow>,
    /// The mock EOP's records of the same run, when the peer was the mock.
    pub mock_records: Option<Vec<SessionRecord>>,
    /// Exchange Online's `Get-InboundConnector` rows of the organisation's tenant; `None` when
    /// the Exchange Online side is not known (an empty list is the cmdlet's empty output).
    pub inbound_connectors: Option<Vec<InboundConnectorRow>>,
    /// The NDRs the transport generated (messages that left the queue undelivered).
    pub ndrs: Vec<NdrReport>,
    /// Certificates (and keys) to export; empty by default.
    pub exported_certificates: Vec<ExportedCertificate>,
}

/// How the files are written.
#[derive(Debug, Clone)]
pub struct BundleOptions {
    /// Send protocol log options (certificate block style, `#Version`, line ends, file size).
    pub send_log: LogWriterOptions,
    /// Format-List options (80 columns and CRLF, as Windows PowerShell 5.1 `Out-File`).
    pub list: FlOptions,
    /// ConvertTo-Json style (Windows PowerShell 5.1 or PowerShell 7 shapes).
    pub json: JsonStyle,
}

impl Default for BundleOptions {
    fn default() -> Self {
        Self {
            send_log: LogWriterOptions::send(),
            list: FlOptions::default(),
            json: JsonStyle::default(),
        }
    }
}

/// One rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// Path relative to the bundle folder (`/` separated).
    pub name: String,
    /// The file's whole text, as written to disk.
    pub content: String,
    /// A private key: written readable by the owner only (mode 0600).
    pub secret: bool,
}

/// Writing a bundle failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Creating the folder or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The folder or file that could not be created or written.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

impl ArtefactBundle {
    /// The mock's session records go into [`MOCK_RECORDS`].
    pub fn with_mock_records(mut self, records: Vec<SessionRecord>) -> Self {
        self.mock_records = Some(records);
        self
    }

    /// Exchange Online's `Get-InboundConnector` rows go into [`INBOUND_CONNECTOR_LIST`].
    pub fn with_inbound_connectors(mut self, rows: Vec<InboundConnectorRow>) -> Self {
        self.inbound_connectors = Some(rows);
        self
    }

    /// The files, in a fixed order (logs first), without touching the disk.
    pub fn render(&self, opts: &BundleOptions) -> Vec<BundleFile> {
        let mut out: Vec<BundleFile> = Vec::new();
        let mut push = |name: String, content: String, secret: bool| {
            out.push(BundleFile {
                name,
                content,
                secret,
            });
        };
        for f in write_files(&self.send_sessions, &opts.send_log) {
            push(f.name, f.content, false);
        }
        let mut days: Vec<(time::Date, Vec<ConnectivityEvent>)> = Vec::new();
        for e in &self.connectivity {
            let day = e.at.to_offset(time::UtcOffset::UTC).date();
            match days.iter_mut().find(|(d, _)| *d == day) {
                Some((_, v)) => v.push(e.clone()),
                None => days.push((day, vec![e.clone()])),
            }
        }
        for (day, events) in days {
            push(
                connectivity::file_name(day, 1),
                connectivity::write_log(&events, &opts.send_log.version, opts.send_log.line_ending),
                false,
            );
        }
        push(
            QUEUE_LIST.into(),
            write_queue_list(&self.queues, &opts.list),
            false,
        );
        push(
            QUEUE_JSON.into(),
            write_queue_json(&self.queues, opts.json),
            false,
        );
        push(
            MESSAGE_LIST.into(),
            write_message_list(&self.messages, &opts.list),
            false,
        );
        push(
            EXCHANGE_CERTIFICATE_LIST.into(),
            write_exchange_certificate_list(&self.certificates, &opts.list),
            false,
        );
        push(
            CERT_PROVIDER_LIST.into(),
            write_cert_provider_list(&self.certificates, &opts.list),
            false,
        );
        push(
            SEND_CONNECTOR_LIST.into(),
            write_send_connector_list(&self.send_connectors, &opts.list),
            false,
        );
        if let Some(rows) = &self.inbound_connectors {
            push(
                INBOUND_CONNECTOR_LIST.into(),
                write_inbound_connector_list(rows, &opts.list),
                false,
            );
        }
        for n in &self.ndrs {
            push(n.file_name(), super::ndr::write_dsn(n), false);
        }
        if let Some(records) = &self.mock_records {
            let mut text = String::new();
            for r in records {
                text.push_str(&r.to_json_line());
                text.push('\n');
            }
            push(MOCK_RECORDS.into(), text, false);
        }
        for c in &self.exported_certificates {
            push(
                format!("{CERTIFICATE_DIR}/{}.cer", c.thumbprint),
                c.cert_pem.clone(),
                false,
            );
            if let Some(k) = &c.key_pem {
                push(
                    format!("{CERTIFICATE_DIR}/{}.key", c.thumbprint),
                    k.clone(),
                    true,
                );
            }
        }
        out
    }

    /// Renders and writes every file under `dir` (created if missing); returns the paths written.
    /// Key files are created with mode 0600 (and set to 0600 if they already existed).
    ///
    /// # Errors
    /// A folder cannot be created or a file cannot be written (the error names the path).
    pub fn write_to(&self, dir: &Path, opts: &BundleOptions) -> Result<Vec<PathBuf>, BundleError> {
        let mut written = Vec::new();
        for f in self.render(opts) {
            let path = f.name.split('/').fold(dir.to_path_buf(), |p, c| p.join(c));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| BundleError::Io {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            let io = |source| BundleError::Io {
                path: path.clone(),
                source,
            };
            if f.secret {
                write_private(&path, f.content.as_bytes()).map_err(io)?;
            } else {
                std::fs::write(&path, f.content.as_bytes()).map_err(io)?;
            }
            written.push(path);
        }
        Ok(written)
    }
}

/// Writes a file readable and writable by its owner only.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        o.mode(0o600);
        let mut f = o.open(path)?;
        // an existing file keeps its mode on open: tighten it before writing the key
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(data)?;
        f.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut f = o.open(path)?;
        f.write_all(data)?;
        f.sync_all()
    }
}
