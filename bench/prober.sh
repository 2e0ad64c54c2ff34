#!/usr/bin/env bash
# Prober cost benchmark: 10,000 members probed every second (TCP connect to loopback ports),
# Meridian's CPU and memory while probing, and DNS throughput of a service name with and
# without that probing load, in the same run.
#
#   bench/prober.sh [MEMBERS] [SECONDS]      (defaults 10000 and 20; REPEAT env, default 3)
#
# An accept-and-close server (python3, one process, pinned to CPU 0) listens on 127.0.0.1 ports
# 20000..20000+MEMBERS-1. Meridian probes each port every 1 s with a tcp monitor. Its DNS
# threads (one tokio worker) are pinned to CPU 1 and its health thread (`meridian-health`) to
# CPU 0, as the OS would spread them on any machine with two or more cores. dnsperf (CPU 0)
# queries a small unmonitored service. CPU is read per thread from /proc/PID/task, so the DNS
# figure is `qps/core`: queries per second one full core of DNS work sustains, with and without
# probing in the same run. Loopback only; every run is bounded in time.
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
HZ=$(getconf CLK_TCK)

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_binary
bench_workdir prober
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((MEMBERS + 200)) ]; then echo "need $((MEMBERS + 200)) open files, have $(ulimit -n)" >&2; exit 1; fi

mkdir -p "$WORK/zones"
bench_zone "$WORK/zones"
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
# CPU ticks of Meridian's threads: `dns` = every thread but the health thread, `health` = it.
thread_ticks() { # PID dns|health
  local sum=0 t comm
  for t in /proc/"$1"/task/*; do
    comm=$(cat "$t/comm" 2>/dev/null) || continue
    if { [ "$2" = health ] && [ "$comm" = meridian-health ]; } || { [ "$2" = dns ] && [ "$comm" != meridian-health ]; }; then
      sum=$((sum + $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0)))
    fi
  done
  echo "$sum"
}
# Pins the health thread to CPU 0 and every other thread of PID to CPU 1.
pin_threads() {
  local t comm
  for t in /proc/"$1"/task/*; do
    comm=$(cat "$t/comm" 2>/dev/null) || continue
    if [ "$comm" = meridian-health ]; then taskset -p -c 0 "${t##*/}" >/dev/null; else taskset -p -c 1 "${t##*/}" >/dev/null; fi
  done
}
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

start_meridian() { # CONFIG -> sets SRV
  TOKIO_WORKER_THREADS=1 taskset -c 1 "$BIN" serve --config "$1" 2>"$WORK/meridian.log" &
  SRV=$!; PIDS+=("$SRV")
  for _ in $(seq 1 600); do
    if grep -q "listening for dns-udp" "$WORK/meridian.log"; then pin_threads "$SRV"; return 0; fi
    sleep 0.1
  done
  echo "Meridian did not start" >&2; cat "$WORK/meridian.log" >&2; exit 1
}
stop_meridian() { kill "$SRV"; wait "$SRV" 2>/dev/null || true; }
dns_runs() { # label
  local qps=() cpu=() per_core=() lost=()
  for _ in $(seq 1 "$REPEAT"); do
    local t0; t0=$(thread_ticks "$SRV" dns)
    local out; out=$(taskset -c 0 dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/q.txt" -l 10 -c 8 -T 1 -q 100 -t 2 2>&1)
    local t1; t1=$(thread_ticks "$SRV" dns)
    local q; q=$(echo "$out" | awk '/Queries per second/ {print $4}')
    qps+=("$q")
    lost+=("$(echo "$out" | awk '/Queries lost/ {print $3}')")
    cpu+=("$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN {printf "%.1f", (b - a) / hz / 10 * 100}')")
    per_core+=("$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v q="$q" 'BEGIN {printf "%.0f", q / ((b - a) / hz / 10)}')")
  done
  printf '%-20s qps=%s dns_cpu_pct=%s qps_per_core=%s lost=%s (medians of %d x 10 s)\n' "$1" \
    "$(printf '%s\n' "${qps[@]}" | median)" "$(printf '%s\n' "${cpu[@]}" | median)" \
    "$(printf '%s\n' "${per_core[@]}" | median)" "$(printf '%s\n' "${lost[@]}" | sort -n | tail -1)" "$REPEAT"
  DNS_PER_CORE=$(printf '%s\n' "${per_core[@]}" | median)
}

echo "== DNS without probing"
start_meridian "$WORK/plain.toml"
dns_runs "dns, no probing"
BASE_PER_CORE=$DNS_PER_CORE
stop_meridian

echo "== $MEMBERS members probed every 1 s"
start_meridian "$WORK/probing.toml"
grep -E "first probe round|probe targets" "$WORK/meridian.log" | sed 's/^/log: /'
t0=$(cpu_ticks "$SRV"); h0=$(thread_ticks "$SRV" health); rss=()
for ((s = 0; s < DUR; s++)); do sleep 1; rss+=("$(rss_mb "$SRV")"); done
t1=$(cpu_ticks "$SRV"); h1=$(thread_ticks "$SRV" health)
printf 'probing only: srv_cpu_pct=%s (health thread %s) over %d s; rss_mb first=%s last=%s max=%s\n' \
  "$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v d="$DUR" 'BEGIN {printf "%.1f", (b - a) / hz / d * 100}')" \
  "$(awk -v a="$h0" -v b="$h1" -v hz="$HZ" -v d="$DUR" 'BEGIN {printf "%.1f", (b - a) / hz / d * 100}')" \
  "$DUR" "${rss[0]}" "${rss[-1]}" "$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)"
downs=$(grep -c "DOWN" "$WORK/meridian.log" || true)
echo "members marked down: $downs (expected 0)"
dns_runs "dns, while probing"
stop_meridian
awk -v a="$BASE_PER_CORE" -v b="$DNS_PER_CORE" 'BEGIN {printf "dns qps_per_core while probing / without: %.3f (target >= 0.90)\n", b / a}'
