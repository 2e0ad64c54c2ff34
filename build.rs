//! Compiles the vendored `proto/dnstap.proto` into Rust types (prost). `protoc` comes from
//! `PROTOC`, which `.cargo/config.toml` points at `tools/protoc.sh`, as for etcd-client.

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=proto/dnstap.proto");
    prost_build::Config::new()
        // Payload bytes are handed over as `Bytes` slices of one buffer, not copied per field.
        .bytes(["."])
        .compile_protos(&["proto/dnstap.proto"], &["proto"])
}
