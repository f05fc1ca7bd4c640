//! TLS for the endpoint: the lab PKI behind the EOP-like server certificate, the rustls
//! `ServerConfig` (ring only; TLS 1.2 and optionally 1.3; cipher and group restrictions), the
//! client-certificate verifier, and the facts recorded after a handshake.
//!
//! The client certificate is requested but optional. Whether it validates (against the trust
//! roots given to the mock, at the lab clock's time, with only the intermediates the client sent)
//! is recorded as a [`ChainVerdict`]; by default an invalid certificate does not fail the
//! handshake, it only fails attribution (see [`InvalidClientCertificate`]).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, ServerConnection, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use time::OffsetDateTime;

use crate::config::{
    CertIssuer, ChainSent, InvalidClientCertificate, ServerCertificate, TlsSettings,
};
use hybridlab_labkit::clock::LabClock;
use hybridlab_labkit::pki::{CertAuthority, CertSpec, DnSpec, Eku, IssuedCert, PkiError};
use hybridlab_model::record::{ChainVerdict, ClientCertificate, TlsFacts};
use hybridlab_model::x509::CertFacts;

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Generating the lab certificates failed.
    #[error("lab PKI: {0}")]
    Pki(#[from] PkiError),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// A PEM file could not be used.
    #[error("{file}: {message}")]
    Pem {
        /// The PEM file as given (`--cert`, `--key`, `cert_file`, `key_file`).
        file: String,
        /// What is wrong with it (unreadable, no certificate, no key...).
        message: String,
    },
    /// The restrictions leave nothing to negotiate.
    #[error("TLS configuration: {0}")]
    Empty(String),
}

/// The endpoint's certificate chain and key, and the root a client should trust.
#[derive(Debug)]
pub struct ServerIdentity {
    /// What the endpoint sends, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// The lab's "public" root (or, for a certificate loaded from files, the last certificate
    /// of the file): what a client is given to trust.
    pub trust_anchor: CertificateDer<'static>,
    /// The facts of the leaf as a client sees them (subject, SANs, validity, thumbprint).
    pub leaf: CertFacts,
}

impl Clone for ServerIdentity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            trust_anchor: self.trust_anchor.clone(),
            leaf: self.leaf.clone(),
        }
    }
}

impl ServerIdentity {
    /// Generates the lab PKI and the endpoint certificate described by `spec`, with validity
    /// relative to `epoch` (the lab clock's start), or loads it from `cert_file`/`key_file`.
    pub fn from_spec(spec: &ServerCertificate, epoch: OffsetDateTime) -> Result<Self, TlsError> {
        if let (Some(cert), Some(key)) = (&spec.cert_file, &spec.key_file) {
            return Self::from_pem_files(cert, key);
        }
        let public_root = CertAuthority::root(&CertSpec::authority(
            dn("CN=Lab Global Root G2, OU=hybridlab, O=Lab Trust Services, C=US"),
            epoch,
        ))?;
        let public_ca = public_root.intermediate(&CertSpec::authority(
            dn("CN=Lab Global G2 TLS CA1, O=Lab Trust Services, C=US"),
            epoch,
        ))?;
        let mut leaf_spec = CertSpec::leaf("mail.protection.outlook.com", epoch);
        leaf_spec.key = spec.key;
        leaf_spec.subject = spec.subject.clone();
        leaf_spec.dns_names = spec.dns_names.clone();
        leaf_spec.not_before = epoch + time::Duration::days(spec.not_before_days);
        leaf_spec.not_after = epoch + time::Duration::days(spec.not_after_days);
        leaf_spec.ekus = vec![Eku::ServerAuth];
        let (leaf, issuer): (IssuedCert, Option<CertificateDer<'static>>) = match spec.issuer {
            CertIssuer::Public => (
                public_ca.issue(&leaf_spec)?,
                Some(public_ca.cert.der.clone()),
            ),
            CertIssuer::Untrusted => {
                let root = CertAuthority::root(&CertSpec::authority(
                    dn("CN=Untrusted Lab Root, O=Not Trusted, C=US"),
                    epoch,
                ))?;
                let ca = root.intermediate(&CertSpec::authority(
                    dn("CN=Untrusted Lab TLS CA, O=Not Trusted, C=US"),
                    epoch,
                ))?;
                (ca.issue(&leaf_spec)?, Some(ca.cert.der.clone()))
            }
            CertIssuer::SelfSigned => (IssuedCert::self_signed(&leaf_spec)?, None),
        };
        let mut chain = vec![leaf.der.clone()];
        if let (ChainSent::Full, Some(i)) = (spec.chain, issuer) {
            chain.push(i);
        }
        Ok(Self {
            chain,
            key: leaf.private_key(),
            trust_anchor: public_root.cert.der.clone(),
            leaf: leaf.facts,
        })
    }

    /// Loads a PEM chain (leaf first) and a PEM private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| TlsError::Pem {
                file: p.display().to_string(),
                message: e.to_string(),
            })
        };
        let cert_bytes = read(cert)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::Pem {
                file: cert.display().to_string(),
                message: e.to_string(),
            })?;
        let Some(first) = chain.first() else {
            return Err(TlsError::Pem {
                file: cert.display().to_string(),
                message: "no CERTIFICATE block".into(),
            });
        };
        let leaf = CertFacts::from_der(first).map_err(|e| TlsError::Pem {
            file: cert.display().to_string(),
            message: e.to_string(),
        })?;
        let key_der = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| TlsError::Pem {
            file: key.display().to_string(),
            message: e.to_string(),
        })?;
        let trust_anchor = chain.last().cloned().unwrap_or_else(|| first.clone());
        Ok(Self {
            chain,
            key: key_der,
            trust_anchor,
            leaf,
        })
    }

    /// The trust anchor as PEM.
    pub fn trust_anchor_pem(&self) -> String {
        hybridlab_labkit::pki::pem_encode("CERTIFICATE", &self.trust_anchor)
    }
}

fn dn(s: &str) -> DnSpec {
    s.parse().unwrap_or_else(|_| DnSpec::cn(s))
}

/// Requests an optional client certificate, records whether it validates, and fails the
/// handshake on an invalid one only when told to.
#[derive(Debug)]
pub struct ClientVerifier {
    inner: Option<Arc<dyn ClientCertVerifier>>,
    policy: InvalidClientCertificate,
    clock: LabClock,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientVerifier {
    /// A verifier for certificates chaining to `roots`, judged at the lab clock's time.
    pub fn new(
        roots: &[CertificateDer<'static>],
        policy: InvalidClientCertificate,
        clock: LabClock,
    ) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let inner = if roots.is_empty() {
            None
        } else {
            let mut store = RootCertStore::empty();
            for r in roots {
                store.add(r.clone())?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Empty(format!("client verifier: {e}")))?;
            Some(v)
        };
        Ok(Self {
            inner,
            policy,
            clock,
            algorithms,
        })
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        let Some(inner) = &self.inner else {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ));
        };
        let now = self.clock.now();
        let secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        inner
            .verify_client_cert(end_entity, intermediates, at)
            .map(|_| ())
    }

    /// The chain verdict for a presented chain, at the lab clock's current time.
    pub fn verdict(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> ChainVerdict {
        match self.check(end_entity, intermediates) {
            Ok(()) => ChainVerdict::Valid,
            Err(e) => chain_verdict(&e),
        }
    }
}

/// Maps a rustls error to a chain verdict.
pub fn chain_verdict(e: &rustls::Error) -> ChainVerdict {
    match e {
        rustls::Error::InvalidCertificate(ce) => match ce {
            CertificateError::UnknownIssuer => ChainVerdict::UnknownIssuer,
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                ChainVerdict::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                ChainVerdict::NotValidYet
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                ChainVerdict::InvalidPurpose
            }
            CertificateError::BadSignature => ChainVerdict::BadSignature,
            CertificateError::BadEncoding => ChainVerdict::BadEncoding,
            other => ChainVerdict::Other(format!("{other:?}")),
        },
        other => ChainVerdict::Other(other.to_string()),
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: a client then sends whatever certificate it has, as with EOP.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.policy {
            InvalidClientCertificate::Ignore => Ok(ClientCertVerified::assertion()),
            InvalidClientCertificate::RejectHandshake => self
                .check(end_entity, intermediates)
                .map(|()| ClientCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// EOP's cipher suites for a certificate whose key algorithm is `key_algorithm` (`RSA`, `ECC`,
/// as [`CertFacts::key_algorithm`] names it), in EOP's preference order: the TLS 1.3 AES-GCM
/// suites, then the TLS 1.2 suites Microsoft's encryption reference lists
/// (<https://learn.microsoft.com/en-us/purview/technical-reference-details-about-encryption>:
/// `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`, `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, then CBC and
/// RSA key-exchange suites) that ring implements, which are the two ECDHE-RSA AES-GCM suites.
/// No ChaCha20-Poly1305 (not on the list). For an ECDSA key (a load-test setting, not EOP) the
/// ECDHE-ECDSA counterparts.
pub fn eop_cipher_suites(key_algorithm: &str) -> Vec<rustls::CipherSuite> {
    use rustls::CipherSuite as C;
    let mut suites = vec![C::TLS13_AES_256_GCM_SHA384, C::TLS13_AES_128_GCM_SHA256];
    if key_algorithm == "RSA" {
        suites.extend([
            C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ]);
    } else {
        suites.extend([
            C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ]);
    }
    suites
}

/// The rustls server configuration for the endpoint (ring provider only). The server's order of
/// cipher suites wins, as with SChannel.
pub fn server_config(
    settings: &TlsSettings,
    identity: &ServerIdentity,
    verifier: Arc<ClientVerifier>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    let wanted: Vec<String> = if settings.cipher_suites.is_empty() {
        eop_cipher_suites(&identity.leaf.key_algorithm)
            .iter()
            .map(|s| format!("{s:?}"))
            .collect()
    } else {
        settings.cipher_suites.iter().map(|c| c.0.clone()).collect()
    };
    let all = std::mem::take(&mut provider.cipher_suites);
    provider.cipher_suites = wanted
        .iter()
        .filter_map(|w| {
            all.iter()
                .find(|s| format!("{:?}", s.suite()) == *w)
                .copied()
        })
        .collect();
    if !settings.key_exchange_groups.is_empty() {
        provider.kx_groups.retain(|g| {
            let name = format!("{:?}", g.name());
            settings.key_exchange_groups.iter().any(|k| k.0 == name)
        });
    }
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if settings.tls12 {
        versions.push(&rustls::version::TLS12);
    }
    if settings.tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if versions.is_empty() {
        return Err(TlsError::Empty("no TLS version enabled".into()));
    }
    let builder = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)?;
    let builder = if settings.request_client_certificate {
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// What the handshake established, with the client certificate's facts and chain verdict.
pub fn tls_facts(conn: &ServerConnection, verifier: &ClientVerifier) -> TlsFacts {
    let client_certificate = conn.peer_certificates().and_then(|certs| {
        let (leaf, rest) = certs.split_first()?;
        let leaf_facts = CertFacts::from_der(leaf).ok()?;
        Some(ClientCertificate {
            leaf: leaf_facts,
            chain: rest
                .iter()
                .filter_map(|c| CertFacts::from_der(c).ok())
                .collect(),
            verdict: verifier.verdict(leaf, rest),
        })
    });
    TlsFacts {
        version: conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
        sni: conn.server_name().map(str::to_string),
        resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        client_certificate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch() -> OffsetDateTime {
        time::macros::datetime!(2026-05-02 06:30:00 UTC)
    }

    #[test]
    fn generated_identity_looks_like_eop() {
        let id = ServerIdentity::from_spec(&ServerCertificate::default(), epoch()).unwrap();
        assert_eq!(id.chain.len(), 2);
        assert_eq!(
            id.leaf.subject,
            "CN=mail.protection.outlook.com, O=Microsoft Corporation, L=Redmond, S=Washington, C=US"
        );
        assert!(
            id.leaf
                .dns_names
                .iter()
                .any(|d| d == "*.mail.protection.outlook.com")
        );
        assert_eq!(
            id.leaf.issuer,
            "CN=Lab Global G2 TLS CA1, O=Lab Trust Services, C=US"
        );
        assert_eq!(id.leaf.not_before, epoch() - time::Duration::days(30));
        let root = CertFacts::from_der(&id.trust_anchor).unwrap();
        assert!(root.is_self_signed);

        let spec = ServerCertificate {
            issuer: CertIssuer::Untrusted,
            chain: ChainSent::LeafOnly,
            ..ServerCertificate::default()
        };
        let id = ServerIdentity::from_spec(&spec, epoch()).unwrap();
        assert_eq!(id.chain.len(), 1);
        assert!(id.leaf.issuer.contains("Untrusted"));
        let spec = ServerCertificate {
            issuer: CertIssuer::SelfSigned,
            ..ServerCertificate::default()
        };
        let id = ServerIdentity::from_spec(&spec, epoch()).unwrap();
        assert!(id.leaf.is_self_signed);
    }

    #[tokio::test(start_paused = true)]
    async fn verdicts_follow_the_lab_clock() {
        let clock = LabClock::starting_at(epoch());
        let root =
            CertAuthority::root(&CertSpec::authority(dn("CN=Client Root"), epoch())).unwrap();
        let other =
            CertAuthority::root(&CertSpec::authority(dn("CN=Other Root"), epoch())).unwrap();
        let v = ClientVerifier::new(
            std::slice::from_ref(&root.cert.der),
            InvalidClientCertificate::Ignore,
            clock.clone(),
        )
        .unwrap();
        let good = root
            .issue(&CertSpec::leaf("mail.contoso.com", epoch()))
            .unwrap();
        assert_eq!(v.verdict(&good.der, &[]), ChainVerdict::Valid);
        let rogue = other
            .issue(&CertSpec::leaf("mail.contoso.com", epoch()))
            .unwrap();
        assert_eq!(v.verdict(&rogue.der, &[]), ChainVerdict::UnknownIssuer);
        let mut spec = CertSpec::leaf("mail.contoso.com", epoch());
        spec.ekus = vec![Eku::ServerAuth];
        let server_only = root.issue(&spec).unwrap();
        assert_eq!(
            v.verdict(&server_only.der, &[]),
            ChainVerdict::InvalidPurpose
        );
        // a year and a day later the good certificate has expired (virtual time)
        tokio::time::sleep(std::time::Duration::from_secs(366 * 86_400)).await;
        assert_eq!(v.verdict(&good.der, &[]), ChainVerdict::Expired);
        let none = ClientVerifier::new(&[], InvalidClientCertificate::Ignore, clock).unwrap();
        assert_eq!(none.verdict(&good.der, &[]), ChainVerdict::UnknownIssuer);
    }
}
