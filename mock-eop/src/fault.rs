//! Declarative, deterministic faults: a [`Stage`] of the session times a [`FaultAction`], applied
//! always, to the first N sessions that reach the stage, or with a seeded probability.
//!
//! # Contract
//! Scenario files list faults under `[[faults]]` in this shape (snake_case, unknown keys are
//! errors):
//!
//! ```toml
//! [[faults]]
//! stage = "rcpt"
//! action = { throttle = { tag = "S77714" } }
//! first_attempts = 2           # the first two sessions that reach RCPT get it, then it recovers
//!
//! [[faults]]
//! stage = "ehlo"
//! action = "mask_starttls"     # unit actions are plain strings
//! probability = 0.25           # decided per session from the seed: same seed, same sessions
//! ```
//!
//! An "attempt" is a session (connection) that reaches the fault's stage; each fault keeps its own
//! count. Within a session an armed fault fires every time its stage comes round (every RCPT, for
//! a `rcpt` fault). The first armed fault of a stage wins.

use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use hybridlab_model::reply::Reply;
use hybridlab_model::timespan::TimeSpan;

/// Where in the session a fault applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// TCP accepted, before the banner.
    Connect,
    /// The 220 banner.
    Banner,
    /// EHLO/HELO before TLS.
    Ehlo,
    /// The STARTTLS command.
    Starttls,
    /// The TLS handshake after `220 2.0.0 SMTP server ready`.
    TlsHandshake,
    /// EHLO/HELO inside TLS.
    PostTlsEhlo,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// The DATA command or the first BDAT of a message.
    Data,
    /// The final reply to a message (after the end of DATA or the last BDAT chunk).
    EndOfData,
}

impl Stage {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Banner => "banner",
            Self::Ehlo => "ehlo",
            Self::Starttls => "starttls",
            Self::TlsHandshake => "tls_handshake",
            Self::PostTlsEhlo => "post_tls_ehlo",
            Self::Mail => "mail",
            Self::Rcpt => "rcpt",
            Self::Data => "data",
            Self::EndOfData => "end_of_data",
        }
    }
}

/// A TLS alert description sent instead of a ServerHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsAlert {
    /// 40: no acceptable parameters.
    HandshakeFailure,
    /// 70: version not supported.
    ProtocolVersion,
    /// 71: cipher too weak.
    InsufficientSecurity,
    /// 80: server-side failure.
    InternalError,
    /// 42: certificate problem.
    BadCertificate,
    /// 48: unknown CA.
    UnknownCa,
    /// 47: bad parameter.
    IllegalParameter,
}

impl TlsAlert {
    /// The alert description byte.
    pub fn code(self) -> u8 {
        match self {
            Self::HandshakeFailure => 40,
            Self::BadCertificate => 42,
            Self::IllegalParameter => 47,
            Self::UnknownCa => 48,
            Self::ProtocolVersion => 70,
            Self::InsufficientSecurity => 71,
            Self::InternalError => 80,
        }
    }

    /// A fatal alert record (TLS 1.2 record version, as servers send before a version is agreed).
    pub fn record(self) -> Vec<u8> {
        vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, self.code()]
    }
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultAction {
    /// Answer with this reply line instead (the command is not performed; a 421 also closes).
    Reply(ReplyLine),
    /// Wait this long (virtual time) before answering, then go on normally.
    Stall(TimeSpan),
    /// Close the connection without a reply.
    Drop,
    /// `421 4.3.2 Service not available`, then close.
    Close421,
    /// Leave STARTTLS out of the EHLO reply; a STARTTLS command is then unrecognised.
    OmitStarttls,
    /// What an ESMTP-inspecting firewall does: the banner becomes asterisks, STARTTLS in the EHLO
    /// reply becomes `XXXXXXXA`, the STARTTLS command arrives as `XXXXXXXX` (unrecognised).
    MaskStarttls,
    /// Send `220 2.0.0 SMTP server ready`, then close before the handshake.
    CloseAfterStarttls,
    /// Answer the ClientHello with these bytes (plain text) and close.
    TlsGarbage(String),
    /// Answer the ClientHello with a fatal TLS alert and close.
    TlsAlert(TlsAlert),
    /// `451 4.7.500 Server busy. Please try again later from [ip]. (tag)`.
    Throttle(Throttle),
}

/// Throttling reply parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Throttle {
    /// The tag in parentheses (`S77714`, `AS(7230)`).
    pub tag: String,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            tag: "S77714".into(),
        }
    }
}

impl FaultAction {
    /// A short name for records (`reply`, `stall`, `drop`...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Reply(_) => "reply",
            Self::Stall(_) => "stall",
            Self::Drop => "drop",
            Self::Close421 => "close421",
            Self::OmitStarttls => "omit_starttls",
            Self::MaskStarttls => "mask_starttls",
            Self::CloseAfterStarttls => "close_after_starttls",
            Self::TlsGarbage(_) => "tls_garbage",
            Self::TlsAlert(_) => "tls_alert",
            Self::Throttle(_) => "throttle",
        }
    }

    /// A one-line description for records and logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Reply(r) => format!("reply {}", r.0.one_line()),
            Self::Stall(d) => format!("stall {d}"),
            Self::TlsGarbage(g) => format!("tls_garbage {} bytes", g.len()),
            Self::TlsAlert(a) => format!("tls_alert {}", a.code()),
            Self::Throttle(t) => format!("throttle {}", t.tag),
            other => other.name().to_string(),
        }
    }
}

/// A reply line in a fault (`"451 4.7.500 ..."`), parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine(pub Reply);

impl Serialize for ReplyLine {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.one_line())
    }
}

impl<'de> Deserialize<'de> for ReplyLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let one_line = !s
            .trim_end_matches(['\r', '\n'])
            .chars()
            .any(char::is_control);
        Reply::parse_line(&s).filter(|_| one_line).map(ReplyLine).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?} is not a reply line (`<code> <text>` on one line, code 200-599, no control characters)"
            ))
        })
    }
}

/// One scripted fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The point of the dialogue where the fault fires (the first fault armed there wins).
    pub stage: Stage,
    /// What the mock does there instead of (or, for a stall, before) its normal answer.
    pub action: FaultAction,
    /// Only the first N sessions that reach the stage (then it recovers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_attempts: Option<u32>,
    /// Each session that reaches the stage is hit with this probability (seeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// A label shown with the fault in the session records (`faults_fired[].name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Fault {
    /// A fault that always fires at `stage`.
    pub fn new(stage: Stage, action: FaultAction) -> Self {
        Self {
            stage,
            action,
            first_attempts: None,
            probability: None,
            name: None,
        }
    }

    /// Replies `line` (e.g. `"451 4.7.500 Server busy"`) at `stage`.
    ///
    /// # Panics
    /// When `line` is not a reply line; meant for tests and literals.
    pub fn rejects_at(stage: Stage, line: &str) -> Self {
        let reply = Reply::parse_line(line).expect("a reply line such as \"451 4.7.0 ...\"");
        Self::new(stage, FaultAction::Reply(ReplyLine(reply)))
    }

    /// Only for the first `n` sessions reaching the stage.
    pub fn first(mut self, n: u32) -> Self {
        self.first_attempts = Some(n);
        self
    }

    /// With probability `p` per session.
    pub fn with_probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }

    /// Checks that the action makes sense at the stage.
    pub fn validate(&self) -> Result<(), String> {
        use FaultAction as A;
        use Stage as S;
        if self.first_attempts.is_some() && self.probability.is_some() {
            return Err("first_attempts and probability cannot both be set".into());
        }
        if let Some(p) = self.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(format!("probability {p} is not between 0 and 1"));
        }
        if let A::Reply(ReplyLine(r)) = &self.action
            && r.lines.iter().any(|l| l.chars().any(char::is_control))
        {
            return Err(format!(
                "reply {:?} holds a CR, LF or other control character (one line only)",
                r.lines.join("\r\n")
            ));
        }
        if let A::Stall(d) = &self.action
            && d.0 > crate::config::MAX_DURATION
        {
            return Err(format!(
                "stall {d} is longer than the longest duration the mock takes (365 days)"
            ));
        }
        let ok = match &self.action {
            A::Reply(_) | A::Stall(_) | A::Drop | A::Close421 | A::Throttle(_) => true,
            A::OmitStarttls | A::MaskStarttls => {
                matches!(self.stage, S::Connect | S::Banner | S::Ehlo)
            }
            A::CloseAfterStarttls => matches!(self.stage, S::Starttls),
            A::TlsGarbage(_) | A::TlsAlert(_) => {
                matches!(self.stage, S::Starttls | S::TlsHandshake)
            }
        };
        if !ok {
            return Err(format!(
                "action {} does not apply at stage {}",
                self.action.name(),
                self.stage.as_str()
            ));
        }
        if matches!(self.stage, S::TlsHandshake)
            && matches!(self.action, A::Reply(_) | A::Close421 | A::Throttle(_))
        {
            return Err("stage tls_handshake takes stall, drop, tls_garbage or tls_alert".into());
        }
        Ok(())
    }
}

/// The shared, deterministic state of a list of faults: per-fault attempt counters and the seed.
/// One book serves every session of a mock.
#[derive(Debug)]
pub struct FaultBook {
    faults: Vec<Fault>,
    reached: Vec<AtomicU32>,
    seed: u64,
}

impl FaultBook {
    /// A book for `faults`, with `seed` for the probabilistic ones.
    pub fn new(faults: Vec<Fault>, seed: u64) -> Self {
        let reached = faults.iter().map(|_| AtomicU32::new(0)).collect();
        Self {
            faults,
            reached,
            seed,
        }
    }

    /// The faults of the book, in order: a record's `faults_fired[].index` is a position here.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    /// Whether any fault applies at `stage` (cheap check before [`Self::decide`]).
    pub fn has_stage(&self, stage: Stage) -> bool {
        self.faults.iter().any(|f| f.stage == stage)
    }

    /// Decides once per session whether fault `index` is armed: counts the session as an attempt
    /// for `first_attempts`, draws from the seed for `probability`. Deterministic given `seed`,
    /// `session_index` and the order in which sessions reach the stage.
    pub fn decide(&self, index: usize, session_index: u64) -> bool {
        let Some(f) = self.faults.get(index) else {
            return false;
        };
        if let Some(n) = f.first_attempts {
            let k = self.reached[index].fetch_add(1, Ordering::Relaxed);
            return k < n;
        }
        if let Some(p) = f.probability {
            let x = mix(self.seed ^ mix(session_index.wrapping_add(1)) ^ mix(index as u64 + 77));
            let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
            return unit < p;
        }
        true
    }
}

/// SplitMix64 finaliser: a well-spread deterministic hash of a 64-bit value.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MockFile;

    #[test]
    fn faults_parse_from_toml() {
        let src = r#"
[[faults]]
stage = "rcpt"
action = { throttle = { tag = "AS(7230)" } }
first_attempts = 2

[[faults]]
stage = "ehlo"
action = "mask_starttls"
probability = 0.5

[[faults]]
stage = "mail"
action = { reply = "451 4.7.500 Access denied, please try again later" }

[[faults]]
stage = "tls_handshake"
action = { tls_alert = "protocol_version" }

[[faults]]
stage = "connect"
action = { stall = "00:02:00" }
"#;
        let f = MockFile::from_toml(src, "f.toml").unwrap();
        assert_eq!(f.faults.len(), 5);
        assert_eq!(
            f.faults[0].action,
            FaultAction::Throttle(Throttle {
                tag: "AS(7230)".into()
            })
        );
        assert_eq!(f.faults[1].action, FaultAction::MaskStarttls);
        match &f.faults[2].action {
            FaultAction::Reply(r) => assert_eq!(r.0.code, 451),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            f.faults[4].action,
            FaultAction::Stall(TimeSpan::from_secs(120))
        );
    }

    #[test]
    fn invalid_faults_are_refused() {
        let err = MockFile::from_toml(
            "[[faults]]\nstage = \"rcpt\"\naction = \"omit_starttls\"\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("f.toml:1:1: faults[0]: "), "{err}");
        assert!(err.contains("does not apply"), "{err}");
        let err = MockFile::from_toml(
            "[[faults]]\nstage = \"rcpt\"\naction = \"explode\"\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("f.toml:3:"), "{err}");
        let err = MockFile::from_toml(
            "[[faults]]\nstage = \"mail\"\naction = { reply = \"hello\" }\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a reply line"), "{err}");
    }

    #[test]
    fn first_attempts_then_recovers_and_probability_is_seeded() {
        let book = FaultBook::new(
            vec![
                Fault::rejects_at(Stage::Rcpt, "451 4.7.0 later").first(2),
                Fault::rejects_at(Stage::Mail, "451 4.7.0 later").with_probability(0.5),
            ],
            42,
        );
        assert!(book.decide(0, 0));
        assert!(book.decide(0, 1));
        assert!(!book.decide(0, 2));
        let draws: Vec<bool> = (0..200).map(|s| book.decide(1, s)).collect();
        let again = FaultBook::new(book.faults().to_vec(), 42);
        let redraw: Vec<bool> = (0..200).map(|s| again.decide(1, s)).collect();
        assert_eq!(draws, redraw);
        let hits = draws.iter().filter(|b| **b).count();
        assert!((60..140).contains(&hits), "{hits}");
        let other = FaultBook::new(book.faults().to_vec(), 43);
        let other: Vec<bool> = (0..200).map(|s| other.decide(1, s)).collect();
        assert_ne!(draws, other);
    }
}
