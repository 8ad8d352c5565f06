//! Bearer tokens made for a test, the way an admin makes them.

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
