//! Board commands. These name their board as an argument; `--board` does not apply.

use kanband_proto::pb::{
    ArchiveBoardRequest, Board, CreateBoardRequest, GetBoardRequest, ListBoardsRequest,
    ListBoardsResponse, ResetBoardRequest,
};

use tonic::Code;

use super::Ctx;
use crate::{Result, output::note, render};

/// Prints a board as a one-row table, or as JSON.
fn print_board(ctx: &Ctx, board: &Board) -> Result<()> {
    ctx.out.message(board, |wide| {
        render::boards(std::slice::from_ref(board), wide)
    })?;
    Ok(())
}

/// `board create SLUG [--name N] [--default-assignee P]`: a board that already exists (and is
/// not archived) is printed as it is, with a note on stderr that it already existed, so a
/// set-up script can run again. kanband answers ALREADY_EXISTS from inside the creating
/// transaction, so "it existed" is decided there, never by a look before or after.
pub(crate) async fn create(
    ctx: &Ctx,
    slug: String,
    name: Option<String>,
    default_assignee: Option<String>,
) -> Result<()> {
    let mut client = ctx.connect().await?;
    let created = client
        .boards
        .create_board(CreateBoardRequest {
            slug: slug.clone(),
            display_name: name.unwrap_or_default(),
            default_assignee: default_assignee.unwrap_or_default(),
            ..CreateBoardRequest::default()
        })
        .await;
    let board = match created {
        Ok(board) => board.into_inner(),
        Err(refused) if refused.code() == Code::AlreadyExists => {
            let board = client
                .boards
                .get_board(GetBoardRequest { slug })
                .await?
                .into_inner();
            if board.archived {
                // An archived board keeps its slug but takes no tasks: not what was asked for.
                return Err(refused.into());
            }
            note(&format!(
                "board {} already existed; nothing was created or changed",
                board.slug
            ));
            board
        }
        Err(refused) => return Err(refused.into()),
    };
    print_board(ctx, &board)
}

/// `board list [--all]`.
pub(crate) async fn list(ctx: &Ctx, include_archived: bool) -> Result<()> {
    let mut client = ctx.connect().await?;
    let listed: ListBoardsResponse = client
        .boards
        .list_boards(ListBoardsRequest { include_archived })
        .await?
        .into_inner();
    ctx.out
        .message(&listed, |wide| render::boards(&listed.boards, wide))?;
    Ok(())
}

/// `board show SLUG`.
pub(crate) async fn show(ctx: &Ctx, slug: String) -> Result<()> {
    let mut client = ctx.connect().await?;
    let board = client
        .boards
        .get_board(GetBoardRequest { slug })
        .await?
        .into_inner();
    print_board(ctx, &board)
}

/// `board archive SLUG`: the board and every task on it.
pub(crate) async fn archive(ctx: &Ctx, slug: String) -> Result<()> {
    ctx.confirm(&format!("archive board {slug} and every task on it"))?;
    let mut client = ctx.connect().await?;
    let board = client
        .boards
        .archive_board(ArchiveBoardRequest {
            slug,
            actor: ctx.actor(),
        })
        .await?
        .into_inner();
    print_board(ctx, &board)
}

/// `board reset SLUG`: deletes every task in one transaction inside kanband (never a file
/// operation), leaving the board and its history.
pub(crate) async fn reset(ctx: &Ctx, slug: String) -> Result<()> {
    ctx.confirm(&format!("reset board {slug}: delete every task on it"))?;
    let mut client = ctx.connect().await?;
    let reset = client
        .boards
        .reset_board(ResetBoardRequest {
            slug: slug.clone(),
            actor: ctx.actor(),
        })
        .await?
        .into_inner();
    let text = format!(
        "{slug}: {} tasks removed (event #{})",
        reset.tasks_removed, reset.event_id
    );
    ctx.out.message(&reset, |_| text)?;
    Ok(())
}
