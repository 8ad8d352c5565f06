//! Interop with clients that are not kanband's own: the real `grpcurl` and a Python grpcio
//! client, against kanband served in this process (`kanband_tests::spawn_service`).

mod grpcurl;
mod python;
mod reflection;
