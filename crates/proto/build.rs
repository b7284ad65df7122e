//! Compiles `proto/egov/v1/*.proto` with protox (no protoc needed) and
//! generates the tonic services; the messages they carry are
//! `egov-messages`' (an extern path), so they are not generated twice.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let dir = root.join("egov/v1");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    println!("cargo:rerun-if-changed={}", dir.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // Reflection serves the same descriptors the code was generated from.
    std::fs::write(out_dir.join("egov_descriptor.bin"), prost::Message::encode_to_vec(&descriptors))?;
    tonic_prost_build::configure().extern_path(".egov.v1", "::egov_messages::v1").compile_fds(descriptors)?;
    Ok(())
}
