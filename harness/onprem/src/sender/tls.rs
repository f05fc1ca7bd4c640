//! The SChannel side of the sender, built on rustls: the client configuration (versions and suites
//! from [`SchannelSettings`], the lab clock as rustls' time source, the chosen certificate as the
//! client credential), a server-certificate verifier that runs the real webpki chain check against
//! the lab roots and *records* the verdict (the Exchange layer judges it per `TlsAuthLevel` after the
//! handshake, as Exchange does), and the mapping of handshake errors to SChannel status names.

use std::io;
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, SignatureScheme,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::schannel::SchannelSettings;
use hybridlab_model::exchange::SecurityStatus;

/// The Windows chain status of the certificate the remote server presented, as the sender's
/// check found it (the name is not part of it: Exchange checks the name against `TlsDomain`
/// separately). Not the mock's `hybridlab_model::record::ChainVerdict`, which judges a client
/// certificate in rustls' terms and has no "no certificate" case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteChainStatus {
    /// Builds to a lab root and is in date.
    Trusted,
    /// Ends at an untrusted root, or an intermediate is missing.
    UntrustedRoot,
    /// A certificate of the chain is expired.
    Expired,
    /// A certificate of the chain is not yet valid.
    NotTimeValid,
    /// The peer sent no certificate.
    NoCertificate,
    /// Anything else webpki refused.
    Other(String),
}

impl RemoteChainStatus {
    /// The chain status name Exchange logs (`UntrustedRoot`, `Expired`, ...).
    pub fn status_name(&self) -> &str {
        match self {
            Self::Trusted => "Success",
            Self::UntrustedRoot => "UntrustedRoot",
            Self::Expired => "Expired",
            Self::NotTimeValid => "NotTimeValid",
            Self::NoCertificate => "EmptyCertificate",
            Self::Other(_) => "CertUnknown",
        }
    }
}

/// A client credential: the chain to present and its key.
#[derive(Debug)]
pub struct ClientCredential {
    /// The certificates to present: the leaf first, then the intermediates from the store.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key, as the store hands it to SChannel.
    pub key: PrivateKeyDer<'static>,
}

/// What the driver needs to run the handshake (handed out by the machine).
#[derive(Debug)]
pub struct TlsRequest {
    /// SNI / verification name (the smart host or MX host).
    pub server_name: String,
    /// The chosen certificate with its key, when one was selected and usable.
    pub credential: Option<ClientCredential>,
    /// The trust roots the remote certificate must chain to (`LocalMachine\Root`).
    pub roots: rustls::RootCertStore,
    /// The TLS versions and cipher suites SChannel may negotiate.
    pub schannel: SchannelSettings,
}

/// The handshake's result, as the machine consumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsResult {
    /// The handshake completed, with what it negotiated.
    Established(TlsInfo),
    /// SChannel failed with this status.
    Failed(SecurityStatus),
}

/// Facts about an established TLS session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// The negotiated version as the log names it: `TLS1_2` or `TLS1_3`.
    pub protocol: String,
    /// The negotiated cipher suite, by IANA name.
    pub cipher_suite: String,
    /// Key exchange group (`secp256r1`, `X25519`...).
    pub kx_group: Option<String>,
    /// The peer's chain, leaf first.
    #[serde(skip)]
    pub peer_chain: Vec<CertificateDer<'static>>,
    /// What the chain check of the remote certificate found, at the lab time of the handshake.
    pub chain: RemoteChainStatus,
}

impl TlsInfo {
    /// SChannel's success line: `TLS protocol SP_PROT_TLS1_2_CLIENT negotiation succeeded using bulk
    /// encryption algorithm CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 with
    /// strength 0 bits and key exchange algorithm CALG_ECDH_EPHEM with strength 384 bits`.
    pub fn schannel_text(&self) -> String {
        let proto = match self.protocol.as_str() {
            "TLS1_3" => "SP_PROT_TLS1_3_CLIENT",
            _ => "SP_PROT_TLS1_2_CLIENT",
        };
        let s = self.cipher_suite.to_ascii_uppercase();
        let (bulk, bits) = if s.contains("AES_256") {
            ("CALG_AES_256", 256)
        } else if s.contains("AES_128") {
            ("CALG_AES_128", 128)
        } else if s.contains("CHACHA20") {
            ("CALG_CHACHA20", 256)
        } else {
            ("CALG_UNKNOWN", 0)
        };
        let mac = if s.ends_with("SHA384") {
            "CALG_SHA_384"
        } else {
            "CALG_SHA_256"
        };
        let kx_bits = match self.kx_group.as_deref().unwrap_or("") {
            g if g.contains("384") => 384,
            g if g.contains("521") => 521,
            g if g.eq_ignore_ascii_case("x25519") => 255,
            _ => 256,
        };
        format!(
            "TLS protocol {proto} negotiation succeeded using bulk encryption algorithm {bulk} with strength {bits} bits, MAC hash algorithm {mac} with strength 0 bits and key exchange algorithm CALG_ECDH_EPHEM with strength {kx_bits} bits"
        )
    }
}

/// rustls' clock, fixed at the lab time of the handshake.
#[derive(Debug)]
struct LabTime(UnixTime);

impl rustls::time_provider::TimeProvider for LabTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(self.0)
    }
}

/// Converts a lab time to rustls' `UnixTime`.
pub fn unix_time(now: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        now.unix_timestamp().max(0) as u64
    ))
}

/// Records what the chain check found, then lets the handshake go on.
#[derive(Debug)]
pub struct RecordingVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<(Vec<CertificateDer<'static>>, RemoteChainStatus)>>,
}

impl RecordingVerifier {
    /// A verifier over `roots`.
    pub fn new(roots: rustls::RootCertStore, provider: Arc<CryptoProvider>) -> Self {
        let inner = if roots.is_empty() {
            None
        } else {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .ok()
        };
        Self {
            inner,
            provider,
            seen: Mutex::new(None),
        }
    }

    /// The chain and verdict of the last handshake.
    pub fn take(&self) -> Option<(Vec<CertificateDer<'static>>, RemoteChainStatus)> {
        self.seen.lock().ok().and_then(|mut g| g.take())
    }
}

/// Maps a webpki/rustls certificate error to a chain verdict (`None`: the chain is fine, only the
/// name differs, which the Exchange layer judges itself).
pub fn remote_chain_status(e: &TlsError) -> Option<RemoteChainStatus> {
    Some(match e {
        TlsError::InvalidCertificate(c) => match c {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                return None;
            }
            CertificateError::UnknownIssuer => RemoteChainStatus::UntrustedRoot,
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                RemoteChainStatus::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                RemoteChainStatus::NotTimeValid
            }
            other => RemoteChainStatus::Other(format!("{other:?}")),
        },
        other => RemoteChainStatus::Other(other.to_string()),
    })
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let verdict = match &self.inner {
            None => RemoteChainStatus::UntrustedRoot,
            Some(v) => match v.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Ok(_) => RemoteChainStatus::Trusted,
                Err(e) => remote_chain_status(&e).unwrap_or(RemoteChainStatus::Trusted),
            },
        };
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        if let Ok(mut g) = self.seen.lock() {
            *g = Some((chain, verdict));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Builds the client configuration for `req` at lab time `now`.
///
/// # Errors
/// The SChannel status SChannel would return before sending anything: `AlgorithmMismatch` when no
/// protocol version or suite is left, `UnknownCredentials` when the key cannot be used.
pub fn client_config(
    req: TlsRequest,
    now: OffsetDateTime,
) -> Result<(Arc<ClientConfig>, Arc<RecordingVerifier>), SecurityStatus> {
    let (provider, versions) = req
        .schannel
        .provider_and_versions()
        .map_err(|_| SecurityStatus::AlgorithmMismatch)?;
    if versions.is_empty() || provider.cipher_suites.is_empty() {
        return Err(SecurityStatus::AlgorithmMismatch);
    }
    let provider = Arc::new(provider);
    let verifier = Arc::new(RecordingVerifier::new(req.roots, provider.clone()));
    let builder = ClientConfig::builder_with_details(provider, Arc::new(LabTime(unix_time(now))))
        .with_protocol_versions(&versions)
        .map_err(|_| SecurityStatus::AlgorithmMismatch)?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone());
    let config = match req.credential {
        Some(c) => builder
            .with_client_auth_cert(c.chain, c.key)
            .map_err(|_| SecurityStatus::UnknownCredentials)?,
        None => builder.with_no_client_auth(),
    };
    Ok((Arc::new(config), verifier))
}

/// Maps a failed handshake to the SChannel status Exchange would log.
pub fn security_status(e: &io::Error) -> SecurityStatus {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<TlsError>()) {
        return tls_status(tls);
    }
    match e.kind() {
        io::ErrorKind::InvalidData => SecurityStatus::IllegalMessage,
        _ => SecurityStatus::SocketError,
    }
}

fn tls_status(e: &TlsError) -> SecurityStatus {
    use rustls::AlertDescription as A;
    match e {
        TlsError::AlertReceived(
            A::HandshakeFailure | A::ProtocolVersion | A::InsufficientSecurity,
        )
        | TlsError::PeerIncompatible(_)
        | TlsError::NoCertificatesPresented => SecurityStatus::AlgorithmMismatch,
        TlsError::AlertReceived(
            A::BadCertificate
            | A::CertificateRequired
            | A::UnknownCA
            | A::UnsupportedCertificate
            | A::CertificateUnknown,
        ) => SecurityStatus::CertUnknown,
        TlsError::AlertReceived(A::DecryptError | A::BadRecordMac) => {
            SecurityStatus::DecryptFailure
        }
        // any other fatal alert instead of the server's flight: "the message received was
        // unexpected or badly formatted" [U]
        TlsError::AlertReceived(_) => SecurityStatus::IllegalMessage,
        TlsError::InvalidMessage(_)
        | TlsError::InappropriateMessage { .. }
        | TlsError::InappropriateHandshakeMessage { .. }
        | TlsError::PeerMisbehaved(_) => SecurityStatus::IllegalMessage,
        TlsError::DecryptError => SecurityStatus::DecryptFailure,
        _ => SecurityStatus::InvalidToken,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schannel_line() {
        let i = TlsInfo {
            protocol: "TLS1_2".into(),
            cipher_suite: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into(),
            kx_group: Some("secp384r1".into()),
            peer_chain: Vec::new(),
            chain: RemoteChainStatus::Trusted,
        };
        assert_eq!(
            i.schannel_text(),
            "TLS protocol SP_PROT_TLS1_2_CLIENT negotiation succeeded using bulk encryption algorithm CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 with strength 0 bits and key exchange algorithm CALG_ECDH_EPHEM with strength 384 bits"
        );
    }

    #[test]
    fn error_mapping() {
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "eof");
        assert_eq!(security_status(&eof), SecurityStatus::SocketError);
        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            TlsError::AlertReceived(rustls::AlertDescription::HandshakeFailure),
        );
        assert_eq!(security_status(&alert), SecurityStatus::AlgorithmMismatch);
        let garbage = io::Error::new(
            io::ErrorKind::InvalidData,
            TlsError::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        assert_eq!(security_status(&garbage), SecurityStatus::IllegalMessage);
        let internal = io::Error::new(
            io::ErrorKind::InvalidData,
            TlsError::AlertReceived(rustls::AlertDescription::InternalError),
        );
        assert_eq!(security_status(&internal), SecurityStatus::IllegalMessage);
        assert_eq!(
            remote_chain_status(&TlsError::InvalidCertificate(
                CertificateError::UnknownIssuer
            )),
            Some(RemoteChainStatus::UntrustedRoot)
        );
        assert_eq!(
            remote_chain_status(&TlsError::InvalidCertificate(
                CertificateError::NotValidForName
            )),
            None
        );
        let no_versions = SchannelSettings {
            tls12: false,
            tls13: false,
            cipher_suites: None,
        };
        let r = client_config(
            TlsRequest {
                server_name: "x".into(),
                credential: None,
                roots: rustls::RootCertStore::empty(),
                schannel: no_versions,
            },
            time::macros::datetime!(2026-05-02 06:30:00 UTC),
        );
        assert_eq!(r.err(), Some(SecurityStatus::AlgorithmMismatch));
    }
}
