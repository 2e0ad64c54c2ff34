#!/bin/sh
# `protoc` for crates whose build scripts compile .proto files (etcd-client). Cargo points
# PROTOC here (.cargo/config.toml). Uses the system's protoc when there is one, else the
# binary of the protoc-bin-vendored-linux-x86_64 crate that Cargo downloaded with the other
# dependencies, so a fresh machine builds Meridian without installing anything.
if command -v protoc >/dev/null 2>&1; then
  exec protoc "$@"
fi
for bin in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/protoc-bin-vendored-linux-x86_64-*/bin/protoc; do
  if [ -f "$bin" ]; then
    [ -x "$bin" ] || chmod +x "$bin" 2>/dev/null
    exec "$bin" "$@"
  fi
done
echo "protoc not found: install protobuf-compiler, or build on linux x86_64" >&2
exit 1
