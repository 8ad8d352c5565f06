//! The `kanban.v1` gRPC services. Each handler validates its request (see [`convert`]), calls
//! one store or app operation and converts the answer; errors map to gRPC codes in one place
//! ([`crate::error`]).

mod admin;
mod boards;
pub(crate) mod convert;
mod events;
mod leases;
mod notifications;
mod tasks;

pub use admin::AdminService;
pub use boards::BoardsService;
pub use events::EventsService;
pub use leases::LeasesService;
pub use notifications::NotificationsService;
pub use tasks::TasksService;
