//! MAIL and RCPT with attribution.

use super::*;

#[test]
fn cleartext_to_require_tls_connector_by_cert_name_is_not_possible_but_by_sender_is_unattributed() {
    // Without TLS there is no certificate: contoso's connector (certificate-based) cannot match,
    // so mail to the Internet is relay-denied and mail into the tenant is anonymous.
    let mut p = Probe::new(config(), vec![]);
    p.send("EHLO edge01.contoso.com\r\n");
    assert_eq!(
        p.send("MAIL FROM:<alice@contoso.com>\r\n"),
        "250 2.1.0 Sender OK\r\n"
    );
    assert!(
        p.send("RCPT TO:<someone@gmail.example>\r\n")
            .starts_with("550 5.7.64 TenantAttribution; Relay Access Denied [")
    );
    assert_eq!(
        p.send("RCPT TO:<bob@contoso.com>\r\n"),
        "250 2.1.5 Recipient OK\r\n"
    );
    let rec = p.finish();
    assert_eq!(
        rec.attribution,
        Some(AttributionVerdict::Unattributed {
            tenant: Some("contoso".into())
        })
    );
}

#[test]
fn ip_connector_with_require_tls_in_cleartext_gets_451_5_7_3() {
    let mut cfg = config();
    cfg.tenants[0].inbound_connectors[0].sender_ip_addresses = vec!["127.0.0.5".parse().unwrap()];
    let mut p = Probe::new(cfg, vec![]);
    p.send("EHLO edge01.contoso.com\r\n");
    assert_eq!(
        p.send("MAIL FROM:<alice@contoso.com>\r\n"),
        "451 5.7.3 STARTTLS is required to send mail\r\n"
    );
    // from another address the same connector does not match
    let mut cfg = config();
    cfg.tenants[0].inbound_connectors[0].sender_ip_addresses = vec!["127.0.0.5".parse().unwrap()];
    let mut q = Probe::at(cfg, vec![], 1, "127.0.0.6:40002");
    q.send("EHLO x\r\n");
    assert_eq!(
        q.send("MAIL FROM:<alice@contoso.com>\r\n"),
        "250 2.1.0 Sender OK\r\n"
    );
}
