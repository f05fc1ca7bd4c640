//! In-process TCP + TLS tests, one per attribution verdict: the mock on 127.0.0.1:0, clients
//! bound to 127.0.0.x source addresses, certificates generated at test time.

mod common;

use common::*;
use hybridlab_model::attribution::{AttributedBy, AttributionVerdict, VerdictKind};
use hybridlab_model::record::{ChainVerdict, CloseReason};
use mock_eop::config::InvalidClientCertificate;

const BODY: &str = "From: alice@contoso.com\r\nTo: someone@gmail.example\r\nSubject: hybrid test\r\nMessage-ID: <t1@EXCH01.contoso.com>\r\nX-MS-Exchange-CrossPremises-AuthAs: Internal\r\n\r\nhello";

#[tokio::test]
async fn certificate_attribution_exact_and_wildcard_allows_relay() {
    let ca = onprem_ca();
    let mock = start(lab_tenants(), vec![], vec![ca.cert.der.clone()]).await;
    let roots = vec![mock.ca_certificate().clone()];
    for (i, cn) in ["mail.contoso.com", "smtp.contoso.com"]
        .into_iter()
        .enumerate()
    {
        let cert = client_cert(&ca, cn);
        let c = connect_from(mock.local_addr(), "127.0.0.20").await;
        let mut c = c.starttls(&roots, Some(&cert)).await.unwrap();
        let (mail, rcpts, end) = c
            .message("alice@contoso.com", &["someone@gmail.example"], BODY)
            .await;
        assert_eq!(mail.one_line(), "250 2.1.0 Sender OK");
        assert_eq!(rcpts[0].one_line(), "250 2.1.5 Recipient OK");
        let end = end.unwrap();
        assert!(
            end.text()
                .starts_with("2.6.0 <t1@EXCH01.contoso.com> [InternalId="),
            "{end}"
        );
        assert_eq!(c.cmd("QUIT").await.code, 221);
        tokio::time::timeout(BOUND, mock.wait_for_sessions(i as u64 + 1))
            .await
            .unwrap();
    }
    let records = mock.records();
    for r in &records {
        let tls = r.tls.as_ref().unwrap();
        let cc = tls.client_certificate.as_ref().unwrap();
        assert_eq!(cc.verdict, ChainVerdict::Valid);
        assert_eq!(cc.leaf.thumbprint.len(), 40);
        assert!(
            cc.leaf
                .thumbprint
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        assert_eq!(cc.leaf.issuer, "CN=Lab OnPrem Public CA, O=hybridlab, C=US");
        assert_eq!(
            r.attribution,
            Some(AttributionVerdict::Attributed {
                tenant: "contoso".into(),
                connector: "Inbound from contoso".into(),
                by: AttributedBy::Certificate,
            })
        );
        assert_eq!(r.peer.ip().to_string(), "127.0.0.20");
        assert_eq!(r.close_reason, CloseReason::Quit);
        let m = &r.messages[0];
        assert!(m.cross_premises_honoured);
        let parsed = m.parsed.as_ref().unwrap();
        assert_eq!(
            parsed.cross_premises[0].name,
            "X-MS-Exchange-CrossPremises-AuthAs"
        );
        assert_eq!(parsed.subject.as_deref(), Some("hybrid test"));
    }
    assert!(
        records[0]
            .tls
            .as_ref()
            .unwrap()
            .client_certificate
            .as_ref()
            .unwrap()
            .leaf
            .subject
            .starts_with("CN=mail.contoso.com, O=Contoso Ltd")
    );
    assert_eq!(mock.messages().len(), 2);
    let json = records[0].to_json_line();
    assert!(json.contains(r#""verdict":"attributed""#), "{json}");
    mock.shutdown().await;
}

async fn relay_attempt(
    mock: &mock_eop::MockEopHandle,
    source: &str,
    cert: Option<&hybridlab_labkit::pki::IssuedCert>,
    from: &str,
    to: &str,
) -> hybridlab_model::reply::Reply {
    let roots = vec![mock.ca_certificate().clone()];
    let c = connect_from(mock.local_addr(), source).await;
    let mut c = c.starttls(&roots, cert).await.unwrap();
    let (mail, rcpts, _) = c.message(from, &[to], "Subject: x\r\n\r\nx").await;
    let _ = c.cmd("QUIT").await;
    if !mail.is_positive() {
        return mail;
    }
    rcpts.into_iter().next().unwrap()
}

#[tokio::test]
async fn wrong_name_untrusted_issuer_deep_wildcard_and_no_certificate_are_relay_denied() {
    let ca = onprem_ca();
    let rogue_ca = hybridlab_labkit::pki::CertAuthority::root(
        &hybridlab_labkit::pki::CertSpec::authority("CN=Rogue CA".parse().unwrap(), epoch()),
    )
    .unwrap();
    let mock = start(lab_tenants(), vec![], vec![ca.cert.der.clone()]).await;
    let wrong = client_cert(&ca, "smtp.contoso.net");
    let untrusted = client_cert(&rogue_ca, "mail.contoso.com");
    let deep = client_cert(&ca, "a.b.contoso.com");
    let cases: [(Option<&hybridlab_labkit::pki::IssuedCert>, ChainVerdict); 4] = [
        (Some(&wrong), ChainVerdict::Valid),
        (Some(&untrusted), ChainVerdict::UnknownIssuer),
        (Some(&deep), ChainVerdict::Valid),
        (None, ChainVerdict::Valid),
    ];
    for (cert, _) in &cases {
        let r = relay_attempt(
            &mock,
            "127.0.0.21",
            *cert,
            "alice@contoso.com",
            "someone@gmail.example",
        )
        .await;
        // the current reply tag: host, time, session id
        let line = r.one_line();
        assert!(
            line.starts_with(
                "550 5.7.64 TenantAttribution; Relay Access Denied [AMS0EPF0000019A.eurprd04.prod.outlook.com "
            ),
            "{line}"
        );
        assert!(line.ends_with(']'), "{line}");
    }
    tokio::time::timeout(BOUND, mock.wait_for_sessions(4))
        .await
        .unwrap();
    let recs = mock.records();
    for (r, (cert, verdict)) in recs.iter().zip(cases.iter()) {
        assert_eq!(
            r.attribution.as_ref().unwrap().kind(),
            VerdictKind::RelayDenied
        );
        let cc = r.tls.as_ref().unwrap().client_certificate.as_ref();
        assert_eq!(cc.is_some(), cert.is_some());
        if let Some(cc) = cc {
            assert_eq!(&cc.verdict, verdict);
        }
    }
    // mail into the tenant is still accepted, as anonymous Internet mail
    let r = relay_attempt(
        &mock,
        "127.0.0.21",
        Some(&wrong),
        "alice@contoso.com",
        "bob@contoso.com",
    )
    .await;
    assert_eq!(r.one_line(), "250 2.1.5 Recipient OK");
    tokio::time::timeout(BOUND, mock.wait_for_sessions(5))
        .await
        .unwrap();
    assert_eq!(
        mock.records()[4].attribution,
        Some(AttributionVerdict::Unattributed {
            tenant: Some("contoso".into())
        })
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn ip_attribution_from_127_0_0_x_sources() {
    let mock = start(lab_tenants(), vec![], vec![]).await;
    // 127.0.0.5 is in SenderIPAddresses, in cleartext (the IP connector does not require TLS)
    let mut c = connect_from(mock.local_addr(), "127.0.0.5").await;
    assert_eq!(c.reply().await.code, 220);
    let ehlo = c.cmd("EHLO edge01.contoso.com").await;
    assert_eq!(
        ehlo.lines[0],
        "AMS0EPF0000019A.mail.protection.outlook.com Hello [127.0.0.5]"
    );
    let (_, rcpts, end) = c
        .message(
            "alice@contoso.com",
            &["x@gmail.example"],
            "Subject: ip\r\n\r\nx",
        )
        .await;
    assert!(rcpts[0].is_positive());
    assert!(end.unwrap().is_positive());
    c.cmd("QUIT").await;
    // 127.0.0.6 is not
    let mut c = connect_from(mock.local_addr(), "127.0.0.6").await;
    c.reply().await;
    c.cmd("EHLO edge02.contoso.com").await;
    let (_, rcpts, _) = c
        .message("alice@contoso.com", &["x@gmail.example"], "x")
        .await;
    assert_eq!(rcpts[0].code, 550);
    c.cmd("QUIT").await;
    tokio::time::timeout(BOUND, mock.wait_for_sessions(2))
        .await
        .unwrap();
    let recs = mock.records();
    let by_ip: Vec<_> = recs
        .iter()
        .map(|r| (r.peer.ip().to_string(), r.attribution.clone().unwrap()))
        .collect();
    assert!(by_ip.contains(&(
        "127.0.0.5".into(),
        AttributionVerdict::Attributed {
            tenant: "contoso".into(),
            connector: "Contoso Edge by IP".into(),
            by: AttributedBy::Ip
        }
    )));
    assert!(
        by_ip
            .iter()
            .any(|(ip, v)| ip == "127.0.0.6" && v.kind() == VerdictKind::RelayDenied)
    );
    let m = &mock.messages()[0];
    assert!(!m.tls);
    assert!(!m.cross_premises_honoured);
    mock.shutdown().await;
}

#[tokio::test]
async fn require_tls_attr36_region_partner_and_direct_send() {
    let mut cfg = lab_tenants();
    cfg.tenants[0].inbound_connectors[1].require_tls = true;
    let mock = start(cfg, vec![], vec![]).await;
    let plain = |src: &'static str| {
        let addr = mock.local_addr();
        async move {
            let mut c = connect_from(addr, src).await;
            c.reply().await;
            c.cmd("EHLO edge01.contoso.com").await;
            c
        }
    };
    // RequireTls connector matched by IP in cleartext
    let mut c = plain("127.0.0.5").await;
    assert_eq!(
        c.cmd("MAIL FROM:<alice@contoso.com>").await.one_line(),
        "451 5.7.3 STARTTLS is required to send mail"
    );
    c.cmd("QUIT").await;
    // ATTR36
    let mut c = plain("127.0.0.30").await;
    let (_, r, _) = c
        .message("noreply@unaccepted.example", &["x@gmail.example"], "x")
        .await;
    assert!(r[0].one_line().starts_with(
        "550 5.7.64 Relay Access Denied ATTR36. For more information please go to https://go.microsoft.com/fwlink/?LinkId=869550 [AMS0EPF0000019A.eurprd04.prod.outlook.com "
    ));
    // wrong region
    let (_, r, _) = c
        .message("x@gmail.example", &["bob@fabrikam.com"], "x")
        .await;
    assert!(
        r[0].one_line()
            .starts_with("451 4.4.62 Mail sent to the wrong Office 365 region. ATTR35.")
    );
    // partner restriction: woodgrove mail must come from 127.0.0.9
    let (_, r, _) = c
        .message("ann@woodgrove.com", &["bob@tailspin.com"], "x")
        .await;
    assert!(r[0].one_line().starts_with(
        "550 5.7.51 TenantInboundAttribution; There is a partner connector configured"
    ));
    // direct send
    let (_, r, _) = c
        .message("ceo@tailspin.com", &["bob@tailspin.com"], "x")
        .await;
    assert!(
        r[0].one_line()
            .starts_with("550 5.7.68 TenantInboundAttribution; Direct Send not allowed")
    );
    c.cmd("QUIT").await;
    // the partner from its address is attributed
    let mut c = plain("127.0.0.9").await;
    let (_, r, end) = c
        .message("ann@woodgrove.com", &["bob@tailspin.com"], "x")
        .await;
    assert!(r[0].is_positive());
    assert!(end.unwrap().is_positive());
    c.cmd("QUIT").await;
    tokio::time::timeout(BOUND, mock.wait_for_sessions(3))
        .await
        .unwrap();
    let kinds: Vec<VerdictKind> = mock
        .records()
        .iter()
        .map(|r| r.attribution.as_ref().unwrap().kind())
        .collect();
    assert_eq!(
        kinds,
        vec![
            VerdictKind::TlsRequired,
            VerdictKind::DirectSendDenied,
            VerdictKind::Attributed
        ]
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn reject_handshake_policy_fails_tls_for_an_untrusted_certificate() {
    let ca = onprem_ca();
    let rogue_ca = hybridlab_labkit::pki::CertAuthority::root(
        &hybridlab_labkit::pki::CertSpec::authority("CN=Rogue CA".parse().unwrap(), epoch()),
    )
    .unwrap();
    let mut cfg = lab_tenants();
    cfg.tls.invalid_client_certificate = InvalidClientCertificate::RejectHandshake;
    cfg.tls.tls13 = false; // with TLS 1.2 the client sees the alert during the handshake
    let mock = start(cfg, vec![], vec![ca.cert.der.clone()]).await;
    let roots = vec![mock.ca_certificate().clone()];
    let rogue = client_cert(&rogue_ca, "mail.contoso.com");
    let c = connect_from(mock.local_addr(), "127.0.0.22").await;
    assert!(c.starttls(&roots, Some(&rogue)).await.is_err());
    // a valid certificate still works, over TLS 1.2
    let good = client_cert(&ca, "mail.contoso.com");
    let c = connect_from(mock.local_addr(), "127.0.0.22").await;
    let mut c = c.starttls(&roots, Some(&good)).await.unwrap();
    c.cmd("QUIT").await;
    tokio::time::timeout(BOUND, mock.wait_for_sessions(2))
        .await
        .unwrap();
    let recs = mock.records();
    let failed = recs
        .iter()
        .find(|r| r.close_reason == CloseReason::TlsFailed)
        .unwrap();
    assert!(
        failed.tls_error.as_ref().unwrap().contains("UnknownIssuer"),
        "{:?}",
        failed.tls_error
    );
    let ok = recs
        .iter()
        .find(|r| r.close_reason == CloseReason::Quit)
        .unwrap();
    assert_eq!(ok.tls.as_ref().unwrap().version, "TLSv1_2");
    mock.shutdown().await;
}

#[tokio::test]
async fn server_certificate_chain_untrusted_and_leaf_only() {
    let mut cfg = lab_tenants();
    cfg.tls.server_certificate.issuer = mock_eop::config::CertIssuer::Untrusted;
    let mock = start(cfg, vec![], vec![]).await;
    let roots = vec![mock.ca_certificate().clone()];
    let c = connect_from(mock.local_addr(), "127.0.0.23").await;
    let err = c.starttls(&roots, None).await.err().unwrap();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    tokio::time::timeout(BOUND, mock.wait_for_sessions(1))
        .await
        .unwrap();
    assert_eq!(mock.records()[0].close_reason, CloseReason::TlsFailed);
    mock.shutdown().await;

    let mut cfg = lab_tenants();
    cfg.tls.server_certificate.chain = mock_eop::config::ChainSent::LeafOnly;
    let mock = start(cfg, vec![], vec![]).await;
    assert_eq!(mock.server_chain().len(), 1);
    let roots = vec![mock.ca_certificate().clone()];
    let c = connect_from(mock.local_addr(), "127.0.0.23").await;
    assert!(c.starttls(&roots, None).await.is_err());
    mock.shutdown().await;

    // the default: full chain, verified by name
    let mock = start(lab_tenants(), vec![], vec![]).await;
    assert_eq!(
        mock.server_certificate().common_names,
        vec!["mail.protection.outlook.com"]
    );
    let roots = vec![mock.ca_certificate().clone()];
    let c = connect_from(mock.local_addr(), "127.0.0.23").await;
    let mut c = c.starttls(&roots, None).await.unwrap();
    c.cmd("QUIT").await;
    mock.shutdown().await;
}
