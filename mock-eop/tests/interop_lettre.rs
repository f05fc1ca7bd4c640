//! Interop with an independent client: lettre (rustls + ring) sends through the mock over
//! STARTTLS, with and without a client certificate. lettre has no PIPELINING and no BDAT, so
//! this is the plain RFC 5321 DATA path.

mod common;

use common::*;
use hybridlab_model::attribution::{AttributedBy, AttributionVerdict, VerdictKind};
use lettre::address::Envelope;
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, Identity, Tls, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

fn transport(
    mock: &mock_eop::MockEopHandle,
    identity: Option<&hybridlab_labkit::pki::IssuedCert>,
) -> AsyncSmtpTransport<Tokio1Executor> {
    let mut tls = TlsParameters::builder("mail.protection.outlook.com".into())
        .certificate_store(CertificateStore::None)
        .add_root_certificate(Certificate::from_pem(mock.ca_pem().as_bytes()).unwrap());
    if let Some(id) = identity {
        // lettre 0.11's rustls Identity::from_pem keeps the certificate bytes as they are:
        // give it DER for the certificate and PEM for the key.
        tls = tls.identify_with(Identity::from_pem(&id.der, id.key_pem().as_bytes()).unwrap());
    }
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(mock.local_addr().port())
        .hello_name(ClientId::Domain("edge01.contoso.com".into()))
        .tls(Tls::Required(tls.build_rustls().unwrap()))
        .timeout(Some(BOUND))
        .build()
}

fn message(to: &str) -> (Envelope, Vec<u8>) {
    let body = mail_builder::MessageBuilder::new()
        .from(("Alice", "alice@contoso.com"))
        .to(to)
        .subject("lettre interop")
        .message_id("lettre-1@EXCH01.contoso.com")
        .header(
            "X-MS-Exchange-CrossPremises-AuthAs",
            mail_builder::headers::raw::Raw::new("Internal"),
        )
        .text_body("sent by lettre through the mock EOP")
        .write_to_vec()
        .unwrap();
    let envelope = Envelope::new(
        Some("alice@contoso.com".parse().unwrap()),
        vec![to.parse().unwrap()],
    )
    .unwrap();
    (envelope, body)
}

#[tokio::test]
async fn lettre_with_client_certificate_is_attributed_and_may_relay() {
    let ca = onprem_ca();
    let mock = start(lab_tenants(), vec![], vec![ca.cert.der.clone()]).await;
    let cert = client_cert(&ca, "mail.contoso.com");
    let t = transport(&mock, Some(&cert));
    let (env, body) = message("someone@gmail.example");
    let resp = tokio::time::timeout(BOUND, t.send_raw(&env, &body))
        .await
        .unwrap()
        .unwrap();
    assert!(resp.is_positive());
    let text: Vec<&str> = resp.message().collect();
    assert!(
        text[0].starts_with("2.6.0 <lettre-1@EXCH01.contoso.com> [InternalId="),
        "{text:?}"
    );
    drop(t);
    tokio::time::timeout(BOUND, mock.wait_for_messages(1))
        .await
        .unwrap();
    let m = &mock.messages()[0];
    assert_eq!(
        m.attribution,
        AttributionVerdict::Attributed {
            tenant: "contoso".into(),
            connector: "Inbound from contoso".into(),
            by: AttributedBy::Certificate
        }
    );
    assert!(m.tls);
    let parsed = m.parsed.as_ref().unwrap();
    assert_eq!(parsed.subject.as_deref(), Some("lettre interop"));
    assert_eq!(parsed.cross_premises.len(), 1);
    assert_eq!(m.rcpt_to, vec!["someone@gmail.example"]);
    mock.shutdown().await;
}

#[tokio::test]
async fn lettre_without_client_certificate_is_refused_relay_but_delivers_inbound() {
    let mock = start(lab_tenants(), vec![], vec![]).await;
    let t = transport(&mock, None);
    let (env, body) = message("someone@gmail.example");
    let err = tokio::time::timeout(BOUND, t.send_raw(&env, &body))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert!(
        err.to_string()
            .contains("5.7.64 TenantAttribution; Relay Access Denied"),
        "{err}"
    );
    let (env, body) = message("bob@contoso.com");
    let resp = tokio::time::timeout(BOUND, t.send_raw(&env, &body))
        .await
        .unwrap()
        .unwrap();
    assert!(resp.is_positive());
    tokio::time::timeout(BOUND, mock.wait_for_messages(1))
        .await
        .unwrap();
    let m = &mock.messages()[0];
    assert_eq!(m.attribution.kind(), VerdictKind::Unattributed);
    assert!(m.parsed.as_ref().unwrap().cross_premises.is_empty());
    drop(t);
    let recs = tokio::time::timeout(BOUND, mock.shutdown()).await.unwrap();
    assert!(recs.iter().all(|r| {
        r.tls
            .as_ref()
            .is_some_and(|t| t.client_certificate.is_none())
    }));
}
