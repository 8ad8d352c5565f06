//! The authoritative dispatcher: the queue of waiting `Acquire` calls and the pass that
//! serves it.
//!
//! Waiting `Acquire` calls queue here in arrival order. One task serves the queue whenever work
//! may have become claimable that a waiting session could use (see [`super::changes`]; a new
//! waiter always counts): in one transaction (the store's grant pass) it walks the waiters
//! oldest first and grants each the first task the dispatch rules ([`crate::domain::dispatch`])
//! allow, so waiting supervisors are served fairly, a pass costs one commit however many it
//! serves, and a task that becomes claimable reaches a waiter within one transaction.

use std::{
    collections::VecDeque,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::sync::oneshot;

use super::{changes::Changes, registry::Registry};
use crate::{
    domain::{
        Author,
        lease::{Ending, Use},
    },
    error::{Error, Result},
    store::{Finish, Store, model::Grant},
};

/// The answer to a waiter: a grant, nothing (for a waiter that does not wait), or an error.
pub type Answer = Result<Option<Grant>>;

#[derive(Debug)]
struct Waiter {
    session_id: String,
    /// Answer `None` at once instead of waiting when nothing is claimable.
    once: bool,
    reply: oneshot::Sender<Answer>,
}

/// The queue of waiting pollers.
#[derive(Debug, Default)]
pub struct Dispatcher {
    queue: Mutex<VecDeque<Waiter>>,
    /// Waiters taken out of the queue by the pass in progress.
    in_pass: AtomicUsize,
    closed: Mutex<bool>,
}

impl Dispatcher {
    /// Queues a poller; the receiver gets its answer.
    pub fn enqueue(&self, session_id: String, once: bool) -> Result<oneshot::Receiver<Answer>> {
        if *self.closed.lock().expect("dispatcher lock") {
            return Err(Error::Unavailable(
                "kanband is shutting down; acquire again later".into(),
            ));
        }
        let (reply, rx) = oneshot::channel();
        self.queue
            .lock()
            .expect("dispatcher lock")
            .push_back(Waiter {
                session_id,
                once,
                reply,
            });
        Ok(rx)
    }

    /// Pollers waiting now (a poller whose wait has passed is not counted, even before the
    /// next pass drops it).
    pub fn waiting(&self) -> usize {
        let queued = self.queue.lock().expect("dispatcher lock");
        queued.iter().filter(|w| !w.reply.is_closed()).count() + self.in_pass.load(Ordering::SeqCst)
    }

    /// Answers every waiter with UNAVAILABLE and accepts no more (shutdown).
    pub fn close(&self) {
        *self.closed.lock().expect("dispatcher lock") = true;
        for waiter in self.queue.lock().expect("dispatcher lock").drain(..) {
            let _ = waiter.reply.send(Err(Error::Unavailable(
                "kanband is shutting down; acquire again later".into(),
            )));
        }
    }

    /// Serves the queue until the future is dropped.
    pub async fn run(&self, store: &Store, registry: &Registry) {
        loop {
            let changes = registry.work_changed().await;
            if self.could_use(&changes, registry) {
                self.serve_once(store).await;
            }
        }
    }

    /// Whether a queued waiter's session could use `changes` (a session that is gone counts:
    /// the pass answers its waiter).
    fn could_use(&self, changes: &Changes, registry: &Registry) -> bool {
        let queue = self.queue.lock().expect("dispatcher lock");
        queue.iter().any(|waiter| {
            registry
                .session(&waiter.session_id)
                .is_none_or(|session| changes.useful_to(&session.profiles))
        })
    }

    /// One pass over the waiters, oldest first, granting in one transaction.
    async fn serve_once(&self, store: &Store) {
        let waiters: Vec<Waiter> = self
            .queue
            .lock()
            .expect("dispatcher lock")
            .drain(..)
            .filter(|w| !w.reply.is_closed())
            .collect();
        if waiters.is_empty() {
            return;
        }
        self.in_pass.store(waiters.len(), Ordering::SeqCst);
        let sessions = waiters.iter().map(|w| w.session_id.clone()).collect();
        let started = tokio::time::Instant::now();
        let answers = store.grant_pass(sessions).await;
        metrics::histogram!(crate::metrics::DISPATCH_PASS_DURATION)
            .record(started.elapsed().as_secs_f64());
        self.in_pass.store(0, Ordering::SeqCst);
        let answers = match answers {
            Ok(answers) => answers,
            Err(err) => {
                // The pass failed as a whole (e.g. the disk is full): every waiter hears why.
                for waiter in waiters {
                    let _ = waiter.reply.send(Err(err.clone()));
                }
                return;
            }
        };
        let mut keep = Vec::new();
        for (waiter, answer) in waiters.into_iter().zip(answers) {
            match answer {
                Ok(Some(grant)) => {
                    let waited = grant.waited_ms.max(0) as f64 / 1_000.0;
                    metrics::histogram!(crate::metrics::READY_TO_GRANTED).record(waited);
                    if let Err(Ok(Some(grant))) = waiter.reply.send(Ok(Some(grant))) {
                        // The poller gave up between the grant and the answer: hand it back
                        // without counting anything against the task.
                        let drained = Finish::End(Ending::Drained);
                        if let Err(err) = store
                            .holder_finish(
                                grant.claim.token,
                                Use::Confirm,
                                drained,
                                Author::system(),
                            )
                            .await
                        {
                            tracing::warn!(error = %err, "returning an unanswered grant");
                        }
                    }
                }
                Ok(None) if waiter.once => {
                    let _ = waiter.reply.send(Ok(None));
                }
                Ok(None) => keep.push(waiter),
                Err(err) => {
                    let _ = waiter.reply.send(Err(err));
                }
            }
        }
        let mut queue = self.queue.lock().expect("dispatcher lock");
        for waiter in keep.into_iter().rev() {
            queue.push_front(waiter);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        settings::Settings,
        store::{
            effect::{Claimable, Effect},
            model::SessionRecord,
        },
    };

    fn coder_session(registry: &Registry) -> String {
        let id = "s_0123456789abcdef".to_owned();
        registry.apply(vec![Effect::SessionOpened(SessionRecord {
            id: id.clone(),
            machine_id: "m1".into(),
            hostname: "h1".into(),
            profiles: vec!["coder".into()],
            capabilities: vec![],
            slots: 1,
            ttl_ms: 60_000,
            review_lane: false,
            owner: String::new(),
        })]);
        id
    }

    fn changed(claimable: Claimable) -> Changes {
        let mut changes = Changes::default();
        changes.add(claimable);
        changes
    }

    #[tokio::test]
    async fn a_pass_runs_only_for_changes_a_waiter_could_use() {
        let registry = Registry::new(Settings::default());
        let dispatcher = Dispatcher::default();
        let writer = changed(Claimable::Profile("writer".into()));
        assert!(
            !dispatcher.could_use(&changed(Claimable::Anything), &registry),
            "nobody waits"
        );
        let session = coder_session(&registry);
        let _waiting = dispatcher.enqueue(session, false).unwrap();
        assert!(!dispatcher.could_use(&Changes::default(), &registry));
        assert!(!dispatcher.could_use(&writer, &registry));
        assert!(dispatcher.could_use(&changed(Claimable::Profile("coder".into())), &registry));
        assert!(dispatcher.could_use(&changed(Claimable::Anything), &registry));
        let _gone = dispatcher
            .enqueue("s_fedcba9876543210".into(), false)
            .unwrap();
        assert!(
            dispatcher.could_use(&writer, &registry),
            "a waiter whose session is gone is answered by a pass"
        );
    }
}
