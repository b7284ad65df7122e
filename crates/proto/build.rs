//! Compiles `proto/egov/v1/*.proto` with protox (no protoc needed) and
//! generates the prost messages and tonic services.

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
    // Registry records are also the fixtures' JSON format.
    let mut builder = tonic_prost_build::configure();
    for record in
        ["PersonRecord", "Representative", "DictionaryEntry", "Address", "IdentityDocument", "PowerOfAttorney"]
    {
        builder = builder.message_attribute(
            format!(".egov.v1.{record}"),
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default, deny_unknown_fields)]",
        );
    }
    builder.compile_fds(descriptors)?;
    Ok(())
}
