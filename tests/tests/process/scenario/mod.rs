//! The field scenarios replayed with real binaries under load: each runs kanband, a fleet of
//! `kanband-gateway` supervisors and short-lived `kanbanctl` workers, and holds the machine's
//! cores for itself (see [`crate::support::exclusive`]).

mod crash;
mod partition;
mod reset;
mod wal_wedge;
