//! Reflection v1 (`grpc.reflection.v1.ServerReflection`), which grpcurl 1.8.6 does not speak
//! (it asks v1alpha only): tonic-reflection's own v1 client lists every service and fetches
//! the file that declares `kanban.v1.Tasks`, over TCP and over the Unix socket.

use kanband_tests::spawn_service;
use prost::Message as _;
use tokio::sync::mpsc;
use tonic::{codegen::tokio_stream::wrappers::ReceiverStream, transport::Channel};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

/// Sends one request on a reflection v1 stream and returns the answer.
async fn ask(channel: &Channel, request: MessageRequest) -> MessageResponse {
    let (tx, rx) = mpsc::channel(1);
    tx.send(ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    })
    .await
    .expect("queued");
    let mut answers = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(ReceiverStream::new(rx))
        .await
        .expect("ServerReflectionInfo (v1)")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("the reflection stream does not fail")
        .expect("an answer");
    drop(tx);
    answer.message_response.expect("a response")
}

#[tokio::test]
async fn reflection_v1_lists_every_service_and_describes_tasks() {
    let service = spawn_service().await;
    let mut channels = Vec::new();
    for (transport, addr) in [("tcp", &service.tcp_addr), ("unix", &service.unix_addr)] {
        let channel = kanband_gateway::connect(addr)
            .await
            .unwrap_or_else(|err| panic!("connect to {addr}: {err}"));
        channels.push((transport, channel));
    }

    for (transport, channel) in channels {
        let MessageResponse::ListServicesResponse(list) =
            ask(&channel, MessageRequest::ListServices(String::new())).await
        else {
            panic!("{transport}: ListServices answered with something else");
        };
        let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        names.sort();
        for want in [
            "grpc.health.v1.Health",
            "kanban.v1.Admin",
            "kanban.v1.Attachments",
            "kanban.v1.Boards",
            "kanban.v1.Events",
            "kanban.v1.Leases",
            "kanban.v1.Notifications",
            "kanban.v1.Tasks",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{transport}: {want} in {names:?}"
            );
        }

        let MessageResponse::FileDescriptorResponse(files) = ask(
            &channel,
            MessageRequest::FileContainingSymbol("kanban.v1.Tasks".into()),
        )
        .await
        else {
            panic!("{transport}: FileContainingSymbol answered with something else");
        };
        let declared = files.file_descriptor_proto.iter().any(|bytes| {
            let file = prost_types::FileDescriptorProto::decode(bytes.as_slice())
                .expect("a file descriptor");
            file.package() == "kanban.v1"
                && file.service.iter().any(|s| {
                    s.name() == "Tasks" && s.method.iter().any(|m| m.name() == "CreateTask")
                })
        });
        assert!(
            declared,
            "{transport}: a returned file declares kanban.v1.Tasks with CreateTask"
        );
    }
}
