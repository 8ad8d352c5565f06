//! The service's tunable settings (the `kanband` binary fills them from its flags).

use std::{collections::HashMap, path::PathBuf, time::Duration};

use crate::{domain::limits, net::Timeouts, streams::StreamCaps};

/// Settings of a running service.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Revoke a claim whose holder sent no progress heartbeat for this long; `None` disables.
    pub stale_progress: Option<Duration>,
    /// Running caps per profile.
    pub profile_caps: HashMap<String, u32>,
    /// How long a watch or delivery stream may leave its buffer full (its client not reading)
    /// before it is cut off with RESOURCE_EXHAUSTED.
    pub watcher_stall: Duration,
    /// Caps on open watch and delivery streams, in all and per connection.
    pub streams: StreamCaps,
    /// When connections that do nothing are closed, and the HTTP/2 keep-alive.
    pub connections: Timeouts,
    /// Where `Admin.Backup` writes; `None`: `backups` in the data directory.
    pub backup_dir: Option<PathBuf>,
    /// Largest attachment accepted, in bytes.
    pub attachment_max_bytes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            stale_progress: None,
            profile_caps: HashMap::new(),
            watcher_stall: limits::WATCHER_STALL,
            streams: StreamCaps::default(),
            connections: Timeouts::default(),
            backup_dir: None,
            attachment_max_bytes: limits::ATTACHMENT_MAX_DEFAULT,
        }
    }
}
