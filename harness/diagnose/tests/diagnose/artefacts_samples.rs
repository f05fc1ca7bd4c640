//! The readers over the hand-written real-format bundles under `tests/samples/`.
//! Every bundle must read without error, every file of a known kind with at most one skipped line
//! (a truncated last line), and the classic bundle must show the key-less twin: the thumbprint
//! the NoCredentials session sent is listed by the certificate provider without a key and is
//! absent from Get-ExchangeCertificate.

use std::path::PathBuf;

use hybridlab_artefacts::certs::CertListingSource;
use hybridlab_artefacts::protocol_log::SessionEvent;
use hybridlab_artefacts::{ArtefactKind, read_dir};
use hybridlab_model::exchange::SecurityStatus;

fn bundles() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/samples");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn every_bundle_reads_cleanly() {
    for b in bundles() {
        // Bundles of unrelated files (or none) exist to prove the diagnosis says so.
        let expected = std::fs::read_to_string(b.join("expected.toml")).unwrap_or_default();
        if expected.lines().any(|l| l.trim() == "nothing_read = true") {
            continue;
        }
        let a = read_dir(&b).unwrap_or_else(|e| panic!("{e}"));
        let known: Vec<_> = a
            .files
            .iter()
            .filter(|f| f.kind != ArtefactKind::Unknown)
            .collect();
        assert!(!known.is_empty(), "{}: no artefact recognised", b.display());
        for f in known {
            assert!(f.skipped.count <= 1, "{}: {:?}", f.file, f.skipped);
            assert!(f.items > 0, "{}: nothing read", f.file);
        }
    }
}

#[test]
fn the_classic_bundle_shows_the_keyless_twin() {
    let Some(b) = bundles()
        .into_iter()
        .find(|b| b.ends_with("fm01-keyless-duplicate"))
    else {
        return;
    };
    let a = read_dir(&b).unwrap();
    let mut sent = Vec::new();
    for s in &a.protocol.sessions {
        let failed = s.session.events.iter().any(|e| {
            e.event
                == SessionEvent::TlsFailed {
                    status: SecurityStatus::NoCredentials,
                }
        });
        if !failed {
            continue;
        }
        for (e, src) in s.events() {
            if let SessionEvent::Certificate { cert, .. } = &e.event {
                sent.push(cert.thumbprint.clone());
                assert!(
                    src.line_containing("Certificate thumbprint")
                        .text
                        .contains(&cert.thumbprint)
                );
            }
        }
    }
    assert!(
        !sent.is_empty(),
        "no NoCredentials session with a certificate"
    );
    let thumb = &sent[0];
    let provider: Vec<_> = a
        .certificates_from(CertListingSource::CertProvider)
        .collect();
    let in_store = provider
        .iter()
        .find(|c| &c.row.thumbprint == thumb)
        .expect("thumbprint in the store listing");
    assert_eq!(in_store.row.has_private_key, Some(false));
    assert!(
        a.certificates_from(CertListingSource::ExchangeCertificate)
            .all(|c| &c.row.thumbprint != thumb)
    );
    // A keyed twin with the same issuer and subject is listed by both cmdlets.
    assert!(
        a.certificates_from(CertListingSource::ExchangeCertificate)
            .any(|c| c.row.subject == in_store.row.subject && c.row.issuer == in_store.row.issuer)
    );
}
