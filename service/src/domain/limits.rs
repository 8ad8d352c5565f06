//! Every documented limit: sizes of free-text fields, page sizes, stream caps, lease bounds and
//! the failure budgets of the lease rules. The .proto comments and the README quote these
//! numbers; change them together.

/// Title of a task, in bytes.
pub const TITLE_MAX: usize = 500;
/// Body of a task, in bytes.
pub const BODY_MAX: usize = 64 * 1024;
/// Body of a comment, in bytes.
pub const COMMENT_MAX: usize = 64 * 1024;
/// Result recorded on completion, in bytes.
pub const RESULT_MAX: usize = 256 * 1024;
/// Summary, block reason, error text and progress notes, in bytes.
pub const SUMMARY_MAX: usize = 4096;
/// Board display name, in bytes.
pub const DISPLAY_NAME_MAX: usize = 200;
/// Actor, author, created_by and tenant names, in bytes.
pub const NAME_MAX: usize = 128;
/// Idempotency key, in bytes.
pub const IDEMPOTENCY_KEY_MAX: usize = 256;
/// Workspace path, in bytes.
pub const PATH_MAX: usize = 4096;
/// Workspace branch and each worker option string, in bytes.
pub const OPTION_MAX: usize = 256;
/// Entries in a board's metadata, capabilities of a task, skills, and parents at creation.
pub const LIST_MAX: usize = 64;
/// Metadata key, in bytes.
pub const METADATA_KEY_MAX: usize = 128;
/// Metadata value, in bytes.
pub const METADATA_VALUE_MAX: usize = 4096;
/// Absolute value of a task's priority.
pub const PRIORITY_MAX: i32 = 1000;
/// Failures in a row before giving up, as a setting.
pub const MAX_RETRIES_MAX: u32 = 100;
/// Maximum runtime of a task, in seconds (a week).
pub const MAX_RUNTIME_MAX: u32 = 7 * 24 * 3600;
/// Longest schedule delay, in seconds (a year).
pub const SCHEDULE_DELAY_MAX: u64 = 365 * 24 * 3600;
/// Shortest lifetime of a bearer token made to expire, in ms (a second).
pub const TOKEN_LIFETIME_MIN_MS: u64 = 1000;
/// Longest lifetime of a bearer token made to expire, in ms (ten years).
pub const TOKEN_LIFETIME_MAX_MS: u64 = 10 * 365 * 24 * 3600 * 1000;
/// Longest grace an operator may give a holder to stop before its claim is revoked, in seconds.
pub const RECLAIM_GRACE_MAX: u32 = 3600;
/// Page size when the request says 0.
pub const PAGE_SIZE_DEFAULT: u32 = 100;
/// Largest page size.
pub const PAGE_SIZE_MAX: u32 = 1000;
/// Recent events in a task's detail when the request says 0.
pub const RECENT_EVENTS_DEFAULT: u32 = 20;
/// Comments and runs included in a task's detail (the most recent).
pub const DETAIL_ROWS_MAX: u32 = 1000;
/// `Watch` streams open at once.
pub const WATCHERS_MAX: usize = 1024;
/// `Watch` streams one connection may hold, so one client cannot take every place.
pub const WATCHERS_PER_CONNECTION: usize = 64;
/// Notification-delivery streams open at once, a pool apart from the watchers'.
pub const DELIVERERS_MAX: usize = 256;
/// Notification-delivery streams one connection may hold.
pub const DELIVERERS_PER_CONNECTION: usize = 16;
/// How long a stream may leave its buffer full (its client not reading) before it is cut off.
pub const WATCHER_STALL: std::time::Duration = std::time::Duration::from_secs(30);
/// A socket that sends nothing for this long after it is accepted is closed.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// A connection with no request or stream open for this long is closed.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// How often kanband pings each connection (HTTP/2 keep-alive) to find vanished peers.
pub const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a keep-alive ping may go unanswered before the connection is closed.
pub const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
/// Largest attachment when `--attachment-max-bytes` is not given, in bytes (25 MiB, Hermes
/// Agent's own cap, so every file a Hermes board holds fits).
pub const ATTACHMENT_MAX_DEFAULT: u64 = 25 * 1024 * 1024;
/// Attachment file name, in bytes (most filesystems' limit on a name).
pub const ATTACHMENT_NAME_MAX: usize = 255;
/// Attachment media type, in bytes (RFC 6838's limit on `type/subtype`).
pub const MEDIA_TYPE_MAX: usize = 127;
/// Bytes of a file in one `Attachments.Download` message.
pub const DOWNLOAD_CHUNK: usize = 64 * 1024;
/// Largest encoded gRPC message the server accepts, in bytes.
pub const MESSAGE_MAX: usize = 4 * 1024 * 1024;

/// Shortest lease a session may ask for, in milliseconds.
pub const TTL_MIN_MS: u32 = 1_000;
/// Longest lease a session may ask for, in milliseconds.
pub const TTL_MAX_MS: u32 = 300_000;
/// Most slots a session may declare.
pub const SLOTS_MAX: u32 = 256;
/// Longest `Acquire` wait, in milliseconds.
pub const WAIT_MAX_MS: i64 = 300_000;
/// Failures in a row before a task gives up, when neither task nor board sets a limit.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// Exits with code 0 but no outcome, in a row, before the task is blocked.
pub const PROTOCOL_VIOLATION_LIMIT: u32 = 3;
/// Claims in a row that ended without any outcome before the task is blocked.
pub const OUTCOMELESS_LIMIT: u32 = 5;
/// How long a rate-limited task waits before it can be claimed again.
pub const RATE_LIMIT_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(300);
/// Same-kind blocks in a row at which a block sends the task to triage instead of blocked.
pub const BLOCK_LOOP_LIMIT: u32 = 2;
