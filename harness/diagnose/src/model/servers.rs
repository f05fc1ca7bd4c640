//! Which server each artefact belongs to, and the per-server views the rules reason with: a
//! collection from several servers keeps each server's certificate store, keys, receive
//! connectors, sessions, queues and events apart (a key present on one server says nothing about
//! another, docs/domain.md section 11.4).
//!
//! A server is known from the artefacts themselves (`PSComputerName`, `Server`, `MachineName`,
//! an `Identity` of `SERVER\...`: [`hybridlab_artefacts::ps::server_of_object`]; a receive log's
//! connector id `SERVER\Connector`; a send connector's `SourceTransportServers`), else from the
//! sub-folder the file was in ([`hybridlab_artefacts::walk::folder_server`]). With one server (or
//! none named) everything belongs to it: the merged view is that server's view. With several,
//! artefacts that name no server stay unattributed: they count for the merged view only.

use hybridlab_artefacts::Artefacts;
use hybridlab_artefacts::connectors::ReceiveConnectorRow;
use hybridlab_artefacts::protocol_log::{LogKind, ParsedSession};
use hybridlab_artefacts::ps::Parsed;

use super::Model;
use super::store::Store;

/// One server and the indices of what belongs to it. (Some fields wait for the rules that name
/// servers, issue 11 rules side.)
#[allow(dead_code)]
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerView {
    /// NetBIOS name, upper case (`EXCH01`).
    pub name: String,
    /// Its `LocalMachine\My` as its own listings show it.
    pub store: Store,
    /// Indices into `Model::sessions` (send sessions).
    pub send_sessions: Vec<usize>,
    /// Indices into `Artefacts::protocol.sessions` of its receive sessions.
    pub receive_sessions: Vec<usize>,
    /// Indices into `Model::queues`.
    pub queues: Vec<usize>,
    /// Indices into `Artefacts::receive_connectors`.
    pub receive_connectors: Vec<usize>,
    /// Indices into `Artefacts::send_connectors` of the connectors it is a source server of.
    pub send_connectors: Vec<usize>,
    /// Indices into `Artefacts::events`.
    pub events: Vec<usize>,
}

/// The server a protocol log session belongs to: a receive connector id's `SERVER\` prefix,
/// else its file's folder.
pub(crate) fn session_server(a: &Artefacts, ps: &ParsedSession) -> Option<String> {
    if ps.kind == Some(LogKind::Receive)
        && let Some((s, rest)) = ps.session.connector_id.split_once('\\')
        && !rest.is_empty()
        && let Some(s) = hybridlab_artefacts::ps::server_name(s)
    {
        return Some(s);
    }
    let file = ps.sources.first()?.lines.first()?.file.as_str();
    a.file_server(file).map(str::to_string)
}

/// Every server the artefacts name, in order of first mention, upper case.
pub(crate) fn server_names(a: &Artefacts) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |s: Option<&str>| {
        if let Some(s) = s.and_then(hybridlab_artefacts::ps::server_name)
            && !names.contains(&s)
        {
            names.push(s);
        }
    };
    for c in &a.certificates {
        add(c.parsed.server.as_deref());
    }
    for q in &a.queues {
        add(q.server.as_deref());
    }
    for m in &a.messages {
        add(m.server.as_deref());
    }
    for r in &a.receive_connectors {
        add(r.server.as_deref());
    }
    for e in &a.events {
        add(e.server.as_deref());
    }
    for s in &a.protocol.sessions {
        add(session_server(a, s).as_deref());
    }
    for f in &a.files {
        add(f.server.as_deref());
    }
    names
}

/// Whether `server` (an artefact's, any case) is `name`.
fn is(server: Option<&str>, name: &str) -> bool {
    server.is_some_and(|s| s.eq_ignore_ascii_case(name))
}

/// The per-server views. `send_sessions` are the model's send sessions with their servers;
/// `queue_servers` the model's queues' servers.
pub(super) fn build(
    a: &Artefacts,
    send_servers: &[Option<String>],
    queue_servers: &[Option<&str>],
) -> Vec<ServerView> {
    let names = server_names(a);
    let single = names.len() == 1;
    let mine = |server: Option<&str>, name: &str| is(server, name) || (single && server.is_none());
    names
        .iter()
        .map(|name| {
            let send_connectors = a
                .send_connectors
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    single
                        || c.row.source_transport_servers.iter().any(|s| {
                            hybridlab_artefacts::ps::server_name(s).as_deref() == Some(name)
                        })
                })
                .map(|(i, _)| i)
                .collect();
            ServerView {
                name: name.clone(),
                store: Store::from_entries(
                    a.certificates
                        .iter()
                        .filter(|c| mine(c.parsed.server.as_deref(), name)),
                ),
                send_sessions: (0..send_servers.len())
                    .filter(|&i| mine(send_servers[i].as_deref(), name))
                    .collect(),
                receive_sessions: a
                    .protocol
                    .sessions
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.kind == Some(LogKind::Receive))
                    .filter(|(_, s)| mine(session_server(a, s).as_deref(), name))
                    .map(|(i, _)| i)
                    .collect(),
                queues: (0..queue_servers.len())
                    .filter(|&i| mine(queue_servers[i], name))
                    .collect(),
                receive_connectors: (0..a.receive_connectors.len())
                    .filter(|&i| mine(a.receive_connectors[i].server.as_deref(), name))
                    .collect(),
                send_connectors,
                events: (0..a.events.len())
                    .filter(|&i| mine(a.events[i].server.as_deref(), name))
                    .collect(),
            }
        })
        .collect()
}

/// The per-server questions the rules ask. Several are not called yet: the rules that name
/// servers in their explanations use them (issue 11, rules side).
#[allow(dead_code)]
impl<'a> Model<'a> {
    /// The servers the artefacts name (none when nothing names one).
    pub(crate) fn servers(&self) -> &[ServerView] {
        &self.servers
    }

    /// Whether the collection comes from more than one server.
    pub(crate) fn multi_server(&self) -> bool {
        self.servers.len() > 1
    }

    /// One server's view (any case).
    pub(crate) fn server_view(&self, name: &str) -> Option<&ServerView> {
        self.servers
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// The certificate store of `server`: its own listings when it is named and the collection
    /// has several servers, else the merged store.
    pub(crate) fn store_of(&self, server: Option<&str>) -> &Store {
        match server.and_then(|n| self.server_view(n)) {
            Some(v) if self.multi_server() => &v.store,
            _ => &self.store,
        }
    }

    /// The server a send session (index into `sessions`) was logged on.
    pub(crate) fn session_server(&self, si: usize) -> Option<&str> {
        self.session_servers.get(si).and_then(|s| s.as_deref())
    }

    /// The certificate store a send session's server holds ([`Model::store_of`]).
    pub(crate) fn store_for_session(&self, si: usize) -> &Store {
        self.store_of(self.session_server(si))
    }

    /// `" on EXCH01"` for explanations when the collection has several servers and `server` is
    /// known, else empty (one server needs no name).
    pub(crate) fn on_server(&self, server: Option<&str>) -> String {
        match server {
            Some(s) if self.multi_server() => format!(" on {s}"),
            _ => String::new(),
        }
    }

    /// The server name for a fix: the given server, else [`Model::server_name`].
    pub(crate) fn server_name_for(&self, server: Option<&str>) -> String {
        server.map_or_else(|| self.server_name(), str::to_string)
    }

    /// Send connectors a server is a source transport server of (every connector when one
    /// server only), as indices into `connectors`.
    pub(crate) fn connectors_of_server(&self, name: &str) -> Vec<usize> {
        let Some(v) = self.server_view(name) else {
            return Vec::new();
        };
        self.connectors
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.row.is_some_and(|r| {
                    v.send_connectors
                        .iter()
                        .any(|&i| std::ptr::eq(&self.a.send_connectors[i], r))
                })
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// The receive connector rows of a server.
    pub(crate) fn receive_connectors_of(
        &self,
        name: &str,
    ) -> impl Iterator<Item = &'a Parsed<ReceiveConnectorRow>> + '_ {
        let idx = self
            .server_view(name)
            .map(|v| v.receive_connectors.clone())
            .unwrap_or_default();
        idx.into_iter().map(|i| &self.a.receive_connectors[i])
    }

    /// The servers whose store holds a certificate with this thumbprint (any case).
    pub(crate) fn servers_holding(&self, thumbprint: &str) -> Vec<&str> {
        self.servers
            .iter()
            .filter(|v| v.store.get(thumbprint).is_some())
            .map(|v| v.name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "B3A5A705012B273DDA2D92780D3C3C11AA87F758";

    fn store(key: bool) -> String {
        format!(
            "\r\n\r\nSubject       : CN=mail.contoso.com\r\nIssuer        : CN=Contoso CA\r\nThumbprint    : {T1}\r\nHasPrivateKey : {}\r\nNotAfter      : 6/20/2025 12:59:59 AM\r\n\r\n\r\n",
            if key { "True" } else { "False" }
        )
    }

    const SEND: &str = "#Software: Microsoft Exchange Server\r\n#Version: 15.01.0845.034\r\n#Log-type: SMTP Send Protocol Log\r\n#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\r\n2025-01-15T08:01:12.330Z,Outbound to Office 365,08DD3555A1B272F3,0,,52.101.68.16:25,*,,attempting to connect\r\n2025-01-15T08:01:12.368Z,Outbound to Office 365,08DD3555A1B272F3,1,10.0.1.22:49721,52.101.68.16:25,+,,\r\n";

    const QUEUE: &str = "\r\n\r\nIdentity      : EXCH02\\3\r\nDeliveryType  : SmartHostConnectorDelivery\r\nStatus        : Retry\r\nMessageCount  : 3\r\nNextHopDomain : contoso.mail.onmicrosoft.com\r\nLastError     : 451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out\r\n\r\n\r\n";

    fn write(dir: &std::path::Path, name: &str, text: &str) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// The case: the key on one server, not on the other; merged, the store shows a key.
    #[test]
    fn stores_and_sessions_stay_with_their_server() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "EXCH01/store.txt", &store(true));
        write(d.path(), "EXCH02/store.txt", &store(false));
        write(d.path(), "EXCH02/SEND20250115-1.LOG", SEND);
        write(d.path(), "Get-Queue.txt", QUEUE);
        let a = hybridlab_artefacts::read_path(d.path()).unwrap();
        let m = Model::build(&a, None);
        let names: Vec<&str> = m.servers().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["EXCH01", "EXCH02"]);
        assert!(m.multi_server());
        assert!(m.store_of(Some("EXCH01")).get(T1).unwrap().is_keyed());
        assert!(m.store_of(Some("EXCH02")).get(T1).unwrap().is_keyless());
        // Merged, one answer for both servers (the last listing read): wrong for EXCH01, the
        // reason the per-server view exists.
        assert!(m.store.get(T1).unwrap().is_keyless());
        assert_eq!(m.session_server(0), Some("EXCH02"));
        assert!(m.store_for_session(0).get(T1).unwrap().is_keyless());
        assert_eq!(m.on_server(m.session_server(0)), " on EXCH02");
        assert_eq!(m.servers_holding(T1), ["EXCH01", "EXCH02"]);
        let v2 = m.server_view("exch02").unwrap();
        assert_eq!((v2.send_sessions.len(), v2.queues.len()), (1, 1));
        assert!(m.server_view("EXCH01").unwrap().queues.is_empty());
    }

    /// One server named: everything belongs to it and the merged view is its view.
    #[test]
    fn single_server_keeps_the_merged_view() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "store.txt", &store(true));
        write(d.path(), "SEND20250115-1.LOG", SEND);
        write(d.path(), "Get-Queue.txt", QUEUE);
        let a = hybridlab_artefacts::read_path(d.path()).unwrap();
        let m = Model::build(&a, None);
        assert_eq!(m.servers().len(), 1);
        assert!(!m.multi_server());
        assert_eq!(m.server.as_deref(), Some("EXCH02"));
        assert_eq!(m.session_server(0), None);
        assert_eq!(m.server_view("EXCH02").unwrap().send_sessions, [0]);
        assert!(std::ptr::eq(m.store_of(Some("EXCH02")), &m.store));
        assert_eq!(m.on_server(Some("EXCH02")), "");
    }
}
