//! The ACK of our 2xx to an INVITE, as an event others can wait for.
//!
//! rsipstack drops an in-dialog request that arrives while the dialog still waits for
//! that ACK, without an answer (the controller's REFER right behind the ACK, arriving
//! first over another connection), and over TCP nobody retransmits it. So such a request
//! waits for the ACK before it reaches the dialog. rsipstack announces the ACK only on the
//! dialog's state channel, which the call's own task reads; the dispatcher that holds the
//! request learns of it here instead: the INVITE's server transaction — the task that
//! takes the ACK — wakes every waiter when it ends, and each waiter looks at its own
//! dialog again.

use rsipstack::dialog::dialog::Dialog;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::transaction::transaction::Transaction;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long an in-dialog request that overtook the ACK of our 2xx waits for it (and the
/// first NOTIFY of a call dialled on answer, on the control leg). The ACK is normally a
/// fraction of a millisecond behind our 200.
pub(super) const ACK_WAIT_LIMIT: Duration = Duration::from_secs(4);

/// Wakes whoever waits for the ACK of one of our 2xx answers.
#[derive(Clone, Default)]
pub struct AckWatch {
    /// Notified when a dialog may have stopped waiting for its ACK.
    changed: Arc<Notify>,
}

impl AckWatch {
    /// Runs an INVITE's server transaction on a task of its own: it sends our final
    /// response again until the ACK, and takes the ACK (RFC 3261 §13.3.1.4). Its end — the
    /// ACK arrived, a CANCEL came, or no ACK came in time — wakes every waiter.
    pub(super) fn serve_invite(&self, dialog: &InviteDialog, mut tx: Transaction) {
        let mut dialog = Dialog::Invite(dialog.clone());
        let changed = self.changed.clone();
        tokio::spawn(async move {
            let _ = dialog.handle(&mut tx).await;
            changed.notify_waiters();
        });
    }

    /// Wakes every waiter: a request handled in some dialog may have ended it (a BYE
    /// before the ACK), so it waits no more.
    pub(super) fn dialog_changed(&self) {
        self.changed.notify_waiters();
    }

    /// Waits (bounded by [`ACK_WAIT_LIMIT`]) until `dialog` no longer waits for the ACK
    /// of our 2xx; `false` if it still does.
    pub(super) async fn arrived(&self, dialog: &Dialog) -> bool {
        let deadline = Instant::now() + ACK_WAIT_LIMIT;
        loop {
            // Registered before the look, so a wake-up between the two is not lost.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !dialog.state().waiting_ack() {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return !dialog.state().waiting_ack();
            }
        }
    }
}
