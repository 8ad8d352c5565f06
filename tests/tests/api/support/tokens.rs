//! Bearer tokens made for a test, the way an admin makes them.

use kanband_gateway::Client;
use kanband_proto::pb;
use kanband_tests::TestService;

/// Makes a token over the Unix socket (as the owner, an admin); returns its secret.
pub(crate) async fn token(svc: &TestService, name: &str, role: &str, machine_id: &str) -> String {
    svc.unix
        .clone()
        .admin
        .create_token(pb::CreateTokenRequest {
            name: name.into(),
            role: role.into(),
            machine_id: machine_id.into(),
            profiles: vec![],
            ..Default::default()
        })
        .await
        .expect("CreateToken")
        .into_inner()
        .secret
}

/// Asks `client` (an admin) for a reader token named `name` that works for `expires_in_ms`
/// (0: until it is revoked).
pub(crate) async fn create_reader(
    client: &mut Client,
    name: &str,
    expires_in_ms: u64,
) -> Result<pb::CreateTokenResponse, tonic::Status> {
    client
        .admin
        .create_token(pb::CreateTokenRequest {
            name: name.into(),
            role: "reader".into(),
            expires_in_ms,
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Every token `client` (an admin) can list.
pub(crate) async fn list(client: &mut Client) -> Vec<pb::TokenInfo> {
    client
        .admin
        .list_tokens(pb::ListTokensRequest {})
        .await
        .expect("ListTokens")
        .into_inner()
        .tokens
}
