//! One function per command, grouped by audience.
//!
//! - `worker`: the verbs a worker or verifier runs on its own claim.
//! - `task`: task commands (also the orchestrating worker's `create`, `link`, `unblock`,
//!   `list`).
//! - `board`: board commands.
//! - `admin`: `stats`, `check` and `dispatch preview`.
//! - `attach`: `attach`, `attachments` and `attachment get|delete`.
//! - `watch`: following the event stream across reconnects.
//!
//! Every command checks its own arguments and environment before it connects, so a usage
//! error is reported as one (exit 2) even where nothing listens. Worker verbs go through
//! [`crate::retry`], so a kanband restart does not fail them.

mod admin;
mod attach;
mod board;
mod task;
mod token;
mod watch;
mod worker;

use std::time::Duration;

use kanband_gateway::{Client, Target};
use kanband_proto::pb::CreateTokenRequest;

use crate::{
    Result,
    cli::{
        AttachmentCommand, BoardCommand, ClaimArgs, Cli, Command, DispatchCommand, TaskCommand,
        TokenCommand,
    },
    output::{Format, Output},
    retry,
};

/// What every command needs: where to connect, which board, how to print.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// `--addr`, with the token to send.
    target: Target,
    /// `--board`.
    board: String,
    /// `-o` (or `--json`).
    out: Output,
    /// `--retry-for`, if given.
    retry_for: Option<Duration>,
    /// `--yes`: destructive verbs go on without asking.
    yes: bool,
    /// `--actor`, if given.
    actor: Option<String>,
}

impl Ctx {
    /// Connects to kanband; a malformed address is a usage error, no answer is "unavailable".
    async fn connect(&self) -> Result<Client> {
        Ok(Client::connect(&self.target).await?)
    }

    /// Asks before a destructive verb (see [`crate::confirm`]); an error if not confirmed.
    fn confirm(&self, what: &str) -> Result<()> {
        crate::confirm::confirm(what, self.yes)
    }

    /// The note sent as the actor of what this command changes (see [`identity`]).
    fn actor(&self) -> String {
        identity(self.actor.as_deref())
    }

    /// `explicit` (a command's own `--author`) if given, else [`Ctx::actor`].
    fn actor_or(&self, explicit: Option<&str>) -> String {
        identity(explicit.filter(|v| !v.is_empty()).or(self.actor.as_deref()))
    }

    /// How long a worker verb on `claim` retries while kanband is unavailable.
    fn retry_bound(&self, claim: &ClaimArgs) -> Duration {
        retry::budget(self.retry_for, claim.lease_ttl_ms)
    }
}

/// The note sent as the actor, for comments, `created_by` and the event log: the explicit value
/// (`--actor`), else the profile a supervisor runs this worker as (`KANBAN_PROFILE`), else the
/// login name (`USER`). kanband records it beside the identity it authenticated (the token's
/// name, or `admin` on its own Unix socket), never instead of it.
fn identity(explicit: Option<&str>) -> String {
    let from_env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    explicit
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .or_else(|| from_env("KANBAN_PROFILE"))
        .or_else(|| from_env("USER"))
        .unwrap_or_else(|| "kanbanctl".to_owned())
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    // One spelling from here on (`unix:/path` or `http://host:port`), whichever form was typed.
    let addr = cli.connection.address().map_err(crate::Error::Usage)?;
    // Without a token, a worker over TCP proves who it is with its claim token; over the
    // Unix socket kanband's own user needs none (and another user's claim token would make it
    // only that claim's worker anyway).
    let token = cli
        .connection
        .token()
        .map_err(crate::Error::Usage)?
        .or_else(|| {
            std::env::var("KANBAN_CLAIM_TOKEN")
                .ok()
                .filter(|t| !t.is_empty() && !addr.starts_with("unix:"))
        });
    let ctx = Ctx {
        target: Target::new(addr, token).with_tls((&cli.connection).into()),
        board: cli.board,
        out: Output {
            format: if cli.json { Format::Json } else { cli.output },
        },
        retry_for: cli.retry_for,
        yes: cli.yes,
        actor: cli.actor,
    };
    match cli.command {
        Command::Show(args) => worker::show(&ctx, args).await,
        Command::Complete(args) => worker::complete(&ctx, args).await,
        Command::Block(args) => worker::block(&ctx, args).await,
        Command::Heartbeat(args) => worker::heartbeat(&ctx, args).await,
        Command::Comment(args) => {
            let id = args.claim.task_id()?.to_owned();
            let bound = ctx.retry_bound(&args.claim);
            // A worker's comment carries its claim token, so kanband fences it.
            let token = args.claim.claim_token.clone().unwrap_or_default();
            task::comment(&ctx, id, args.body, args.author, token, bound).await
        }
        Command::RequestReview(args) => worker::request_review(&ctx, args).await,
        Command::RequestChanges(args) => worker::request_changes(&ctx, args).await,
        Command::Create(args) => task::create(&ctx, args).await,
        Command::Link(args) => task::link(&ctx, args).await,
        Command::Unblock(args) => task::unblock(&ctx, args.id).await,
        Command::List(args) => task::list(&ctx, args).await,
        Command::Attach(args) => attach::attach(&ctx, args).await,
        Command::Attachments(args) => attach::list(&ctx, args.id).await,
        Command::Attachment(AttachmentCommand::Get { id, output_file }) => {
            attach::get(&ctx, id, output_file).await
        }
        Command::Attachment(AttachmentCommand::Delete { id }) => attach::delete(&ctx, id).await,
        Command::Board(command) => match command {
            BoardCommand::Create {
                slug,
                name,
                default_assignee,
            } => board::create(&ctx, slug, name, default_assignee).await,
            BoardCommand::List { all } => board::list(&ctx, all).await,
            BoardCommand::Show { slug } => board::show(&ctx, slug).await,
            BoardCommand::Archive { slug } => board::archive(&ctx, slug).await,
            BoardCommand::Reset { slug } => board::reset(&ctx, slug).await,
        },
        Command::Task(command) => match command {
            TaskCommand::Create(args) => task::create(&ctx, args).await,
            TaskCommand::Show(args) => task::show(&ctx, args.id).await,
            TaskCommand::List(args) => task::list(&ctx, args).await,
            TaskCommand::Assign { id, profile } => task::assign(&ctx, id, profile).await,
            TaskCommand::Promote(args) => task::promote(&ctx, args.id).await,
            TaskCommand::Archive { id, reason } => task::archive(&ctx, id, reason).await,
            TaskCommand::Reclaim { id, grace, reason } => {
                task::reclaim(&ctx, id, grace, reason).await
            }
            TaskCommand::Schedule { id, delay } => task::schedule(&ctx, id, delay).await,
            TaskCommand::Block { id, reason, kind } => task::block(&ctx, id, reason, kind).await,
            TaskCommand::Unblock(args) => task::unblock(&ctx, args.id).await,
            TaskCommand::Comment { id, body, author } => {
                task::comment(&ctx, id, body, author, String::new(), Duration::ZERO).await
            }
        },
        Command::Watch(args) => watch::watch(&ctx, args).await,
        Command::Stats => admin::stats(&ctx).await,
        Command::Health { service } => admin::health(&ctx, service).await,
        Command::Check => admin::check(&ctx).await,
        Command::Dispatch(DispatchCommand::Preview(args)) => admin::preview(&ctx, args).await,
        Command::Docs(docs) => {
            let command = <Cli as clap::CommandFactory>::command();
            kanband_cli::docs::generate(&docs, command, &mut std::io::stdout())
                .map_err(|err| crate::Error::Output(std::io::Error::other(err.to_string())))
        }
        Command::Token(command) => match command {
            TokenCommand::Create {
                name,
                role,
                machine_id,
                profiles,
                expires_in,
            } => {
                let request = CreateTokenRequest {
                    name,
                    role,
                    machine_id: machine_id.unwrap_or_default(),
                    profiles,
                    expires_in_ms: expires_in.map_or(0, |d| {
                        // Out of range either way: kanband answers with the bounds.
                        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
                    }),
                };
                token::create(&ctx, request).await
            }
            TokenCommand::List => token::list(&ctx).await,
            TokenCommand::Revoke { id } => token::revoke(&ctx, id).await,
        },
    }
}
