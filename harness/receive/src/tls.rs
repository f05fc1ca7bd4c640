//! The SChannel side of the receive connector, built on rustls (ring only): the server
//! configuration for the selected certificate (protocol versions from [`ServerTlsVersions`]),
//! a client-certificate verifier that *asks* for a certificate, never requires one and never
//! fails the handshake over it (Exchange judges the chain after the handshake), the chain
//! judgement itself with Exchange's `ChainValidityStatus` names, and SChannel's success line.
//!
//! rustls cannot speak TLS 1.0 or 1.1. A server whose TLS 1.2 is disabled (FM-40: TLS 1.0/1.1
//! only) is modelled as a handshake the server refuses: it reads the ClientHello and answers with
//! a `protocol_version` alert, which is what a TLS 1.2-only client meets at such a server
//! ([`TlsPlan::Refuse`]).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use hybridlab_onprem::certstore::{CertStore, StoreEntry};

/// Which TLS versions SChannel allows on the server (`SCHANNEL\Protocols\... \Server\Enabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerTlsVersions {
    /// TLS 1.0 (cannot be served by the lab; only changes what a refusal says).
    pub tls10: bool,
    /// TLS 1.1 (as TLS 1.0).
    pub tls11: bool,
    /// TLS 1.2 (default on).
    pub tls12: bool,
    /// TLS 1.3 (Exchange's SMTP does not negotiate it; default off).
    pub tls13: bool,
}

impl Default for ServerTlsVersions {
    fn default() -> Self {
        Self {
            tls10: false,
            tls11: false,
            tls12: true,
            tls13: false,
        }
    }
}

impl ServerTlsVersions {
    /// FM-40: only the legacy versions enabled.
    pub fn legacy_only() -> Self {
        Self {
            tls10: true,
            tls11: true,
            tls12: false,
            tls13: false,
        }
    }

    /// Whether rustls can serve any of the enabled versions.
    pub fn servable(&self) -> bool {
        self.tls12 || self.tls13
    }
}

/// How the driver must carry out STARTTLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsPlan {
    /// Run the handshake with the connector's configuration.
    Handshake,
    /// No common version: read the ClientHello, answer with a fatal `protocol_version` alert and
    /// close (a server with TLS 1.2 disabled meeting a TLS 1.2 client).
    Refuse,
}

/// Errors building the server's TLS configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveTlsError {
    /// The certificate has no private key the transport can use.
    #[error("certificate {0:?} has no usable private key")]
    NoKey(String),
    /// rustls refused the certificate or the versions.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The rustls server configuration presenting `entry` (with the intermediates of
/// `LocalMachine\CA`, as SChannel sends them) and asking for an optional client certificate.
/// `None` when no version rustls can speak is enabled (the driver refuses the handshake).
///
/// # Errors
/// The entry has no key, or rustls refuses it.
pub fn server_config(
    store: &CertStore,
    entry: &StoreEntry,
    versions: ServerTlsVersions,
) -> Result<Option<Arc<ServerConfig>>, ReceiveTlsError> {
    if !versions.servable() {
        return Ok(None);
    }
    let key = entry
        .private_key()
        .ok_or_else(|| ReceiveTlsError::NoKey(entry.name.clone()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut v: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if versions.tls12 {
        v.push(&rustls::version::TLS12);
    }
    if versions.tls13 {
        v.push(&rustls::version::TLS13);
    }
    let verifier = Arc::new(AnyClientCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&v)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(store.chain_for(entry), key)?;
    Ok(Some(Arc::new(config)))
}

/// Asks for a client certificate, accepts none or any (signatures are still checked); the chain
/// is judged by the session after the handshake.
#[derive(Debug)]
struct AnyClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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

/// Exchange's `ChainValidityStatus` of a client certificate, as the RECV log names it
/// (`Client certificate chain validation status: '<name>'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChainStatus {
    /// Builds to a root of `LocalMachine\Root`, in date.
    Valid,
    /// The client sent no certificate.
    EmptyCertificate,
    /// No path to a trusted root (untrusted root, missing intermediate).
    UntrustedRoot,
    /// A certificate of the chain is out of date.
    CertificateExpired,
    /// The certificate may not be used for this purpose.
    WrongUsage,
    /// A signature does not verify.
    SignatureFailure,
    /// Anything else.
    InternalChainFailure,
}

impl ChainStatus {
    /// The name Exchange logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "Valid",
            Self::EmptyCertificate => "EmptyCertificate",
            Self::UntrustedRoot => "UntrustedRoot",
            Self::CertificateExpired => "CertificateExpired",
            Self::WrongUsage => "WrongUsage",
            Self::SignatureFailure => "SignatureFailure",
            Self::InternalChainFailure => "InternalChainFailure",
        }
    }
}

impl std::fmt::Display for ChainStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Judges a client chain (leaf first) against the server's `LocalMachine\Root`, with the
/// intermediates the client sent plus `LocalMachine\CA`, at `now`. Windows validates "as
/// anonymous" without insisting on the client-authentication EKU \[U\], so a chain refused only
/// for its purpose is tried again for server authentication.
pub fn judge_client_chain(
    store: &CertStore,
    chain: &[CertificateDer<'static>],
    now: OffsetDateTime,
) -> ChainStatus {
    let Some((leaf, sent)) = chain.split_first() else {
        return ChainStatus::EmptyCertificate;
    };
    let Ok(ee) = webpki::EndEntityCert::try_from(leaf) else {
        return ChainStatus::InternalChainFailure;
    };
    let anchors: Vec<_> = store
        .roots()
        .iter()
        .filter_map(|r| webpki::anchor_from_trusted_cert(&r.der).ok())
        .collect();
    if anchors.is_empty() {
        return ChainStatus::UntrustedRoot;
    }
    let mut inter: Vec<CertificateDer<'_>> = sent.to_vec();
    inter.extend(store.intermediates().iter().map(|i| i.der.clone()));
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        now.unix_timestamp().max(0) as u64,
    ));
    let verify = |usage| {
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &inter,
            at,
            usage,
            None,
            None,
        )
        .map(|_| ())
    };
    let result = match verify(webpki::KeyUsage::client_auth()) {
        Err(webpki::Error::RequiredEkuNotFoundContext(_)) => {
            verify(webpki::KeyUsage::server_auth())
        }
        other => other,
    };
    match result {
        Ok(()) => ChainStatus::Valid,
        Err(e) => match e {
            webpki::Error::UnknownIssuer => ChainStatus::UntrustedRoot,
            webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
                ChainStatus::CertificateExpired
            }
            webpki::Error::RequiredEkuNotFoundContext(_) => ChainStatus::WrongUsage,
            webpki::Error::InvalidSignatureForPublicKey
            | webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
                ChainStatus::SignatureFailure
            }
            _ => ChainStatus::InternalChainFailure,
        },
    }
}

/// SChannel's success line for the server side: `TLS protocol SP_PROT_TLS1_2_SERVER negotiation
/// succeeded using bulk encryption algorithm CALG_AES_256 with strength 256 bits, MAC hash
/// algorithm CALG_SHA_384 with strength 0 bits and key exchange algorithm CALG_ECDH_EPHEM with
/// strength 384 bits` (AEAD suites log MAC strength 0).
pub fn schannel_server_text(protocol: &str, cipher_suite: &str, kx_group: Option<&str>) -> String {
    let proto = if protocol.contains("1_3") || protocol.contains("1.3") {
        "SP_PROT_TLS1_3_SERVER"
    } else {
        "SP_PROT_TLS1_2_SERVER"
    };
    let s = cipher_suite.to_ascii_uppercase();
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
    let kx_bits = match kx_group.unwrap_or("") {
        g if g.contains("384") => 384,
        g if g.contains("521") => 521,
        g if g.eq_ignore_ascii_case("x25519") => 255,
        _ => 256,
    };
    format!(
        "TLS protocol {proto} negotiation succeeded using bulk encryption algorithm {bulk} with strength {bits} bits, MAC hash algorithm {mac} with strength 0 bits and key exchange algorithm CALG_ECDH_EPHEM with strength {kx_bits} bits"
    )
}

/// The provider the receive side uses (ring), for drivers building other configurations.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybridlab_onprem::certstore::{StoreDescription, TimeSpec, fixtures};

    #[test]
    fn chains_are_judged_with_exchange_names() {
        let now = time::macros::datetime!(2026-05-02 06:30 UTC);
        let mut old = fixtures::contoso("old");
        old.not_before = Some(TimeSpec::Days(-400));
        old.not_after = Some(TimeSpec::Days(-1));
        let store = CertStore::build(
            &StoreDescription {
                authorities: fixtures::authorities(),
                certificates: vec![
                    fixtures::contoso("good"),
                    old,
                    fixtures::exchange_self_signed("EXCH01", "EXCH01.contoso.com"),
                ],
            },
            now,
        )
        .unwrap();
        let chain = |n: &str| store.chain_for(store.entry(n).unwrap());
        assert_eq!(
            judge_client_chain(&store, &chain("good"), now),
            ChainStatus::Valid
        );
        assert_eq!(
            judge_client_chain(&store, &chain("old"), now),
            ChainStatus::CertificateExpired
        );
        assert_eq!(
            judge_client_chain(&store, &chain("self-signed"), now),
            ChainStatus::UntrustedRoot
        );
        assert_eq!(
            judge_client_chain(&store, &[], now),
            ChainStatus::EmptyCertificate
        );
        assert!(
            server_config(&store, store.entry("good").unwrap(), Default::default())
                .unwrap()
                .is_some()
        );
        assert!(
            server_config(
                &store,
                store.entry("good").unwrap(),
                ServerTlsVersions::legacy_only()
            )
            .unwrap()
            .is_none()
        );
        assert!(
            schannel_server_text("TLSv1_2", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", None)
                .starts_with("TLS protocol SP_PROT_TLS1_2_SERVER negotiation succeeded using bulk encryption algorithm CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384")
        );
    }
}
