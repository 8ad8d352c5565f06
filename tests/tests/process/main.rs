//! The real binaries as child processes (`kanband_tests::daemon`): the `kanband` daemon itself,
//! kanband with a `kanband-gateway` supervisor and `kanbanctl` end to end, kill -9, and the
//! field scenarios under load; `kanband import hermes` on boards made by the real Hermes code.

mod caps;
mod crash;
mod daemon;
mod data_dir;
mod deploy;
mod descriptors;
mod docs;
mod e2e;
mod full_disk;
mod import;
mod import_bad;
mod quickstart;
mod rpc_log;
mod scenario;
mod support;
mod tls;
mod unreachable;
