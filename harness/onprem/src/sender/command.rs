//! The commands the sender emits, as small `Display` types that write the exact wire bytes (CRLF
//! included). The protocol log records them without the CRLF ([`line()`]).

use std::fmt;

/// `EHLO <name>`.
#[derive(Debug, Clone, Copy)]
pub struct Ehlo<'a>(pub &'a str);
/// `HELO <name>` (ForceHELO).
#[derive(Debug, Clone, Copy)]
pub struct Helo<'a>(pub &'a str);
/// `STARTTLS`.
#[derive(Debug, Clone, Copy)]
pub struct StartTls;
/// `MAIL FROM:<addr> SIZE=<n>`.
#[derive(Debug, Clone, Copy)]
pub struct MailFrom<'a> {
    /// The envelope sender address, without angle brackets.
    pub from: &'a str,
    /// The SIZE parameter (sent when the server advertised SIZE).
    pub size: Option<usize>,
}
/// `RCPT TO:<addr>`.
#[derive(Debug, Clone, Copy)]
pub struct RcptTo<'a>(pub &'a str);
/// `BDAT <n> LAST` (RFC 3030); the chunk follows the command line.
#[derive(Debug, Clone, Copy)]
pub struct Bdat {
    /// Bytes in the chunk that follows the command line.
    pub len: usize,
    /// Whether this chunk ends the message (`LAST`).
    pub last: bool,
}
/// `DATA`.
#[derive(Debug, Clone, Copy)]
pub struct Data;
/// `RSET`.
#[derive(Debug, Clone, Copy)]
pub struct Rset;
/// `QUIT`.
#[derive(Debug, Clone, Copy)]
pub struct Quit;

impl fmt::Display for Ehlo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EHLO {}\r\n", self.0)
    }
}
impl fmt::Display for Helo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HELO {}\r\n", self.0)
    }
}
impl fmt::Display for StartTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("STARTTLS\r\n")
    }
}
impl fmt::Display for MailFrom<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MAIL FROM:<{}>", self.from)?;
        if let Some(n) = self.size {
            write!(f, " SIZE={n}")?;
        }
        f.write_str("\r\n")
    }
}
impl fmt::Display for RcptTo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RCPT TO:<{}>\r\n", self.0)
    }
}
impl fmt::Display for Bdat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BDAT {}{}\r\n",
            self.len,
            if self.last { " LAST" } else { "" }
        )
    }
}
impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DATA\r\n")
    }
}
impl fmt::Display for Rset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RSET\r\n")
    }
}
impl fmt::Display for Quit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QUIT\r\n")
    }
}

/// A command as the protocol log shows it (no CRLF).
pub fn line(cmd: &impl fmt::Display) -> String {
    cmd.to_string().trim_end_matches(['\r', '\n']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        assert_eq!(
            Ehlo("edge01.contoso.com").to_string(),
            "EHLO edge01.contoso.com\r\n"
        );
        assert_eq!(Helo("x").to_string(), "HELO x\r\n");
        assert_eq!(StartTls.to_string(), "STARTTLS\r\n");
        assert_eq!(
            MailFrom {
                from: "alice@contoso.com",
                size: Some(10250)
            }
            .to_string(),
            "MAIL FROM:<alice@contoso.com> SIZE=10250\r\n"
        );
        assert_eq!(
            MailFrom {
                from: "",
                size: None
            }
            .to_string(),
            "MAIL FROM:<>\r\n"
        );
        assert_eq!(RcptTo("bob@x").to_string(), "RCPT TO:<bob@x>\r\n");
        assert_eq!(
            Bdat {
                len: 10250,
                last: true
            }
            .to_string(),
            "BDAT 10250 LAST\r\n"
        );
        assert_eq!(Data.to_string(), "DATA\r\n");
        assert_eq!(Rset.to_string(), "RSET\r\n");
        assert_eq!(Quit.to_string(), "QUIT\r\n");
        assert_eq!(line(&Quit), "QUIT");
    }
}
