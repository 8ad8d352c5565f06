//! What the store's unit tests share: a store on a fresh data directory, with lease state
//! that lets every session take one more claim.

use std::sync::Arc;

use super::{
    Store,
    effect::{Effect, LiveLeases},
};
use crate::domain::dispatch::Load;

/// Lease state that lets every session take one more claim and has nothing live.
#[derive(Debug)]
struct OneFreeSlot;

impl LiveLeases for OneFreeSlot {
    fn apply(&self, _: Vec<Effect>) {}
    fn publish_event_id(&self, _: i64) {}
    fn claim_overdue(&self, _: &str) -> bool {
        false
    }
    fn session_overdue(&self, _: &str) -> bool {
        false
    }
    fn free_slots(&self, _: &str) -> u32 {
        1
    }
    fn load(&self) -> Load {
        Load::default()
    }
    fn claim_tokens(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A store on a fresh data directory where every session has one free slot; the directory
/// lives as long as the returned guard.
pub(super) async fn open_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("data"),
        Arc::new(OneFreeSlot),
        crate::domain::limits::ATTACHMENT_MAX_DEFAULT,
    )
    .await
    .unwrap();
    (dir, store)
}
