//! Telling kanband how claims ended: ReportExit for a worker's exit (or a spawn failure),
//! Release for a claim the supervisor gave up itself. Reports go out in order from one task
//! with its own connection, retried with backoff while kanband is unreachable (it may be
//! restarting, and claims survive that), never more than a second apart: each waiting report
//! holds a live claim, and it should land as soon as kanband is back. A report refused as
//! ABORTED is logged and dropped: the claim is gone (or already ended with the worker's own
//! outcome), and nothing the supervisor could send would change that.

use std::time::Duration;

use kanband_proto::pb;
use tokio::{sync::mpsc, task::JoinHandle};

use super::jeopardy::HOLDING_RECONNECT_MAX;
use crate::{
    Client, Target,
    reconnect::{self, Backoff, CALL_TIMEOUT},
};

/// One thing to tell kanband about a claim.
#[derive(Debug, Clone)]
pub(crate) enum Report {
    /// ReportExit: how the worker ended (code, signal or spawn failure) and its output tail.
    Exit {
        /// The claim.
        token: String,
        /// Its task, for logs.
        task_id: String,
        /// How it ended.
        exit: pb::report_exit_request::Exit,
        /// The end of its output (or why it could not start).
        tail: String,
    },
    /// Release: the supervisor gave the claim back without an outcome.
    Release {
        /// The claim.
        token: String,
        /// Its task, for logs.
        task_id: String,
        /// Why, for the event log.
        reason: String,
    },
}

/// Starts the reporter; it ends when every sender is dropped and the queue is empty.
pub(crate) fn start(target: Target) -> (mpsc::UnboundedSender<Report>, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, tokio::spawn(run(target, rx)))
}

async fn run(target: Target, mut reports: mpsc::UnboundedReceiver<Report>) {
    let mut client: Option<Client> = None;
    let mut backoff = Backoff::new(Duration::from_millis(100), HOLDING_RECONNECT_MAX);
    while let Some(report) = reports.recv().await {
        loop {
            let c = match &mut client {
                Some(c) => c,
                None => match reconnect::connect_with_backoff(&target, &mut backoff).await {
                    Ok(c) => client.insert(c),
                    Err(err) => {
                        // The address was checked when the supervisor was built.
                        tracing::error!(error = %err, "cannot report to kanband");
                        return;
                    }
                },
            };
            let result = send(c, &report).await;
            let (task_id, what) = match &report {
                Report::Exit { task_id, .. } => (task_id, "exit"),
                Report::Release { task_id, .. } => (task_id, "release"),
            };
            match result {
                Ok(task) => {
                    backoff.reset();
                    tracing::info!(task = %task_id, what, status = ?task.status(), "reported");
                    break;
                }
                Err(status) if reconnect::is_transient(&status) => {
                    client = None;
                    let delay = backoff.next_delay();
                    tracing::info!(task = %task_id, what, error = %status.message(), ?delay, "kanband unreachable; will report again");
                    tokio::time::sleep(delay).await;
                }
                Err(status) => {
                    match reconnect::lease_lost(&status) {
                        Some(lost) => tracing::info!(
                            task = %task_id, what, reason = %lost.reason,
                            "the claim is gone; dropping the report"
                        ),
                        None => tracing::warn!(
                            task = %task_id, what, code = ?status.code(), error = %status.message(),
                            "kanband refused the report; dropping it"
                        ),
                    }
                    break;
                }
            }
        }
    }
}

async fn send(client: &mut Client, report: &Report) -> Result<pb::Task, tonic::Status> {
    match report.clone() {
        Report::Exit {
            token, exit, tail, ..
        } => {
            let message = pb::ReportExitRequest {
                claim_token: token,
                exit: Some(exit),
                output_tail: tail,
            };
            reconnect::call(CALL_TIMEOUT, message, |r| client.leases.report_exit(r)).await
        }
        Report::Release { token, reason, .. } => {
            let message = pb::ReleaseRequest {
                claim_token: token,
                reason,
            };
            reconnect::call(CALL_TIMEOUT, message, |r| client.leases.release(r)).await
        }
    }
}
