//! TLS for Exchange Online's sending side (rustls, ring only):
//! - [`ExoIdentity`]: EOP's client certificate, `CN=mail.protection.outlook.com` issued by a lab
//!   intermediate named like EOP's (`DigiCert Cloud Services CA-1`) under a lab root, generated at
//!   start with the lab PKI. It is presented only when the server asks for one.
//! - [`ExoTls`]: the client configuration: TLS 1.2 (and 1.3 unless disabled), the trust anchors
//!   certificates are checked against, the lab clock as rustls' time.
//! - a verifier that runs the real webpki chain check and *records* what it found instead of
//!   failing the handshake: the core judges the result per the connector's TlsSettings, as
//!   Exchange Online judges it after the handshake.
//! - [`tls_failure`]: a failed handshake in Exchange Online's words.
//!
//! The lab PKI makes ECDSA keys (ring cannot generate RSA); EOP's real certificate is RSA-2048.

use std::io;
use std::sync::{Arc, Mutex};

use hybridlab_labkit::pki::{CertAuthority, CertSpec, DnSpec, Eku, PkiError};
use hybridlab_model::delivery::{AttemptTls, ChainStatus};
use hybridlab_model::x509::CertFacts;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use time::OffsetDateTime;

use super::led::TlsFailure;

/// Errors setting up the sender's TLS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExoTlsError {
    /// Generating the client certificate failed.
    #[error("lab PKI: {0}")]
    Pki(#[from] PkiError),
    /// rustls refused a certificate, key or trust anchor.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// EOP's client certificate chain and key, and the root a receiving server must trust.
pub struct ExoIdentity {
    /// Leaf (`CN=mail.protection.outlook.com`) then the intermediate.
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// The lab root the intermediate chains to.
    pub trust_anchor: CertificateDer<'static>,
    /// The leaf, read back.
    pub leaf: CertFacts,
}

impl std::fmt::Debug for ExoIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExoIdentity")
            .field("subject", &self.leaf.subject)
            .field("issuer", &self.leaf.issuer)
            .field("thumbprint", &self.leaf.thumbprint)
            .finish_non_exhaustive()
    }
}

/// The subject of EOP's certificate as receivers log it (2021-2026 captures).
pub const EOP_SUBJECT: &str =
    "CN=mail.protection.outlook.com, O=Microsoft Corporation, L=Redmond, S=Washington, C=US";
/// The issuing CA's name (a lab CA named like EOP's issuer).
pub const EOP_ISSUER: &str = "CN=DigiCert Cloud Services CA-1, O=DigiCert Inc, C=US";
/// The lab root above it.
pub const EOP_ROOT: &str =
    "CN=Lab DigiCert Global Root G2, OU=hybridlab, O=Lab Trust Services, C=US";

fn dn(s: &str) -> Result<DnSpec, PkiError> {
    Ok(s.parse::<DnSpec>()?)
}

impl ExoIdentity {
    /// Generates the chain, valid around `epoch` (the lab clock's start).
    pub fn generate(epoch: OffsetDateTime) -> Result<Self, ExoTlsError> {
        let root = CertAuthority::root(&CertSpec::authority(dn(EOP_ROOT)?, epoch))?;
        let ca = root.intermediate(&CertSpec::authority(dn(EOP_ISSUER)?, epoch))?;
        let mut spec = CertSpec::leaf("mail.protection.outlook.com", epoch);
        spec.subject = dn(EOP_SUBJECT)?;
        spec.dns_names = vec![
            "mail.protection.outlook.com".into(),
            "*.mail.protection.outlook.com".into(),
            "outlook.com".into(),
        ];
        spec.ekus = vec![Eku::ServerAuth, Eku::ClientAuth];
        let leaf = ca.issue(&spec)?;
        Ok(Self {
            chain: vec![leaf.der.clone(), ca.cert.der.clone()],
            key: leaf.private_key(),
            trust_anchor: root.cert.der.clone(),
            leaf: leaf.facts,
        })
    }

    /// The root as PEM (what a receiving server trusts to validate EOP's certificate).
    pub fn trust_anchor_pem(&self) -> String {
        hybridlab_labkit::pki::pem_encode("CERTIFICATE", &self.trust_anchor)
    }
}

/// The sender's TLS settings: its client identity, the trust anchors and the versions.
#[derive(Debug, Clone)]
pub struct ExoTls {
    identity: Arc<ExoIdentity>,
    roots: Arc<RootCertStore>,
    tls13: bool,
    provider: Arc<CryptoProvider>,
}

impl ExoTls {
    /// TLS with `identity` as client certificate, checking server chains against `trust_anchors`
    /// (the lab CA, or `--trust` files); `tls13` offers TLS 1.3 besides 1.2.
    pub fn new(
        identity: Arc<ExoIdentity>,
        trust_anchors: &[CertificateDer<'static>],
        tls13: bool,
    ) -> Result<Self, ExoTlsError> {
        let mut roots = RootCertStore::empty();
        for a in trust_anchors {
            roots.add(a.clone())?;
        }
        Ok(Self {
            identity,
            roots: Arc::new(roots),
            tls13,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }

    /// The client identity.
    pub fn identity(&self) -> &ExoIdentity {
        &self.identity
    }

    /// A client configuration for one handshake at lab time `now`, and the probe that tells what
    /// the handshake saw.
    pub fn client_config(
        &self,
        now: OffsetDateTime,
    ) -> Result<(Arc<ClientConfig>, Probe), ExoTlsError> {
        let verifier = Arc::new(RecordingVerifier::new(&self.roots, self.provider.clone()));
        let key = self
            .provider
            .key_provider
            .load_private_key(self.identity.key.clone_key())?;
        let resolver = Arc::new(ClientCert {
            key: Arc::new(CertifiedKey::new(self.identity.chain.clone(), key)),
            asked: Mutex::new(false),
        });
        let versions: &[&'static rustls::SupportedProtocolVersion] = if self.tls13 {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS12]
        };
        let config = ClientConfig::builder_with_details(
            self.provider.clone(),
            Arc::new(LabTime(unix_time(now))),
        )
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_client_cert_resolver(resolver.clone());
        Ok((Arc::new(config), Probe { verifier, resolver }))
    }
}

/// The server name for SNI: a DNS name, or an address (no SNI is sent then).
pub fn server_name(host: &str, fallback: std::net::IpAddr) -> ServerName<'static> {
    ServerName::try_from(host.trim_matches(['[', ']']).to_string())
        .unwrap_or_else(|_| ServerName::IpAddress(fallback.into()))
}

/// What one handshake saw: the chain check and whether a client certificate was asked for.
#[derive(Debug, Clone)]
pub struct Probe {
    verifier: Arc<RecordingVerifier>,
    resolver: Arc<ClientCert>,
}

impl Probe {
    /// The TLS facts of a completed handshake.
    pub fn facts(&self, conn: &ClientConnection) -> AttemptTls {
        let (chain, status) = self
            .verifier
            .seen
            .lock()
            .ok()
            .and_then(|mut g| g.take())
            .unwrap_or((Vec::new(), ChainStatus::NoCertificate));
        let mut facts = chain.iter().filter_map(|d| CertFacts::from_der(d).ok());
        let presented = facts.next();
        AttemptTls {
            version: match conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLS1_3".into(),
                _ => "TLS1_2".into(),
            },
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default(),
            presented,
            chain: facts.collect(),
            chain_status: status,
            client_certificate_requested: self.resolver.asked.lock().map(|g| *g).unwrap_or(false),
        }
    }
}

/// Presents EOP's certificate when asked and remembers that it was.
#[derive(Debug)]
struct ClientCert {
    key: Arc<CertifiedKey>,
    asked: Mutex<bool>,
}

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        if let Ok(mut g) = self.asked.lock() {
            *g = true;
        }
        Some(self.key.clone())
    }

    fn has_certs(&self) -> bool {
        true
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

fn unix_time(now: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(now.unix_timestamp()).unwrap_or(0),
    ))
}

/// Runs the chain check, records the verdict and the chain, and lets the handshake go on.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<(Vec<CertificateDer<'static>>, ChainStatus)>>,
}

impl RecordingVerifier {
    fn new(roots: &Arc<RootCertStore>, provider: Arc<CryptoProvider>) -> Self {
        let inner = if roots.is_empty() {
            None
        } else {
            WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .ok()
        };
        Self {
            inner,
            provider,
            seen: Mutex::new(None),
        }
    }
}

/// The chain status for a webpki error; a name mismatch is not a chain problem (the core checks
/// the name against TlsDomain itself).
pub fn chain_status(e: &rustls::Error) -> ChainStatus {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                ChainStatus::Valid
            }
            // a root or intermediate of the same name but another key fails the signature
            // check: Windows cannot build the chain either
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                ChainStatus::UntrustedRoot
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                ChainStatus::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                ChainStatus::NotYetValid
            }
            other => ChainStatus::Other(format!("{other:?}")),
        },
        other => ChainStatus::Other(other.to_string()),
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let status = match &self.inner {
            None => ChainStatus::UntrustedRoot,
            Some(v) => match v.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Ok(_) => ChainStatus::Valid,
                Err(e) => chain_status(&e),
            },
        };
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        if let Ok(mut g) = self.seen.lock() {
            *g = Some((chain, status));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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

/// A failed handshake in Exchange Online's words: bytes that are not TLS are `IllegalMessage`, a
/// reset is `ConnectionAborted`, everything else (alerts, no common version, the peer closing)
/// is `SocketError`.
pub fn tls_failure(e: &io::Error) -> TlsFailure {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return match tls {
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. } => TlsFailure::IllegalMessage,
            _ => TlsFailure::SocketError,
        };
    }
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            TlsFailure::ConnectionAborted
        }
        _ => TlsFailure::SocketError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_looks_like_eop() {
        let id = ExoIdentity::generate(time::macros::datetime!(2026-05-02 06:30:00 UTC)).unwrap();
        assert_eq!(id.leaf.subject, EOP_SUBJECT);
        assert_eq!(id.leaf.issuer, EOP_ISSUER);
        assert_eq!(id.chain.len(), 2);
        assert!(
            id.trust_anchor_pem()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert!(
            id.leaf
                .extended_key_usages
                .iter()
                .any(|e| e == "ClientAuth")
        );
        let tls = ExoTls::new(Arc::new(id), &[], false).unwrap();
        assert!(
            tls.client_config(time::macros::datetime!(2026-05-02 06:30:00 UTC))
                .is_ok()
        );
    }

    #[test]
    fn failures_map_to_exo_words() {
        let garbage = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        assert_eq!(tls_failure(&garbage), TlsFailure::IllegalMessage);
        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion),
        );
        assert_eq!(tls_failure(&alert), TlsFailure::SocketError);
        let reset = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(tls_failure(&reset), TlsFailure::ConnectionAborted);
        assert_eq!(
            chain_status(&rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            )),
            ChainStatus::UntrustedRoot
        );
        assert_eq!(
            chain_status(&rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName
            )),
            ChainStatus::Valid
        );
    }
}
