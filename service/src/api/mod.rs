//! The `kanban.v1` gRPC services. Each handler validates its request (see [`convert`]), calls
//! one store or app operation and converts the answer; errors map to gRPC codes in one place
//! ([`crate::error`]).

mod admin;
mod boards;
pub(crate) mod convert;
mod leases;
mod tasks;

pub use admin::AdminService;
pub use boards::BoardsService;
pub use leases::LeasesService;
pub use tasks::TasksService;
