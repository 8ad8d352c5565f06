//! The `kanban.v1` gRPC services. Each handler validates its request (see [`convert`]), calls
//! one store operation and converts the answer; errors map to gRPC codes in one place
//! ([`crate::error`]).

mod boards;
pub(crate) mod convert;
mod tasks;

pub use boards::BoardsService;
pub use tasks::TasksService;
