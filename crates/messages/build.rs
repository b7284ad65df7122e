//! Compiles `proto/egov/v1/*.proto` with protox (no protoc needed) and
//! generates the prost messages only: the gRPC services are `egov-proto`'s.

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
    let mut config = prost_build::Config::new();
    // Registry records are also the fixtures' JSON format; a notice is kept in
    // records; a monitoring record is exported as a JSON line.
    for record in [
        "PersonRecord",
        "Representative",
        "DictionaryEntry",
        "Address",
        "IdentityDocument",
        "PowerOfAttorney",
        "Notice",
        "MonitoringRecord",
    ] {
        config.message_attribute(
            format!(".egov.v1.{record}"),
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default, deny_unknown_fields)]",
        );
    }
    // An envelope's header and body are shared buffers (`bytes::Bytes`): decoded from a
    // request without a copy, and cloned by reference wherever the envelope travels on.
    config.bytes([".egov.v1.Envelope.header", ".egov.v1.Envelope.body"]);
    config.compile_fds(descriptors)?;
    Ok(())
}
