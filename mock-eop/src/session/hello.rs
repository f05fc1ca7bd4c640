//! The greeting: the connect and banner stages (EOP's `220 <host> Microsoft ESMTP MAIL Service
//! ready at <date> +0000 [<session id>]`) and EHLO/HELO with EOP's extension list.

use super::Session;
use super::faults::StageFault;
use crate::fault::Stage;
use hybridlab_model::record::CloseReason;
use hybridlab_model::reply::Reply;

/// The extensions EOP advertises, in its order (STARTTLS only before TLS).
const EXTENSIONS: [&str; 8] = [
    "PIPELINING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "STARTTLS",
    "8BITMIME",
    "BINARYMIME",
    "CHUNKING",
    "SMTPUTF8",
];

/// `Thu, 2 May 2019 06:32:13` (the `+0000` is appended).
const BANNER_DATE: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day padding:none] [month repr:short] [year] [hour]:[minute]:[second]"
);

impl Session {
    /// The connect and banner stages: a fault's reply or drop, else the banner.
    pub(super) fn greet(&mut self) {
        for stage in [Stage::Connect, Stage::Banner] {
            match self.stage_fault(stage) {
                StageFault::Proceed => {}
                StageFault::Reply(r, close) => {
                    let positive = r.code == 220;
                    self.reply(r);
                    if close || !positive {
                        self.close(CloseReason::Fault);
                    }
                    return;
                }
                StageFault::Drop => {
                    self.close(CloseReason::Fault);
                    return;
                }
            }
        }
        let date = self
            .cur
            .to_offset(time::UtcOffset::UTC)
            .format(BANNER_DATE)
            .unwrap_or_default();
        let mut text = format!(
            "{} Microsoft ESMTP MAIL Service ready at {date} +0000",
            self.cfg().endpoint.hostname
        );
        if self.cfg().endpoint.banner_session_id {
            text.push_str(&format!(" [{}]", self.record.session_id));
        }
        if self.mask {
            text = "*".repeat(text.chars().count());
        }
        self.reply(Reply::new(220, text));
    }

    /// EHLO (`extended`) or HELO: forgets any transaction and answers `Hello [ip]`, with the
    /// extension list for EHLO.
    pub(super) fn hello(&mut self, host: String, extended: bool) {
        let stage = if self.tls_active {
            Stage::PostTlsEhlo
        } else {
            Stage::Ehlo
        };
        if self.command_fault(stage) {
            return;
        }
        self.txn = None;
        self.helo = true;
        self.record.helo = Some(host);
        let ip = self.ctx.peer.ip();
        let first = format!("{} Hello [{ip}]", self.cfg().endpoint.hostname);
        if !extended {
            self.reply(Reply::new(250, first));
            return;
        }
        let mut lines = vec![
            first,
            format!("SIZE {}", self.cfg().limits.max_message_size),
        ];
        let offer_tls = self.cfg().tls.starttls && !self.tls_active && !self.omit_starttls;
        for ext in EXTENSIONS {
            if ext == "STARTTLS" {
                if !offer_tls {
                    continue;
                }
                if self.mask {
                    lines.push("XXXXXXXA".into());
                    continue;
                }
            }
            lines.push(ext.to_string());
        }
        self.reply(Reply::multi(250, lines));
    }
}
