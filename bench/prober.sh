#!/usr/bin/env bash
# Prober cost benchmark: 10,000 members probed every second (TCP connect to loopback ports),
# Meridian's CPU and memory while probing, and DNS throughput of a service name with and
# without that probing load, in the same run.
#
#   bench/prober.sh [MEMBERS] [SECONDS]      (defaults 10000 and 20; REPEAT env, default 3)
#
# An accept-and-close server (python3, one process, pinned to CPU 0) listens on 127.0.0.1 ports
# 20000..20000+MEMBERS-1. Meridian (pinned to CPU 1, one worker thread) probes each port every
# 1 s with a tcp monitor. dnsperf (CPU 0) queries a small unmonitored service. Loopback only;
# every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."

MEMBERS=${1:-10000}
DUR=${2:-20}
REPEAT=${REPEAT:-3}
DNS_PORT=15362
FIRST_PORT=20000

for tool in dnsperf python3 taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y dnsperf python3 util-linux" >&2; exit 1; }
done
if [ -z "${SKIP_BUILD:-}" ]; then cargo build --release --quiet; fi
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/meridian")
HZ=$(getconf CLK_TCK)

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_workdir prober
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((MEMBERS + 200)) ]; then echo "need $((MEMBERS + 200)) open files, have $(ulimit -n)" >&2; exit 1; fi

mkdir -p "$WORK/zones"
cat > "$WORK/zones/bench.test.zone" <<ZONE
\$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 60
@ NS ns1
ns1 A 127.0.0.1
ZONE
echo "dyn.bench.test A" > "$WORK/q.txt"

write_config() { # FILE WITH_PROBES
  {
    echo "[dns]"
    echo "listen = [\"127.0.0.1:$DNS_PORT\"]"
    echo "zones = \"zones\""
    echo
    echo "[pools.web]"
    echo 'members = [{ address = "127.0.0.11" }, { address = "127.0.0.12" }, { address = "127.0.0.13" }, { address = "127.0.0.14" }]'
    echo
    echo '[services."dyn.bench.test."]'
    echo 'pools = ["web"]'
    echo 'select = "weighted"'
    echo 'max_answers = 1'
    if [ "$2" = 1 ]; then
      echo
      echo "[health]"
      echo "max_concurrent_probes = 512"
      echo
      echo "[monitors.tcp]"
      echo 'type = "tcp"'
      echo 'interval = "1s"'
      echo 'timeout = "1s"'
      echo
      echo "[pools.many]"
      echo 'monitor = "tcp"'
      echo "members = ["
      for ((i = 0; i < MEMBERS; i++)); do
        echo "  { address = \"127.0.0.1\", port = $((FIRST_PORT + i)) },"
      done
      echo "]"
    fi
  } > "$1"
}
write_config "$WORK/plain.toml" 0
write_config "$WORK/probing.toml" 1

cat > "$WORK/accept.py" <<'PY'
import selectors, socket, sys
first, n = int(sys.argv[1]), int(sys.argv[2])
sel = selectors.DefaultSelector()
for port in range(first, first + n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        try:
            c, _ = key.fileobj.accept()
            c.close()
        except OSError:
            pass
PY
taskset -c 0 python3 "$WORK/accept.py" "$FIRST_PORT" "$MEMBERS" > "$WORK/accept.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 300); do grep -q ready "$WORK/accept.log" && break; sleep 0.1; done
grep -q ready "$WORK/accept.log" || { echo "accept server did not start" >&2; cat "$WORK/accept.log" >&2; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

start_meridian() { # CONFIG -> sets SRV
  TOKIO_WORKER_THREADS=1 taskset -c 1 "$BIN" serve --config "$1" 2>"$WORK/meridian.log" &
  SRV=$!; PIDS+=("$SRV")
  for _ in $(seq 1 600); do grep -q "listening for dns-udp" "$WORK/meridian.log" && return 0; sleep 0.1; done
  echo "Meridian did not start" >&2; cat "$WORK/meridian.log" >&2; exit 1
}
stop_meridian() { kill "$SRV"; wait "$SRV" 2>/dev/null || true; }
dns_runs() { # label
  local qps=() cpu=()
  for _ in $(seq 1 "$REPEAT"); do
    local t0; t0=$(cpu_ticks "$SRV")
    local out; out=$(taskset -c 0 dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/q.txt" -l 10 -c 8 -T 1 -q 100 -t 2 2>&1)
    local t1; t1=$(cpu_ticks "$SRV")
    qps+=("$(echo "$out" | awk '/Queries per second/ {print $4}')")
    cpu+=("$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN {printf "%.1f", (b - a) / hz / 10 * 100}')")
  done
  printf '%-22s qps=%s srv_cpu_pct=%s (medians of %d x 10 s)\n' "$1" \
    "$(printf '%s\n' "${qps[@]}" | median)" "$(printf '%s\n' "${cpu[@]}" | median)" "$REPEAT"
}

echo "== DNS without probing"
start_meridian "$WORK/plain.toml"
dns_runs "dns, no probing"
stop_meridian

echo "== $MEMBERS members probed every 1 s"
start_meridian "$WORK/probing.toml"
grep -E "first probe round|probe targets" "$WORK/meridian.log" | sed 's/^/log: /'
t0=$(cpu_ticks "$SRV"); rss=()
for ((s = 0; s < DUR; s++)); do sleep 1; rss+=("$(rss_mb "$SRV")"); done
t1=$(cpu_ticks "$SRV")
printf 'probing only: srv_cpu_pct=%s over %d s; rss_mb first=%s last=%s max=%s\n' \
  "$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v d="$DUR" 'BEGIN {printf "%.1f", (b - a) / hz / d * 100}')" \
  "$DUR" "${rss[0]}" "${rss[-1]}" "$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)"
downs=$(grep -c "DOWN" "$WORK/meridian.log" || true)
echo "members marked down: $downs (expected 0)"
dns_runs "dns, while probing"
stop_meridian
