//! The `kanban.v1` gRPC services, above the [`Coordinator`](crate::coordinator::Coordinator).
//! Each handler validates its request (`requests`), calls one coordinator operation (or one
//! store operation that needs no lease state) and builds the answer (`responses`); errors
//! map to gRPC codes in one place ([`crate::error`]).

mod admin;
pub(crate) mod attachments;
mod boards;
mod events;
mod feed;
mod leases;
mod notifications;
pub(crate) mod requests;
pub(crate) mod responses;
mod tasks;

pub use admin::AdminService;
pub use attachments::AttachmentsService;
pub use boards::BoardsService;
pub use events::EventsService;
pub use leases::LeasesService;
pub use notifications::NotificationsService;
pub use tasks::TasksService;
