//! HELO, and the Message-ID the queued reply names.

use super::*;

#[test]
fn helo_and_header_message_id() {
    let mut p = Probe::new(config(), vec![]);
    assert_eq!(
        p.send("HELO legacy\r\n"),
        "250 AMS0EPF0000019A.mail.protection.outlook.com Hello [127.0.0.5]\r\n"
    );
    assert_eq!(
        header_message_id(b"Subject: x\r\nmessage-id:  abc@d \r\n\r\n"),
        Some("<abc@d>".into())
    );
    assert_eq!(
        header_message_id(b"Subject: x\r\n\r\nMessage-ID: <late@x>\r\n"),
        None
    );
    assert_eq!(header_message_id(b""), None);
}
