//! EOP's leniency and texts, checked against public transcripts of `*.mail.protection.outlook.com`
//! (the domain reference, section 11.6): bare HELO, `MAIL FROM:` without brackets, the 500 and 501
//! texts, and the reply tag's two eras.

use super::*;
use crate::config::ReplyTagEra;

/// A bare `HELO` gets `250 <host> Hello [ip]`, as EOP answers it (transcripts collected in the
/// domain reference, section 11.6; EOP's dialogue: section 4.2).
#[test]
fn bare_helo_is_greeted() {
    let mut p = Probe::new(config(), vec![]);
    assert_eq!(
        p.send("HELO\r\n"),
        "250 AMS0EPF0000019A.mail.protection.outlook.com Hello [127.0.0.5]\r\n"
    );
    assert_eq!(p.finish().helo.as_deref(), Some(""));
}

/// `MAIL FROM: addr` without angle brackets gets `250 2.1.0 Sender OK` (section 11.6); SIZE after
/// it still counts.
#[test]
fn mail_from_without_brackets_is_accepted() {
    let mut p = Probe::new(config(), vec![]);
    p.send("EHLO edge01.contoso.com\r\n");
    assert_eq!(
        p.send("MAIL FROM: alice@contoso.com\r\n"),
        "250 2.1.0 Sender OK\r\n"
    );
    p.send("RSET\r\n");
    assert_eq!(
        p.send("MAIL FROM: alice@contoso.com SIZE=5000\r\n"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
}

/// `500 5.3.3 Unrecognized command '<verb>'` and `501 5.5.4 Unrecognized parameter [<tag>]`, the
/// tag in the current form `[<host> <time> <session id>]`
/// (e.g. `[DM6NAM11FT088.eop-nam11.prod.protection.outlook.com 2023-10-28T12:19:31.847Z
/// 08DBD70830F39917]`, section 11.6).
#[test]
fn refusals_use_eops_texts_and_the_current_tag() {
    let mut p = Probe::new(config(), vec![]);
    assert_eq!(
        p.send("XYZZY\r\n"),
        "500 5.3.3 Unrecognized command 'XYZZY'\r\n"
    );
    assert_eq!(
        p.send("VRFY bob\r\n"),
        "500 5.3.3 Unrecognized command 'VRFY'\r\n"
    );
    let id = p.s.session_id().to_string();
    assert_eq!(id.len(), 16);
    assert_eq!(
        p.send("EHLO\r\n"),
        format!(
            "501 5.5.4 Unrecognized parameter [AMS0EPF0000019A.eurprd04.prod.outlook.com 2026-05-02T06:30:00.000Z {id}]\r\n"
        )
    );
}

/// The legacy era (before 2023) ends reject texts with the host alone.
#[test]
fn legacy_tags_name_the_host_only() {
    let mut cfg = config();
    cfg.endpoint.reply_tag = ReplyTagEra::Legacy;
    cfg.endpoint.reject_host = "AM5EUR02FT017.eop-EUR02.prod.protection.outlook.com".into();
    let mut p = Probe::new(cfg, vec![]);
    assert_eq!(
        p.send("EHLO\r\n"),
        "501 5.5.4 Unrecognized parameter [AM5EUR02FT017.eop-EUR02.prod.protection.outlook.com]\r\n"
    );
    p.send("EHLO edge01.contoso.com\r\n");
    p.send("MAIL FROM:<alice@gmail.example>\r\n");
    assert_eq!(
        p.send("RCPT TO:<someone@fabrikam.example>\r\n"),
        "550 5.7.64 Relay Access Denied ATTR36. For more information please go to https://go.microsoft.com/fwlink/?LinkId=869550 [AM5EUR02FT017.eop-EUR02.prod.protection.outlook.com]\r\n"
    );
}

/// The current era's relay refusal carries host, time and session id.
#[test]
fn current_relay_refusal_carries_time_and_session_id() {
    let mut p = Probe::new(config(), vec![]);
    let id = p.s.session_id().to_string();
    p.send("EHLO edge01.contoso.com\r\n");
    p.send("MAIL FROM:<alice@contoso.com>\r\n");
    assert_eq!(
        p.send("RCPT TO:<someone@fabrikam.example>\r\n"),
        format!(
            "550 5.7.64 TenantAttribution; Relay Access Denied [AMS0EPF0000019A.eurprd04.prod.outlook.com 2026-05-02T06:30:00.000Z {id}]\r\n"
        )
    );
}
