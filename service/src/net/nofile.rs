//! The descriptor limit: every connection is a descriptor, and systemd's default soft limit
//! (1024) is far below what one kanband may be asked to hold, while the hard limit is usually
//! much higher and ours to take.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and logs both. A failure is logged and
/// kanband goes on with the limit it has (the accept loop backs off when it runs out).
pub fn raise_descriptor_limit() {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the descriptor limit");
            return;
        }
    };
    if soft >= hard {
        tracing::info!(soft, hard, "descriptor limit");
        return;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => tracing::info!(
            was = soft,
            soft = hard,
            hard,
            "raised the soft descriptor limit to the hard limit"
        ),
        Err(err) => tracing::warn!(
            soft,
            hard,
            error = %err,
            "cannot raise the soft descriptor limit; serving with it as it is"
        ),
    }
}
