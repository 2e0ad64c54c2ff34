# Shared helpers for the bench/ scripts (sourced, not run).

# Creates $WORK (a temp dir named after the benchmark) and $PIDS; on exit, signals only the
# PIDs the script recorded in PIDS and removes $WORK unless KEEP is set.
bench_workdir() {
  WORK=$(mktemp -d "/tmp/meridian-bench-$1.XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}

# Median of the numbers on stdin, one per line.
median() {
  sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'
}

# Builds Meridian (unless SKIP_BUILD is set) and sets BIN to the release binary.
bench_binary() {
  if [ -z "${SKIP_BUILD:-}" ]; then cargo build --release --quiet; fi
  BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/meridian")
}

# Writes DIR/bench.test.zone: SOA, NS and ns1, the names every benchmark config builds on.
bench_zone() {
  cat > "$1/bench.test.zone" <<ZONE
\$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 60
@ NS ns1
ns1 A 127.0.0.1
ZONE
}

# Starts `meridian serve` on CONFIG with one tokio worker pinned to CPU 1, logging to LOG; sets
# SRV to its PID (recorded in PIDS) and waits at most 10 s for its "listening for dns-udp" line.
bench_serve() { # CONFIG LOG
  TOKIO_WORKER_THREADS=1 taskset -c 1 "$BIN" serve --config "$1" 2>"$2" &
  SRV=$!; PIDS+=("$SRV")
  for _ in $(seq 1 100); do grep -q "listening for dns-udp" "$2" && return 0; sleep 0.1; done
  echo "Meridian did not start" >&2; cat "$2" >&2; exit 1
}
