//! The STARTTLS phase: EHLO's answer decides STARTTLS (or RequireTLS refuses plain text), the
//! certificate is selected and its key checked before any TLS byte (SChannel's
//! AcquireCredentialsHandle), the driver runs the handshake, and the remote certificate is judged
//! per TlsAuthLevel/TlsDomain.

use hybridlab_artefacts::protocol_log::{CertRole, SessionEvent};
use hybridlab_model::exchange::{DisconnectReason, SecurityStatus, TlsAuthLevel, synthetic};
use hybridlab_model::reply::Reply;
use hybridlab_model::x509::{CertFacts, names_match};
use smtp_proto::EXT_START_TLS;
use time::OffsetDateTime;

use super::super::command::StartTls;
use super::super::reply_reader::ReplyReader;
use super::super::tls::{ClientCredential, RemoteChainStatus, TlsRequest, TlsResult};
use super::{Action, Expect, FailureKind, Phase, SenderMachine};
use crate::selection::{SelectionOutcome, select};

impl SenderMachine {
    pub(super) fn after_ehlo(&mut self, now: OffsetDateTime) {
        if !self.tls_active {
            let offered = self.ehlo_caps & EXT_START_TLS != 0;
            let attempt = offered && !self.cfg.connector.ignore_starttls && !self.cfg.skip_starttls;
            if attempt {
                if self.cfg.connector.tls_auth_level == Some(TlsAuthLevel::DomainValidation)
                    && self
                        .cfg
                        .connector
                        .tls_domain
                        .as_deref()
                        .unwrap_or("")
                        .is_empty()
                    && !self.cfg.connector.dns_routing_enabled
                {
                    self.fail_with_quit(
                        now,
                        FailureKind::DomainValidationWithoutDomain,
                        synthetic::domain_validation_without_domain(),
                    );
                    return;
                }
                self.send_cmd(now, &StartTls, Expect::StartTls);
                return;
            }
            if self.cfg.connector.tls_required() {
                self.fail_with_quit(
                    now,
                    FailureKind::StartTlsRequired,
                    synthetic::starttls_required(),
                );
                return;
            }
        }
        self.start_message(now);
    }

    pub(super) fn after_starttls_reply(&mut self, reply: Reply, now: OffsetDateTime) {
        if reply.code != 220 {
            if self.cfg.connector.tls_required() {
                self.fail_with_quit(now, FailureKind::StartTlsRejected, reply);
            } else {
                self.start_message(now);
            }
            return;
        }
        let Ok(sel) = select(
            &self.cfg.store,
            &self.cfg.connector,
            &self.cfg.server.fqdn,
            &self.cfg.selection,
            now,
        ) else {
            // validate() refuses such a connector; treat a stale unparsable value as not found
            self.fail_and_close(
                now,
                FailureKind::CertificateNotFound,
                synthetic::tls_certificate_name_not_found(),
                DisconnectReason::Local,
            );
            return;
        };
        let outcome = sel.outcome.clone();
        let chosen = sel.chosen(&self.cfg.store).cloned();
        self.selection = Some(sel);
        let credential = match outcome {
            SelectionOutcome::NotFound { ack } => {
                self.fail_and_close(
                    now,
                    FailureKind::CertificateNotFound,
                    ack,
                    DisconnectReason::Local,
                );
                return;
            }
            SelectionOutcome::NoCertificate => None,
            SelectionOutcome::Selected { .. } => {
                let Some(entry) = chosen else {
                    return;
                };
                self.event(
                    now,
                    SessionEvent::Certificate {
                        role: CertRole::Sending,
                        cert: entry.facts.clone(),
                    },
                );
                // SChannel's AcquireCredentialsHandle needs the key before any TLS byte is sent.
                let key = match entry.private_key() {
                    None => {
                        self.tls_failed(SecurityStatus::NoCredentials, now);
                        return;
                    }
                    Some(_) if !entry.key_readable => {
                        self.tls_failed(SecurityStatus::UnknownCredentials, now);
                        return;
                    }
                    Some(k) => k,
                };
                Some(ClientCredential {
                    chain: self.cfg.store.chain_for(&entry),
                    key,
                })
            }
        };
        self.phase = Phase::Handshaking;
        self.actions
            .push_back(Action::StartTls(Box::new(TlsRequest {
                server_name: self
                    .cfg
                    .target
                    .host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                credential,
                roots: self.cfg.store.root_cert_store(),
                schannel: self.cfg.schannel.clone(),
            })));
    }

    fn tls_failed(&mut self, status: SecurityStatus, now: OffsetDateTime) {
        self.event(now, SessionEvent::TlsFailed { status });
        let (ack, reason) = if status.is_local() {
            (synthetic::connection_timed_out(), DisconnectReason::Local)
        } else {
            (
                synthetic::connection_dropped(),
                DisconnectReason::Remote("SocketError".into()),
            )
        };
        self.fail_and_close(now, FailureKind::Tls { status }, ack, reason);
    }

    /// The handshake's result, at `now`.
    pub fn handle_tls(&mut self, now: OffsetDateTime, result: TlsResult) {
        if self.phase != Phase::Handshaking {
            return;
        }
        self.last_activity = now;
        let info = match result {
            TlsResult::Failed(status) => {
                self.tls_failed(status, now);
                return;
            }
            TlsResult::Established(info) => info,
        };
        self.phase = Phase::Open;
        self.tls_active = true;
        self.reader = ReplyReader::new();
        self.event(
            now,
            SessionEvent::TlsNegotiated {
                text: info.schannel_text(),
            },
        );
        let leaf = info
            .peer_chain
            .first()
            .and_then(|d| CertFacts::from_der(d).ok());
        if let Some(facts) = &leaf {
            self.event(
                now,
                SessionEvent::Certificate {
                    role: CertRole::Remote,
                    cert: facts.clone(),
                },
            );
        }
        let level = self
            .cfg
            .connector
            .tls_auth_level
            .unwrap_or(TlsAuthLevel::EncryptionOnly);
        let mut status: Option<String> = None;
        if level != TlsAuthLevel::EncryptionOnly && info.chain != RemoteChainStatus::Trusted {
            status = Some(info.chain.status_name().to_string());
        }
        if status.is_none() && level == TlsAuthLevel::DomainValidation {
            let domain = self
                .cfg
                .connector
                .tls_domain
                .clone()
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| self.cfg.next_hop_domain.clone());
            let ok = leaf
                .as_ref()
                .is_some_and(|f| names_match(&domain, f.names()));
            if !ok {
                status = Some("SubjectMismatch".into());
            }
        }
        self.tls = Some(info);
        if let Some(status) = status {
            self.event(
                now,
                SessionEvent::Info {
                    data: String::new(),
                    context: format!(
                        "Remote certificate validation failed with status {status} (TlsAuthLevel {level})"
                    ),
                },
            );
            self.fail_with_quit(
                now,
                FailureKind::CertificateValidation { status },
                synthetic::certificate_validation_failure(),
            );
            return;
        }
        self.send_ehlo(now);
    }
}
