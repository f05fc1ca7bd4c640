//! The scripted faults as the session meets them: which fault fires at a stage (decided once per
//! session and fault), and what it does to the command at hand.

use std::sync::Arc;

use super::Session;
use crate::fault::{FaultAction, Stage};
use hybridlab_model::record::{CloseReason, FaultFired};
use hybridlab_model::reply::{Reply, eop};

/// What a fault at a command stage leaves the command to do.
pub(super) enum StageFault {
    /// Nothing fired (or a stall, already done, or a flag for later): carry on.
    Proceed,
    /// Answer this instead of the command; close after it when the flag is set.
    Reply(Reply, bool),
    /// Drop the connection without a reply.
    Drop,
}

impl Session {
    /// The action of the first fault armed at `stage` in this session, recorded as fired.
    pub(super) fn fault_at(&mut self, stage: Stage) -> Option<FaultAction> {
        let book = Arc::clone(&self.ctx.faults);
        if !book.has_stage(stage) {
            return None;
        }
        for (i, f) in book.faults().iter().enumerate() {
            if f.stage != stage {
                continue;
            }
            let armed = *self.decided[i].get_or_insert_with(|| book.decide(i, self.ctx.index));
            if armed {
                self.record.faults_fired.push(FaultFired {
                    at: self.cur,
                    index: i,
                    name: f.name.clone(),
                    stage: stage.as_str().to_string(),
                    action: f.action.describe(),
                });
                self.info(format!(
                    "fault {i} at {}: {}",
                    stage.as_str(),
                    f.action.describe()
                ));
                return Some(f.action.clone());
            }
        }
        None
    }

    /// The fault at `stage` turned into what the command must do (stalls and STARTTLS flags are
    /// carried out here).
    pub(super) fn stage_fault(&mut self, stage: Stage) -> StageFault {
        match self.fault_at(stage) {
            None => StageFault::Proceed,
            Some(FaultAction::Stall(d)) => {
                self.stall(d.0);
                StageFault::Proceed
            }
            Some(FaultAction::Reply(r)) => {
                let close = r.0.code == 421;
                StageFault::Reply(r.0, close)
            }
            Some(FaultAction::Throttle(t)) => StageFault::Reply(
                eop::throttled(&self.ctx.peer.ip().to_string(), &t.tag),
                false,
            ),
            Some(FaultAction::Close421) => StageFault::Reply(eop::service_not_available(), true),
            Some(FaultAction::Drop) => StageFault::Drop,
            Some(FaultAction::OmitStarttls) => {
                self.omit_starttls = true;
                StageFault::Proceed
            }
            Some(FaultAction::MaskStarttls) => {
                self.mask = true;
                StageFault::Proceed
            }
            // Only valid at STARTTLS / TLS handshake, where they are handled directly.
            Some(
                FaultAction::CloseAfterStarttls
                | FaultAction::TlsGarbage(_)
                | FaultAction::TlsAlert(_),
            ) => StageFault::Proceed,
        }
    }

    /// Applies a command-stage fault; returns `true` when the command must not be processed.
    pub(super) fn command_fault(&mut self, stage: Stage) -> bool {
        match self.stage_fault(stage) {
            StageFault::Proceed => false,
            StageFault::Reply(r, close) => {
                self.reply(r);
                if close {
                    self.close(CloseReason::Fault);
                }
                true
            }
            StageFault::Drop => {
                self.close(CloseReason::Fault);
                true
            }
        }
    }
}
