//! The Exchange Online side: the mock EOP's session records, joined with the send sessions.

use hybridlab_artefacts::mock_records::MockSession;

use hybridlab_artefacts::Artefacts;

use super::Ev;
use super::session::SessionView;

/// One session of the mock EOP's record, joined with the send session it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct EopView<'a> {
    pub m: &'a MockSession,
    /// Index into `Model::sessions`: the send session whose banner names this session id, else
    /// the one from the same local endpoint.
    pub session: Option<usize>,
}

impl EopView<'_> {
    /// The session's verdict, or the last message's.
    pub(crate) fn verdict(&self) -> Option<&hybridlab_model::attribution::AttributionVerdict> {
        self.m
            .record
            .attribution
            .as_ref()
            .or_else(|| self.m.record.messages.last().map(|x| &x.attribution))
    }

    /// The client certificate EOP saw (`None`: none sent, or no handshake).
    pub(crate) fn client_certificate(&self) -> Option<&hybridlab_model::record::ClientCertificate> {
        self.m
            .record
            .tls
            .as_ref()
            .and_then(|t| t.client_certificate.as_ref())
    }

    /// The evidence lines: the verdict, then the client certificate.
    pub(crate) fn evs(&self) -> Vec<Ev> {
        let at = Some(self.m.record.started_at);
        [&self.m.ev_attribution, &self.m.ev_client_certificate]
            .into_iter()
            .flatten()
            .map(|e| Ev::of(e, at))
            .collect()
    }
}

/// Every mock EOP session joined with its send session: the one whose banner names the EOP
/// session id, else the one from the same local endpoint.
pub(super) fn eop_views<'a>(a: &'a Artefacts, sessions: &[SessionView<'a>]) -> Vec<EopView<'a>> {
    a.mock_sessions
        .iter()
        .map(|m| {
            let id = m.record.session_id.as_str();
            let by_banner = sessions.iter().position(|s| {
                s.banner
                    .and_then(|i| s.reply(i))
                    .is_some_and(|r| !id.is_empty() && r.text().contains(&format!("[{id}]")))
            });
            let by_endpoint = || {
                sessions
                    .iter()
                    .position(|s| s.ps.session.local == Some(m.record.peer))
            };
            EopView {
                m,
                session: by_banner.or_else(by_endpoint),
            }
        })
        .collect()
}
