//! Compiles `proto/kanban/v1/*.proto` with protox, a pure-Rust protobuf compiler, so no system
//! `protoc` is needed; the encoded descriptor set is written next to the code for reflection,
//! and pbjson-build reads the same set to generate the proto3 JSON (serde) impls.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from("proto");
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("kanban/v1"))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "proto"));
    files.sort();
    println!("cargo:rerun-if-changed=proto");

    let fds = protox::compile(&files, [&dir])?;
    let encoded = fds.encode_to_vec();
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("kanban_v1_descriptor.bin"), &encoded)?;
    // The well-known types come from pbjson-types, whose `Timestamp` has the RFC 3339 JSON
    // form; prost-types' has no serde impls.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(fds)?;
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .build(&[".kanban.v1"])?;
    Ok(())
}
