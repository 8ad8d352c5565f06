//! Calling any method by its path with raw bytes as the message: for tests that go over every
//! method of the API (malformed input, the role table) without a typed client for each.

use kanband_gateway::{AuthChannel, Bearer};
use prost::bytes::{Buf as _, BufMut as _};
use tonic::{
    Request, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
};

/// Sends and receives raw bytes as gRPC messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len).to_vec()))
    }
}

/// The server-streaming methods.
pub const SERVER_STREAMING: &[&str] = &[
    "/kanban.v1.Events/Watch",
    "/kanban.v1.Notifications/Deliver",
];

/// The client-streaming method.
pub const CLIENT_STREAMING: &str = "/kanban.v1.Attachments/Upload";

/// The bidirectional method.
pub const BIDI: &str = "/kanban.v1.Leases/KeepAlive";

/// Calls `method` with `message` as it is called (unary, server-streaming or bidirectional)
/// and returns how the call was answered: `Ok` if the server accepted it (for a stream: its
/// response headers), else the refusal. A bidirectional call sends `message` and answers with
/// its first reply.
pub async fn call(
    grpc: &mut tonic::client::Grpc<AuthChannel>,
    method: &'static str,
    message: Vec<u8>,
) -> Result<(), Status> {
    grpc.ready()
        .await
        .map_err(|err| Status::unavailable(err.to_string()))?;
    let path = PathAndQuery::from_static(method);
    if SERVER_STREAMING.contains(&method) {
        grpc.server_streaming(Request::new(message), path, Raw)
            .await
            .map(drop)
    } else if method == CLIENT_STREAMING {
        grpc.client_streaming(Request::new(tokio_stream::iter(vec![message])), path, Raw)
            .await
            .map(drop)
    } else if method == BIDI {
        let mut replies = grpc
            .streaming(Request::new(tokio_stream::iter(vec![message])), path, Raw)
            .await?
            .into_inner();
        replies.message().await.map(drop)
    } else {
        grpc.unary(Request::new(message), path, Raw).await.map(drop)
    }
}

/// A raw-bytes client on `channel`, every call carrying `bearer`.
pub fn grpc(
    channel: tonic::transport::Channel,
    bearer: Bearer,
) -> tonic::client::Grpc<AuthChannel> {
    tonic::client::Grpc::new(tonic::service::interceptor::InterceptedService::new(
        channel, bearer,
    ))
}
