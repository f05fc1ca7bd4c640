//! Loading, checking and locating `[eop]` configurations.

use super::*;
use hybridlab_model::located::Field;
use hybridlab_model::timespan::TimeSpan;

#[test]
fn empty_config_has_defaults() {
    let f = MockFile::from_toml("", "empty.toml").unwrap();
    assert_eq!(f.eop, EopConfig::default());
    assert!(f.eop.tenants.is_empty());
    assert_eq!(f.eop.limits.max_message_size, 157_286_400);
    let f = MockFile::from_toml("[eop]\n", "e.toml").unwrap();
    assert!(f.faults.is_empty());
}

#[test]
fn full_example_parses() {
    let src = r#"
[eop.endpoint]
hostname = "BL2NAM06FT004.mail.protection.outlook.com"
region = "NAM"

[eop.limits]
idle_timeout = "00:01:00"
session_timeout = "10m"

[eop.tls]
tls13 = false
cipher_suites = ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]

[eop.tls.server_certificate]
issuer = "untrusted"
chain = "leaf_only"
not_after_days = -1
not_before_days = -400

[[eop.tenants]]
name = "contoso"
region = "EUR"
accepted_domains = [{ domain = "contoso.com", type = "internal_relay" }, { domain = "contoso.mail.onmicrosoft.com" }]

[[eop.tenants.inbound_connectors]]
name = "Inbound from contoso"
connector_type = "on_premises"
tls_sender_certificate_name = "*.contoso.com"
sender_ip_addresses = ["127.0.0.5", "127.0.1.0/24"]
sender_domains = ["smtp:*;1"]
require_tls = true
"#;
    let f = MockFile::from_toml(src, "s.toml").unwrap();
    assert_eq!(f.eop.endpoint.region, "NAM");
    assert_eq!(f.eop.limits.idle_timeout, TimeSpan::from_secs(60));
    assert_eq!(f.eop.limits.session_timeout, Some(TimeSpan::from_secs(600)));
    let t = &f.eop.tenants[0];
    assert_eq!(t.accepted_domains[0].kind, DomainType::InternalRelay);
    assert_eq!(t.accepted_domains[1].kind, DomainType::Authoritative);
    let c = &t.inbound_connectors[0];
    assert_eq!(c.connector_type, ConnectorType::OnPremises);
    assert!(c.covers_ip("127.0.0.5".parse().unwrap()));
    assert!(!c.covers_ip("127.0.0.6".parse().unwrap()));
    assert!(c.covers_ip("127.0.1.77".parse().unwrap()));
    assert!(c.covers_sender(Some("fabrikam.com")));
    assert_eq!(f.eop.region_of(t), "EUR");
    assert_eq!(f.eop.tls.server_certificate.issuer, CertIssuer::Untrusted);
}

#[test]
fn unknown_key_names_file_line_column_and_field() {
    let src = "[eop.endpoint]\nregion = \"EUR\"\nhostnme = \"x\"\n";
    let err = MockFile::from_toml(src, "bad.toml").unwrap_err();
    match &err {
        ConfigError::Toml(l) => {
            assert_eq!(l.file, "bad.toml");
            assert_eq!((l.line, l.column), (Some(3), Some(1)));
            assert_eq!(l.field, Some(Field::Name("hostnme".into())));
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(text.starts_with("bad.toml:3:1: field `hostnme`:"), "{text}");
}

#[test]
fn bad_values_are_located() {
    let src = "[[eop.tenants]]\nname = \"c\"\n[[eop.tenants.inbound_connectors]]\nname = \"x\"\nsender_ip_addresses = [\"10.0.0.0/16\"]\n";
    let err = MockFile::from_toml(src, "ip.toml").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("ip.toml:5:"), "{text}");
    assert!(text.contains("sender_ip_addresses"), "{text}");
    assert!(text.contains("wider than /24"), "{text}");

    let err = MockFile::from_toml("[eop.limits]\nidle_timeout = \"soon\"\n", "t.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("t.toml:2:"), "{err}");
    assert!(err.contains("idle_timeout"), "{err}");

    let err = MockFile::from_toml("[eop.tls]\ntls12 = false\ntls13 = false\n", "v.toml")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "v.toml:3:1: eop.tls.tls13: at least one of tls12 and tls13 must be enabled"
    );

    let err = MockFile::from_toml(
        "[eop.tls]\ncipher_suites = [\"TLS_RSA_WITH_RC4_128_MD5\"]\n",
        "c.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown cipher suite"), "{err}");

    let err = MockFile::from_toml(
        "[[eop.tenants]]\nname = \"a\"\naccepted_domains=[{domain=\"x.com\"}]\n[[eop.tenants]]\nname = \"b\"\naccepted_domains=[{domain=\"X.com\"}]\n",
        "d.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("already an accepted domain"), "{err}");
}

#[test]
fn timespans() {
    let p = |s: &str| s.parse::<TimeSpan>().unwrap().0;
    assert_eq!(p("00:05:00").as_secs(), 300);
    assert_eq!(p("1.00:00:00").as_secs(), 86_400);
    assert_eq!(p("00:00:01.5").as_millis(), 1500);
    assert_eq!(p("250ms").as_millis(), 250);
    assert_eq!(p("30s").as_secs(), 30);
    assert_eq!(p("5m").as_secs(), 300);
    assert_eq!(p("2h").as_secs(), 7200);
    assert_eq!(p("12").as_secs(), 12);
    assert!("00:61:00".parse::<TimeSpan>().is_err());
    assert!("-5s".parse::<TimeSpan>().is_err());
    assert!("5 parsecs".parse::<TimeSpan>().is_err());
    assert!("24:00:00".parse::<TimeSpan>().is_err());
    // written back the way Exchange shows a TimeSpan, and read back the same
    assert_eq!(TimeSpan(p("250ms")).to_string(), "00:00:00.250");
    assert_eq!(TimeSpan::from_secs(60).to_string(), "00:01:00");
    assert_eq!(TimeSpan::days(2).to_string(), "2.00:00:00");
    for t in ["00:00:00.250", "2.03:04:05", "00:10:00"] {
        assert_eq!(TimeSpan(p(t)).to_string(), t);
    }
}

#[test]
fn the_contoso_fixture_is_the_documented_tenant() {
    let expected = EopConfig {
        tenants: vec![Tenant {
            name: "contoso".into(),
            region: None,
            accepted_domains: vec![
                AcceptedDomain {
                    domain: "contoso.com".into(),
                    kind: DomainType::InternalRelay,
                },
                AcceptedDomain {
                    domain: "contoso.mail.onmicrosoft.com".into(),
                    kind: DomainType::Authoritative,
                },
                AcceptedDomain {
                    domain: "contoso.onmicrosoft.com".into(),
                    kind: DomainType::Authoritative,
                },
            ],
            inbound_connectors: vec![InboundConnector {
                name: "Inbound from contoso".into(),
                connector_type: ConnectorType::OnPremises,
                tls_sender_certificate_name: Some("mail.contoso.com".into()),
                require_tls: true,
                cloud_services_mail_enabled: true,
                ..InboundConnector::default()
            }],
            reject_direct_send: false,
            outbound_connectors: Vec::new(),
        }],
        ..EopConfig::default()
    };
    assert_eq!(EopConfig::contoso(), expected);
    // the text has nothing but [eop] tables
    assert!(
        MockFile::from_toml(CONTOSO_TOML, "c.toml")
            .unwrap()
            .faults
            .is_empty()
    );
}

#[test]
fn contoso_default_is_valid_and_round_trips() {
    let c = EopConfig::contoso();
    c.validate().unwrap();
    let text = toml::to_string(&MockFile {
        eop: c.clone(),
        faults: Vec::new(),
    })
    .unwrap();
    let back = MockFile::from_toml(&text, "rt.toml").unwrap();
    assert_eq!(back.eop, c);
}

/// Three tenants; `{name}`, `{domain}` and `{extra}` of the third are filled in by each case.
fn three_tenants(name: &str, domain: &str, extra: &str) -> String {
    format!(
        r#"[[eop.tenants]]
name = "contoso"
accepted_domains = [{{ domain = "contoso.com" }}]

[[eop.tenants.inbound_connectors]]
name = "Inbound from contoso"
sender_ip_addresses = ["127.0.0.5"]

[[eop.tenants]]
name = "fabrikam"
accepted_domains = [{{ domain = "fabrikam.com" }}]

[[eop.tenants.inbound_connectors]]
name = "Inbound from fabrikam"
sender_ip_addresses = ["127.0.0.6"]

[[eop.tenants]]
name = "{name}"
accepted_domains = [{{ domain = "{domain}" }}]

[[eop.tenants.inbound_connectors]]
name = "Inbound from the third"
{extra}
"#
    )
}

#[test]
fn an_error_in_the_third_tenant_names_the_third_tenants_line() {
    // a check after parsing: the duplicate name is the third tenant's `name`, line 18
    let src = three_tenants(
        "Contoso",
        "third.com",
        "sender_ip_addresses = [\"127.0.0.7\"]",
    );
    let err = MockFile::from_toml(&src, "t.toml").unwrap_err();
    assert!(matches!(err, ConfigError::Invalid(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "t.toml:18:1: eop.tenants[2].name: duplicate tenant name \"Contoso\""
    );

    // a domain that already belongs to a tenant: the third tenant's inline `domain`, line 19
    let src = three_tenants(
        "third",
        "Fabrikam.com",
        "sender_ip_addresses = [\"127.0.0.7\"]",
    );
    let err = MockFile::from_toml(&src, "t.toml").unwrap_err().to_string();
    assert!(
        err.starts_with("t.toml:19:23: eop.tenants[2].accepted_domains[0].domain: "),
        "{err}"
    );

    // a connector that cannot be matched: no such key, so its `[[...]]` header, line 21
    let src = three_tenants("third", "third.com", "");
    let err = MockFile::from_toml(&src, "t.toml").unwrap_err().to_string();
    assert!(
        err.starts_with(
            "t.toml:21:1: eop.tenants[2].inbound_connectors[0].tls_sender_certificate_name: \
             a connector needs"
        ),
        "{err}"
    );

    // a value serde refuses (toml's span): the third connector's `sender_ip_addresses`, line 23
    let src = three_tenants(
        "third",
        "third.com",
        "sender_ip_addresses = [\"10.0.0.0/8\"]",
    );
    let err = MockFile::from_toml(&src, "t.toml").unwrap_err();
    let l = err.located().unwrap();
    assert_eq!(l.line, Some(23), "{err}");
    assert_eq!(
        l.field,
        Some(Field::Name("sender_ip_addresses".into())),
        "{err}"
    );

    // an unknown key in the third tenant
    let src = three_tenants("third", "third.com", "require_tsl = true");
    let err = MockFile::from_toml(&src, "t.toml").unwrap_err().to_string();
    assert!(
        err.starts_with("t.toml:23:1: field `require_tsl`: unknown field"),
        "{err}"
    );
}

#[test]
fn a_bad_fault_names_its_own_table() {
    let src = "[[faults]]\nstage = \"mail\"\naction = \"drop\"\n\n[[faults]]\nstage = \"rcpt\"\naction = \"omit_starttls\"\n";
    let err = MockFile::from_toml(src, "f.toml").unwrap_err().to_string();
    assert_eq!(
        err,
        "f.toml:5:1: faults[1]: action omit_starttls does not apply at stage rcpt"
    );
}
