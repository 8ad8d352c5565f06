//! Protocol errors are the caller's: a request kanband cannot decode is answered
//! INVALID_ARGUMENT (never INTERNAL, which means a storage failure), whatever the method and
//! whether it is unary, server-streaming or a bidirectional stream.

use kanband_tests::{TestService, spawn_service};
use tonic::{Code, Request, Status, codegen::http::uri::PathAndQuery};

use kanband_tests::raw::{Raw, SERVER_STREAMING};

/// Bytes no kanban.v1 request decodes from.
const MALFORMED: &[(&str, &[u8])] = &[
    ("an unterminated varint", &[0xff, 0xff, 0xff]),
    ("a length past the end", &[0x0a, 0x05, b'a']),
    ("wire type 7", &[0x0f]),
    ("a string that is not UTF-8", &[0x0a, 0x02, 0xc3, 0x28]),
];

/// Unary methods of every service, and the server-streaming Watch and Deliver.
const UNARY: &[&str] = &[
    "/kanban.v1.Boards/CreateBoard",
    "/kanban.v1.Tasks/CreateTask",
    "/kanban.v1.Tasks/ListTasks",
    "/kanban.v1.Tasks/GetTask",
    "/kanban.v1.Leases/OpenSession",
    "/kanban.v1.Leases/Acquire",
    "/kanban.v1.Admin/DispatchPreview",
    "/kanban.v1.Notifications/Subscribe",
];

async fn grpc(service: &TestService) -> tonic::client::Grpc<kanband_gateway::AuthChannel> {
    let channel = tonic::transport::Endpoint::from_shared(service.tcp_addr.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic::client::Grpc::new(tonic::service::interceptor::InterceptedService::new(
        channel,
        service.bearer(),
    ))
}

fn assert_invalid(method: &str, what: &str, status: Status) {
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{method} with {what}: {status:?}"
    );
    assert!(
        status
            .message()
            .contains("failed to decode Protobuf message"),
        "{method} with {what}: {}",
        status.message()
    );
}

#[tokio::test]
async fn malformed_requests_are_invalid_arguments_on_every_kind_of_method() {
    let service = spawn_service().await;
    let mut grpc = grpc(&service).await;
    for &(what, bytes) in MALFORMED {
        for &method in UNARY {
            grpc.ready().await.unwrap();
            let status = grpc
                .unary(
                    Request::new(bytes.to_vec()),
                    PathAndQuery::from_static(method),
                    Raw,
                )
                .await
                .unwrap_err();
            assert_invalid(method, what, status);
        }
        for &method in SERVER_STREAMING {
            grpc.ready().await.unwrap();
            let status = grpc
                .server_streaming(
                    Request::new(bytes.to_vec()),
                    PathAndQuery::from_static(method),
                    Raw,
                )
                .await
                .unwrap_err();
            assert_invalid(method, what, status);
        }
        // KeepAlive reads its messages as they come: the stream ends with the refusal.
        let method = "/kanban.v1.Leases/KeepAlive";
        grpc.ready().await.unwrap();
        let mut replies = grpc
            .streaming(
                Request::new(tokio_stream::iter(vec![bytes.to_vec()])),
                PathAndQuery::from_static(method),
                Raw,
            )
            .await
            .unwrap()
            .into_inner();
        let status = replies.message().await.unwrap_err();
        assert_invalid(method, what, status);
    }
}
