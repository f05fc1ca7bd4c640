//! Unit tests of the certificate store.

use super::*;

fn now() -> OffsetDateTime {
    time::macros::datetime!(2026-05-02 06:30:00 UTC)
}

#[test]
fn relative_times() {
    assert_eq!(relative_offset("-30d"), Some(Duration::days(-30)));
    assert_eq!(relative_offset("+335d"), Some(Duration::days(335)));
    assert_eq!(relative_offset("12h"), Some(Duration::hours(12)));
    assert_eq!(relative_offset("2026-01-31T23:59:59Z"), None);
    assert_eq!(relative_offset("-d"), None);
    let t = TimeSpec::At("-2d".into()).resolve(now(), "x", "not_after");
    assert_eq!(t.unwrap(), now() - Duration::days(2));
}

#[test]
fn twins_share_identifier_but_not_thumbprint() {
    let store = CertStore::build(&fixtures::classic_twins(true), now()).unwrap();
    let a = store.entry("twin-nokey").unwrap();
    let b = store.entry("keyed").unwrap();
    assert_eq!(a.x509_identifier(), b.x509_identifier());
    assert_ne!(a.facts.thumbprint, b.facts.thumbprint);
    assert_eq!(a.enumeration_index, 0);
    assert!(a.private_key().is_none());
    assert!(b.private_key().is_some());
    assert_eq!(
        store
            .exchange_certificates()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        vec!["keyed"]
    );
    assert!(store.is_valid(a, now()));
    assert_eq!(store.chain_for(b).len(), 2);
    assert_eq!(store.root_cert_store().len(), 1);
    assert_eq!(
        a.facts.subject,
        "CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US"
    );
}

#[test]
fn validity_and_trust() {
    let mut desc = fixtures::classic_twins(false);
    let mut expired = fixtures::contoso("expired");
    expired.not_before = Some(TimeSpec::Days(-400));
    expired.not_after = Some(TimeSpec::At("2026-01-01T00:00:00Z".into()));
    desc.certificates.push(expired);
    desc.certificates.push(fixtures::exchange_self_signed(
        "EDGE01",
        "edge01.contoso.com",
    ));
    let store = CertStore::build(&desc, now()).unwrap();
    assert!(!store.is_valid(store.entry("expired").unwrap(), now()));
    assert!(!store.is_valid(store.entry("self-signed").unwrap(), now()));
    assert!(store.entry("self-signed").unwrap().facts.is_self_signed);
    let thumb = store.entry("keyed").unwrap().facts.thumbprint.clone();
    let mut store = store;
    assert!(store.remove(&thumb.to_lowercase()).is_some());
    assert_eq!(store.my()[0].name, "twin-nokey");
    assert_eq!(store.my()[0].enumeration_index, 0);
}

#[test]
fn listing_rows_carry_the_windows_flags() {
    use hybridlab_artefacts::certs::{CertificateStatus as St, ExchangeService as Sv, RootCaType};
    let mut desc = fixtures::classic_twins(true);
    let mut expired = fixtures::contoso("expired");
    expired.not_before = Some(TimeSpec::Days(-400));
    expired.not_after = Some(TimeSpec::Days(-1));
    desc.certificates.push(expired);
    desc.certificates.push(fixtures::exchange_self_signed(
        "EDGE01",
        "edge01.contoso.com",
    ));
    desc.authorities.push(AuthorityDescription {
        name: "rogue".into(),
        subject: "CN=Rogue Root, O=Elsewhere".parse().unwrap(),
        issuer: None,
        installed: false,
        aia_fetchable: false,
        public: false,
        not_before: None,
        not_after: None,
        key: KeyKind::AUTHORITY_DEFAULT,
    });
    let mut untrusted =
        CertDescription::new("untrusted", "CN=mail.contoso.com", Some("rogue")).unwrap();
    untrusted.services = vec![ExchangeService::Smtp, ExchangeService::Imap];
    desc.certificates.push(untrusted);
    let store = CertStore::build(&desc, now()).unwrap();
    let rows = store.listing_rows(now());
    let by = |n: &str| {
        let t = &store.entry(n).unwrap().facts.thumbprint;
        rows.iter().find(|r| &r.thumbprint == t).unwrap().clone()
    };
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0].thumbprint, store.my()[0].facts.thumbprint);
    let nokey = by("twin-nokey");
    assert_eq!(nokey.has_private_key, Some(false));
    assert_eq!(nokey.services.as_deref(), Some(&[][..]));
    assert_eq!(nokey.status, Some(St::Valid));
    assert_eq!(nokey.root_ca_type, Some(RootCaType::ThirdParty));
    assert_eq!(
        nokey.friendly_name.as_deref(),
        Some("twin-nokey (mail.contoso.com)")
    );
    let keyed = by("keyed");
    assert_eq!(keyed.has_private_key, Some(true));
    assert_eq!(keyed.services.as_deref(), Some(&[Sv::Iis, Sv::Smtp][..]));
    assert_eq!(
        keyed.x509_identifier(),
        store.entry("keyed").unwrap().x509_identifier()
    );
    assert_eq!(
        keyed.certificate_domains,
        ["mail.contoso.com", "autodiscover.contoso.com"]
    );
    assert_eq!(by("expired").status, Some(St::DateInvalid));
    let ss = by("self-signed");
    assert_eq!(ss.is_self_signed, Some(true));
    assert_eq!(ss.status, Some(St::Valid));
    assert_eq!(ss.root_ca_type, Some(RootCaType::Registry));
    let u = by("untrusted");
    assert_eq!(u.status, Some(St::Untrusted));
    assert_eq!(u.root_ca_type, Some(RootCaType::Unknown));
    assert_eq!(u.services.as_deref(), Some(&[Sv::Smtp, Sv::Imap][..]));
    // the PEM exports
    let k = store.entry("keyed").unwrap();
    assert!(k.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(
        k.key_pem()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(store.entry("twin-nokey").unwrap().key_pem().is_none());
}

#[test]
fn order_field_and_errors() {
    let toml = r#"
[[authorities]]
name = "root"
subject = "CN=Root, O=Lab"

[[certificates]]
name = "b"
subject = "CN=b.contoso.com"
issuer = "root"

[[certificates]]
name = "a"
subject = "CN=a.contoso.com"
issuer = "root"
order = -1
has_private_key = false
services = ["SMTP", "IIS"]
"#;
    let desc = StoreDescription::from_toml(toml).unwrap();
    let store = CertStore::build(&desc, now()).unwrap();
    assert_eq!(store.my()[0].name, "a");
    assert_eq!(
        hybridlab_artefacts::certs::services_text(&store.my()[0].services),
        "IIS, SMTP"
    );
    let bad =
        StoreDescription::from_toml("[[certificates]]\nname='x'\nsubject='CN=x'\nkey_less=true\n")
            .unwrap_err()
            .to_string();
    assert!(bad.contains("key_less") && bad.contains("line"), "{bad}");
    let mut d = StoreDescription::default();
    d.certificates
        .push(CertDescription::new("x", "CN=x", Some("nope")).unwrap());
    assert!(matches!(
        CertStore::build(&d, now()),
        Err(CertStoreError::UnknownIssuer { .. })
    ));
}
