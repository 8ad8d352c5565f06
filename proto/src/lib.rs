//! The `kanban.v1` gRPC contract.
//!
//! `proto/kanban/v1/*.proto` is the source of truth; `build.rs` compiles it with protox (no
//! system `protoc`). Generated code stays private behind [`pb`], and the encoded descriptor set
//! is exported for gRPC server reflection.

/// Generated messages, clients (`*_client`) and servers (`*_server`) of package `kanban.v1`.
pub mod pb {
    #![allow(missing_docs, unreachable_pub, missing_debug_implementations)]
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("kanban.v1");
}

/// Trailer of an ABORTED holder call naming why its claim token was refused: `expired`,
/// `revoked`, `superseded`, `board_reset` or `unknown` (see `kanban.v1.LeaseLostReason`).
pub const LEASE_LOST_TRAILER: &str = "kanban-lease-lost";

/// Trailer of an ABORTED holder call carrying the task's current fencing epoch.
pub const EPOCH_TRAILER: &str = "kanban-current-epoch";

/// Response header (value `true`) of a holder call that ends a claim (Complete, Block,
/// RequestReview, RequestChanges, Release, ReportExit) when it repeats the call that already
/// ended that claim with the same token: nothing new was recorded, and the task is returned as
/// it is now. A holder whose reply was lost retries and learns that its outcome landed.
pub const ALREADY_RECORDED_HEADER: &str = "kanban-already-recorded";

/// The encoded `FileDescriptorSet` of every `kanban.v1` file, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kanban_v1_descriptor.bin"));

#[cfg(test)]
mod tests {
    use prost::Message as _;

    #[test]
    fn descriptor_set_decodes_and_names_every_service() {
        let fds = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        let services: Vec<String> = fds
            .file
            .iter()
            .filter(|f| f.package() == "kanban.v1")
            .flat_map(|f| f.service.iter().map(|s| s.name().to_owned()))
            .collect();
        for name in ["Boards", "Tasks"] {
            assert!(
                services.iter().any(|s| s == name),
                "{name} missing: {services:?}"
            );
        }
    }
}
