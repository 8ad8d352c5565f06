//! `kanban.v1.Boards`.

use std::sync::Arc;

use kanband_proto::pb::{self, boards_server::Boards};
use tonic::{Request, Response, Status};

use super::requests;
use crate::{auth, coordinator::Coordinator, domain::validate};

/// The Boards service.
#[derive(Debug, Clone)]
pub struct BoardsService {
    app: Arc<Coordinator>,
}

impl BoardsService {
    /// Serves boards from the shared state.
    pub fn new(app: Arc<Coordinator>) -> Self {
        BoardsService { app }
    }
}

fn slug(field: &'static str, slug: String) -> Result<String, Status> {
    validate::slug(field, &slug)?;
    Ok(slug)
}

#[tonic::async_trait]
impl Boards for BoardsService {
    async fn create_board(
        &self,
        request: Request<pb::CreateBoardRequest>,
    ) -> Result<Response<pb::Board>, Status> {
        let by = auth::caller(&request).author("");
        let new = requests::new_board(request.into_inner())?;
        let board = self.app.store().create_board(new, by).await?;
        Ok(Response::new(board.into()))
    }

    async fn get_board(
        &self,
        request: Request<pb::GetBoardRequest>,
    ) -> Result<Response<pb::Board>, Status> {
        let slug = slug("slug", request.into_inner().slug)?;
        Ok(Response::new(
            self.app.store().get_board(slug).await?.into(),
        ))
    }

    async fn list_boards(
        &self,
        request: Request<pb::ListBoardsRequest>,
    ) -> Result<Response<pb::ListBoardsResponse>, Status> {
        let boards = self
            .app
            .store()
            .list_boards(request.into_inner().include_archived)
            .await?;
        Ok(Response::new(pb::ListBoardsResponse {
            boards: boards.into_iter().map(Into::into).collect(),
        }))
    }

    async fn update_board(
        &self,
        request: Request<pb::UpdateBoardRequest>,
    ) -> Result<Response<pb::Board>, Status> {
        let by = auth::caller(&request).author("");
        let (slug, changes) = requests::board_changes(request.into_inner())?;
        let board = self.app.store().update_board(slug, changes, by).await?;
        Ok(Response::new(board.into()))
    }

    async fn archive_board(
        &self,
        request: Request<pb::ArchiveBoardRequest>,
    ) -> Result<Response<pb::Board>, Status> {
        let caller = auth::caller(&request);
        let req = request.into_inner();
        let slug = slug("slug", req.slug)?;
        let by = requests::author(&caller, "actor", req.actor)?;
        Ok(Response::new(
            self.app.store().archive_board(slug, by).await?.into(),
        ))
    }

    async fn reset_board(
        &self,
        request: Request<pb::ResetBoardRequest>,
    ) -> Result<Response<pb::ResetBoardResponse>, Status> {
        let caller = auth::caller(&request);
        let req = request.into_inner();
        let slug = slug("slug", req.slug)?;
        let by = requests::author(&caller, "actor", req.actor)?;
        let (tasks_removed, event_id) = self.app.store().reset_board(slug, by).await?;
        Ok(Response::new(pb::ResetBoardResponse {
            tasks_removed,
            event_id: event_id as u64,
        }))
    }
}
