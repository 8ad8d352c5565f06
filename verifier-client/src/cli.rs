//! The command line, as clap-derive types.
//!
//! Two audiences share one binary. Worker and verifier subprocesses use the top-level verbs
//! (`show`, `complete`, `block`, ...), which take their task and claim token from the
//! environment the supervisor sets, so a prompt can say "run `kanbanctl complete --summary ...`"
//! without passing secrets on the command line. People and scripts use the `board`, `task`,
//! `watch`, `stats` and `dispatch` groups, which name tasks explicitly.

use clap::{Args, Parser, Subcommand};
use kanband_proto::pb::{BlockKind, TaskStatus};

use std::time::Duration;

use crate::{
    names::{parse_block_kind, parse_status},
    output::Format,
};

/// The board every kanband has.
pub const DEFAULT_BOARD: &str = "default";

/// The opening of `kanbanctl --help`; the exit-code table ([`crate::exit::HELP`]) follows it.
const INTRO: &str = "\
kanbanctl talks to kanband, the kanban coordination service.

Workers and verifiers run the top-level verbs (show, complete, block, heartbeat, comment,
request-review, request-changes, create, link, unblock, list, attach) inside the environment
their supervisor sets: KANBAN_TASK, KANBAN_CLAIM_TOKEN, KANBAN_RUN_ID, KANBAN_EPOCH,
KANBAN_BOARD, KANBAN_ADDR; the claim token is also their credential. Operators use board, task,
attachments, attachment, watch, stats and dispatch with a token (--token, KANBAN_TOKEN or
--token-file; none is needed over kanband's Unix socket as kanband's own user); admins manage
tokens with `token`.

-o table (the default) prints a header row and one row per resource; -o wide adds columns.
-o json (or --json) prints the response message as proto3 JSON on one line (watch: one event
per line): the same shape grpcurl prints for the same call, generated from the .proto files
(camelCase names, enums by proto name such as TASK_STATUS_READY, 64-bit numbers as strings,
fields at their default value left out). Errors go to stderr as `kanbanctl: <message>`.

While kanband is unreachable, starting or draining (a restart, an upgrade), the worker verbs
(show, heartbeat, complete, block, comment, request-review, request-changes) try again with
backoff for --retry-for (default: the claim's lease time, KANBAN_LEASE_TTL_MS, else 60s), then
exit 5. A comment is sent again only when it certainly did not arrive. Operator commands exit 5
at once.";

/// `kanbanctl`: the command line of kanband.
#[derive(Debug, Parser)]
#[command(
    name = "kanbanctl",
    version,
    about = "Command line of kanband: worker verbs and operator commands",
    long_about = format!("{INTRO}\n\n{}", crate::exit::HELP),
)]
pub struct Cli {
    /// Where kanband is and how to authenticate (without a token over TCP, a worker sends
    /// its claim token, KANBAN_CLAIM_TOKEN).
    #[command(flatten)]
    pub connection: kanband_cli::connection::ConnectionArgs,
    /// Board to work on (the supervisor sets KANBAN_BOARD to the task's board).
    #[arg(long, env = "KANBAN_BOARD", default_value = DEFAULT_BOARD, global = true)]
    pub board: String,
    /// How to print results: table (header row, one row per resource), wide (more columns) or
    /// json (the response message as proto3 JSON, as grpcurl prints it; one event per line for
    /// watch).
    #[arg(
        short = 'o',
        long = "output",
        env = "KANBAN_OUTPUT",
        value_enum,
        default_value_t = Format::Table,
        global = true
    )]
    pub output: Format,
    /// Do a destructive verb (board reset, board archive, token revoke, attachment delete)
    /// without asking; needed when there is no terminal to ask on.
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// The same as `-o json` (in the environment: 1, true, yes or 0, false, no).
    #[arg(long, env = "KANBAN_JSON", global = true, action = clap::ArgAction::SetTrue,
          value_parser = kanband_cli::input::boolean)]
    pub json: bool,
    /// How long worker verbs keep trying while kanband is unavailable (250ms, 30s, 2m, 1h;
    /// bare seconds; 0: not at all) [default: the claim's lease time, else 60s]
    #[arg(long, env = "KANBAN_RETRY_FOR", value_name = "DURATION",
          value_parser = kanband_cli::input::duration, global = true)]
    pub retry_for: Option<Duration>,
    /// A free-form note of who a change is made for ("on behalf of"), recorded as the event's
    /// actor beside the identity kanband authenticated (your token's name and role, or `admin`
    /// on kanband's own Unix socket), never instead of it [default: KANBAN_PROFILE, else USER].
    #[arg(long, env = "KANBAN_ACTOR", value_name = "NAME", global = true)]
    pub actor: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the current task (KANBAN_TASK), or the task ID.
    Show(ShowArgs),
    /// Finish the current task: it becomes done.
    Complete(CompleteArgs),
    /// Stop work on the current task because something is in the way.
    Block(HolderBlockArgs),
    /// Record progress on the current task (keeps the stale-progress check quiet).
    Heartbeat(HeartbeatArgs),
    /// Comment on the current task.
    Comment(CommentArgs),
    /// Hand the current task to the review lane.
    RequestReview(RequestReviewArgs),
    /// As a reviewer, send the current task back to its worker.
    RequestChanges(RequestChangesArgs),
    /// Create a task on the board (prints its id).
    Create(CreateArgs),
    /// Make PARENT a parent of CHILD: CHILD waits until PARENT is done.
    Link(LinkArgs),
    /// Unblock a blocked task.
    Unblock(IdArg),
    /// List the board's tasks.
    List(ListArgs),
    /// Attach a file to a task (prints the attachment). A worker attaching to its own task
    /// (KANBAN_TASK) sends its claim token, so kanband fences the upload.
    Attach(AttachArgs),
    /// List a task's attachments.
    Attachments(IdArg),
    /// Download or delete an attachment.
    #[command(subcommand)]
    Attachment(AttachmentCommand),
    /// Operator commands on boards.
    #[command(subcommand)]
    Board(BoardCommand),
    /// Operator commands on tasks.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Follow the event stream from the newest event on (--from-start, --after ID: from
    /// earlier), reconnecting without gaps or duplicates (Ctrl-C ends it).
    Watch(WatchArgs),
    /// Counts and latencies of the running service.
    Stats,
    /// Ask the gRPC health service (exit 0 SERVING; 5 NOT_SERVING or unreachable): the
    /// container HEALTHCHECK and probes use it.
    Health {
        /// The service to ask about ("" is kanband as a whole; kanban.v1.Leases turns
        /// NOT_SERVING when kanband is too slow to keep its lease promises).
        #[arg(long, default_value = "")]
        service: String,
    },
    /// Verify the service's invariants on the live service (exit 1 if any is broken): no task
    /// running without a live claim, no two live claims on a task, epochs only grow, every
    /// ended run has one outcome, the event log has no gaps, memory agrees with the database.
    Check,
    /// What the dispatcher would do.
    #[command(subcommand)]
    Dispatch(DispatchCommand),
    /// `completions SHELL` and `man`.
    #[command(flatten)]
    Docs(kanband_cli::docs::Docs),
    /// Bearer tokens (admin): create, list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `--grace`: a duration in whole seconds that fits the request's field.
fn grace_seconds(text: &str) -> Result<u32, String> {
    let seconds = kanband_cli::input::seconds(text)?;
    u32::try_from(seconds).map_err(|_| format!("{text:?} is too long a grace"))
}

/// `--expires-in`: a token's lifetime. Zero is refused here, since kanband reads a lifetime of
/// 0 as "until revoked".
fn lifetime(text: &str) -> Result<Duration, String> {
    let lifetime = kanband_cli::input::duration(text)?;
    if lifetime.is_zero() {
        return Err(
            "a token's lifetime must be more than 0; leave --expires-in out for a \
                    token that works until it is revoked"
                .into(),
        );
    }
    Ok(lifetime)
}

/// `token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print its secret, once (kanband keeps only its hash).
    Create {
        /// Its name, recorded as the actor of what its holder does.
        name: String,
        /// admin, operator, supervisor or reader.
        #[arg(long)]
        role: String,
        /// Supervisor tokens: the machine id whose sessions it may open.
        #[arg(long = "machine-id")]
        machine_id: Option<String>,
        /// Supervisor tokens: a profile it may serve (repeatable; none means any).
        #[arg(long = "profile", value_name = "P")]
        profiles: Vec<String>,
        /// Make it stop working by itself this long from now (1s to 3650d; `90d`, `12h`);
        /// without it the token works until it is revoked.
        #[arg(long = "expires-in", value_name = "DURATION", value_parser = lifetime)]
        expires_in: Option<Duration>,
    },
    /// Every token, live and revoked, without secrets.
    List,
    /// Revoke a token by id or name: it stops working at once, open streams included (an
    /// expired token may be revoked too, which frees its name).
    Revoke {
        /// The token's id (k_...) or name.
        id: String,
    },
}

/// The claim a worker holds, from the environment its supervisor sets. Flags override the
/// environment for testing by hand; the token is best left in the environment, where `ps`
/// does not show it.
#[derive(Debug, Clone, Default, Args)]
pub struct ClaimArgs {
    /// Task this worker runs.
    #[arg(long = "task", env = "KANBAN_TASK", value_name = "ID")]
    pub task: Option<String>,
    /// Claim token every holder call carries.
    #[arg(
        long,
        env = "KANBAN_CLAIM_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub claim_token: Option<String>,
    /// Run id of this attempt (shown by `show`).
    #[arg(long, env = "KANBAN_RUN_ID", value_name = "ID")]
    pub run_id: Option<String>,
    /// Fencing epoch of the claim (shown by `show`, to compare with the task's).
    #[arg(long, env = "KANBAN_EPOCH", value_name = "N")]
    pub epoch: Option<u64>,
    /// Lease time of the claim in milliseconds: how long --retry-for is by default.
    #[arg(long, env = "KANBAN_LEASE_TTL_MS", value_name = "MS")]
    pub lease_ttl_ms: Option<u64>,
}

/// `show [ID]`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Task to show; default: the current task.
    pub id: Option<String>,
    /// The current claim.
    #[command(flatten)]
    pub claim: ClaimArgs,
}

/// `complete`.
#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// What was done, in a few lines.
    #[arg(long)]
    pub summary: String,
    /// The full result; `-` reads it from standard input.
    #[arg(long, default_value = "")]
    pub result: String,
    /// The current claim.
    #[command(flatten)]
    pub claim: ClaimArgs,
}

/// `block` by the holder.
#[derive(Debug, Args)]
pub struct HolderBlockArgs {
    /// Why the task cannot go on.
    #[arg(long)]
    pub reason: String,
    /// dependency, needs_input, capability, transient or none.
    #[arg(long, value_parser = parse_block_kind, default_value = "none")]
    pub kind: BlockKind,
    /// The current claim.
    #[command(flatten)]
    pub claim: ClaimArgs,
}

/// `heartbeat`.
#[derive(Debug, Args)]
pub struct HeartbeatArgs {
    /// What the worker is doing now.
    #[arg(long, default_value = "")]
    pub note: String,
    /// The current claim.
    #[command(flatten)]
    pub claim: ClaimArgs,
}

/// `comment` on the current task.
#[derive(Debug, Args)]
pub struct CommentArgs {
    /// The comment.
    #[arg(long)]
    pub body: String,
    /// Who writes it; default: KANBAN_PROFILE, else USER.
    #[arg(long)]
    pub author: Option<String>,
    /// The current claim.
    #[command(flatten)]
    pub claim: ClaimArgs,
}

/// `request-review`.
#[derive(Debug, Args)]
pub struct RequestReviewArgs {
    /// What the reviewer should look at.
    #[arg(long, default_value = "")]
    pub summary: String,
    /// The current claim.
    #[command(flatten)]
    pub claim: ClaimArgs,
}

/// `request-changes`.
#[derive(Debug, Args)]
pub struct RequestChangesArgs {
    /// What must change.
    #[arg(long)]
    pub reason: String,
    /// The current claim.
    #[command(flatten)]
    pub claim: ClaimArgs,
}

/// `create` and `task create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// One line saying what to do.
    #[arg(long)]
    pub title: String,
    /// Profile that may run it; default: the board's default assignee.
    #[arg(long)]
    pub assignee: Option<String>,
    /// Longer description.
    #[arg(long, default_value = "")]
    pub body: String,
    /// Higher runs first (-1000 to 1000).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i32,
    /// A task that must finish first (repeatable).
    #[arg(long = "parent", value_name = "ID")]
    pub parents: Vec<String>,
    /// Returns the existing task instead of creating a second one with the same key.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// A capability a supervisor must offer to run it (repeatable).
    #[arg(long = "capability", value_name = "C")]
    pub capabilities: Vec<String>,
}

/// `link PARENT CHILD`.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// The task that must finish first.
    pub parent: String,
    /// The task that waits for it.
    pub child: String,
}

/// A command that names one task.
#[derive(Debug, Args)]
pub struct IdArg {
    /// Task id (`t_...`).
    pub id: String,
}

/// `list` and `task list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only tasks in this status (repeatable); default: all but archived.
    #[arg(long = "status", value_name = "S", value_parser = parse_status)]
    pub statuses: Vec<TaskStatus>,
    /// Only tasks assigned to this profile.
    #[arg(long)]
    pub assignee: Option<String>,
}

/// `attach TASK FILE`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Task to attach to.
    pub task: String,
    /// File to upload; `-` reads standard input (then --name is required).
    pub file: std::path::PathBuf,
    /// Name to store it under; default: FILE's file name.
    #[arg(long)]
    pub name: Option<String>,
    /// Media type (`type/subtype`); default: guessed from the name's extension, else
    /// application/octet-stream.
    #[arg(long)]
    pub media_type: Option<String>,
    /// Claim token on TASK, sent so the upload is fenced (a worker attaching to its own
    /// task); taken from KANBAN_CLAIM_TOKEN only when TASK is the current task (KANBAN_TASK).
    #[arg(
        long,
        env = "KANBAN_CLAIM_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub claim_token: Option<String>,
}

/// `attachment ...`.
#[derive(Debug, Subcommand)]
pub enum AttachmentCommand {
    /// Download an attachment (its SHA-256 is checked): to FILE with -O, else to stdout.
    Get {
        /// Attachment id (`a_...`).
        id: String,
        /// Where to write it; the file is replaced only once the whole download checks out.
        #[arg(short = 'O', long, value_name = "FILE")]
        output_file: Option<std::path::PathBuf>,
    },
    /// Delete an attachment.
    Delete {
        /// Attachment id (`a_...`).
        id: String,
    },
}

/// `board ...`.
#[derive(Debug, Subcommand)]
pub enum BoardCommand {
    /// Create a board; one that already exists is printed as it is (a note on stderr says so).
    Create {
        /// Slug of the new board (`^[a-z0-9][a-z0-9_-]{0,63}$`).
        slug: String,
        /// Human-readable name; default: the slug.
        #[arg(long)]
        name: Option<String>,
        /// Profile that unassigned tasks are dispatched to.
        #[arg(long)]
        default_assignee: Option<String>,
    },
    /// List boards.
    List {
        /// Also list archived boards.
        #[arg(long)]
        all: bool,
    },
    /// Show one board.
    Show {
        /// Slug of the board.
        slug: String,
    },
    /// Archive a board and every task on it.
    Archive {
        /// Slug of the board.
        slug: String,
    },
    /// Delete every task of a board (history is kept).
    Reset {
        /// Slug of the board.
        slug: String,
    },
}

/// `task ...`.
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Create a task (prints its id).
    Create(CreateArgs),
    /// Show a task with its parents, children, runs, comments and recent events.
    Show(IdArg),
    /// List tasks (every page).
    List(ListArgs),
    /// Set the profile that may run a task ("" unassigns).
    Assign {
        /// Task id.
        id: String,
        /// Profile.
        profile: String,
    },
    /// Promote a task to ready.
    Promote(IdArg),
    /// Archive a task.
    Archive {
        /// Task id.
        id: String,
        /// Why; recorded in the task's `archived` event.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Take a running task back from its holder.
    Reclaim {
        /// Task id.
        id: String,
        /// How long the holder gets to stop on its own first (seconds, or 30s, 5m).
        #[arg(long, default_value = "0", value_parser = grace_seconds)]
        grace: u32,
        /// Why; recorded in the task's `revoked` event (`cancel_requested` with a grace).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Park a task, optionally until a delay has passed.
    Schedule {
        /// Task id.
        id: String,
        /// How long until it becomes ready again (seconds, or 90s, 5m, 1h); 0 parks it until
        /// promoted.
        #[arg(long, default_value = "0", value_parser = kanband_cli::input::seconds)]
        delay: u64,
    },
    /// Block a task that is not running.
    Block {
        /// Task id.
        id: String,
        /// Why; recorded in the task and its `blocked` event.
        #[arg(long)]
        reason: String,
        /// dependency, needs_input, capability, transient or none.
        #[arg(long, value_parser = parse_block_kind, default_value = "none")]
        kind: BlockKind,
    },
    /// Unblock a blocked task.
    Unblock(IdArg),
    /// Comment on a task.
    Comment {
        /// Task id.
        id: String,
        /// The comment.
        #[arg(long)]
        body: String,
        /// Who writes it; default: KANBAN_PROFILE, else USER.
        #[arg(long)]
        author: Option<String>,
    },
}

/// `watch`: from now on, unless told where to start.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Start after this event id instead of at the newest event (0: the whole history).
    #[arg(long, value_name = "ID", conflicts_with = "from_start")]
    pub after: Option<u64>,
    /// Start at the beginning of the history instead of at the newest event.
    #[arg(long)]
    pub from_start: bool,
    /// Only events of this task.
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
    /// Only events of this kind, such as `completed` (repeatable).
    #[arg(long = "kind", value_name = "K")]
    pub kinds: Vec<String>,
    /// Only events of tasks assigned to this profile.
    #[arg(long)]
    pub assignee: Option<String>,
    /// Events of every board, not only --board (also when --board is given empty).
    #[arg(long)]
    pub all_boards: bool,
}

/// `dispatch ...`.
#[derive(Debug, Subcommand)]
pub enum DispatchCommand {
    /// What would be granted to a session like this, and why every other task would not.
    Preview(PreviewArgs),
}

/// `dispatch preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// A profile the session runs (repeatable).
    #[arg(long = "profile", value_name = "P")]
    pub profiles: Vec<String>,
    /// A capability the session offers (repeatable).
    #[arg(long = "capability", value_name = "C")]
    pub capabilities: Vec<String>,
    /// Machine id of the session.
    #[arg(long)]
    pub machine: Option<String>,
    /// The session also takes review-lane tasks.
    #[arg(long)]
    pub review: bool,
    /// Preview for an open session instead (the flags above are then ignored).
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Tasks of every board, not only --board.
    #[arg(long)]
    pub all_boards: bool,
}
