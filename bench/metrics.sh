#!/usr/bin/env bash
# What scraping /metrics costs DNS: queries/second of a service name with /metrics scraped 10
# times a second against the same Meridian not scraped, in the same run.
#
#   bench/metrics.sh [SECONDS]     (default 10 per run; REPEAT env, default 3; SKIP_BUILD=1)
#   QPS=50000 bench/metrics.sh 5   fixed query rate (dnsperf -Q): compare server CPU %
#   SCRAPE_PATH=/healthz ...       scrape another path (a control: the cost of any request)
#
# Meridian (one tokio worker, every thread pinned to CPU 1, so the HTTP side shares the DNS
# core) serves dyn.bench.test on 127.0.0.1:15370 and its HTTP API on 127.0.0.1:15371. dnsperf
# runs on CPU 0; so does the scraper (python3, one keep-alive connection, GET /metrics every
# 100 ms). Runs alternate: not scraped, scraped, REPEAT times. Server CPU comes from
# /proc/PID/stat, so besides raw queries/second it reports qps/core (queries per second one
# full core would sustain). Loopback only; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${1:-10}
REPEAT=${REPEAT:-3}
DNS_PORT=15370
HTTP_PORT=15371
SCRAPE_PATH=${SCRAPE_PATH:-/metrics}
RATE=""
if [ -n "${QPS:-}" ]; then RATE="-Q $QPS"; fi
case "$DUR" in ''|*[!0-9]*) echo "SECONDS must be a number" >&2; exit 2 ;; esac
[ "$DUR" -ge 1 ] && [ "$DUR" -le 600 ] || { echo "SECONDS must be 1..600" >&2; exit 2; }

for tool in dnsperf python3 taskset ss; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y dnsperf python3 util-linux iproute2" >&2; exit 1; }
done
for port in "$DNS_PORT" "$HTTP_PORT"; do
  if [ -n "$(ss -Hlun "sport = :$port")$(ss -Hltn "sport = :$port")" ]; then
    echo "port $port is in use" >&2; exit 1
  fi
done
HZ=$(getconf CLK_TCK)

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_binary
bench_workdir metrics

mkdir -p "$WORK/zones"
bench_zone "$WORK/zones"
cat > "$WORK/meridian.toml" <<TOML
[dns]
listen = ["127.0.0.1:$DNS_PORT"]
zones = "zones"

[http]
listen = "127.0.0.1:$HTTP_PORT"

TOML
bench_dyn_service >> "$WORK/meridian.toml"
echo "dyn.bench.test A" > "$WORK/q.txt"

cat > "$WORK/scrape.py" <<'PY'
# GET /metrics every 100 ms over one keep-alive connection until killed; counts scrapes.
import http.client, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
n, size, next_at = 0, 0, time.monotonic()
while True:
    conn.request("GET", sys.argv[3])
    body = conn.getresponse().read()
    n, size = n + 1, len(body)
    with open(out, "w") as f:
        f.write(f"{n} {size}\n")
    next_at += 0.1
    time.sleep(max(0.0, next_at - time.monotonic()))
PY

TOKIO_WORKER_THREADS=1 taskset -c 1 "$BIN" serve --config "$WORK/meridian.toml" 2>"$WORK/meridian.log" &
SRV=$!; PIDS+=("$SRV")
for _ in $(seq 1 150); do grep -q "listening for dns-udp" "$WORK/meridian.log" && break; sleep 0.1; done
grep -q "listening for dns-udp" "$WORK/meridian.log" || { echo "Meridian did not start" >&2; cat "$WORK/meridian.log" >&2; exit 1; }
taskset -a -p -c 1 "$SRV" >/dev/null

RESULTS="$WORK/runs.txt"; : > "$RESULTS"
one_run() { # scraped|plain R
  local scraper="" t0 t1 out q
  if [ "$1" = scraped ]; then
    rm -f "$WORK/scrapes"
    taskset -c 0 python3 "$WORK/scrape.py" "$HTTP_PORT" "$WORK/scrapes" "$SCRAPE_PATH" 2>>"$WORK/scrape.log" &
    scraper=$!; PIDS+=("$scraper")
    for _ in $(seq 1 50); do [ -s "$WORK/scrapes" ] && break; sleep 0.1; done
  fi
  t0=$(proc_ticks "$SRV")
  # shellcheck disable=SC2086
  out=$(taskset -c 0 dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/q.txt" -l "$DUR" -c 8 -T 1 -q 100 -t 2 $RATE 2>&1)
  t1=$(proc_ticks "$SRV")
  local scrapes="-"
  if [ -n "$scraper" ]; then
    scrapes=$(cat "$WORK/scrapes")
    kill "$scraper"; wait "$scraper" 2>/dev/null || true
  fi
  q=$(echo "$out" | awk '/Queries per second/ {print $4}')
  [ -n "$q" ] || { echo "dnsperf failed: $out" >&2; exit 1; }
  awk -v mode="$1" -v r="$2" -v q="$q" -v a="$t0" -v b="$t1" -v hz="$HZ" -v d="$DUR" -v s="$scrapes" \
    -v lost="$(echo "$out" | awk '/Queries lost/ {print $3}')" 'BEGIN {
      cpu = (b - a) / hz / d
      printf "mode=%s run=%s qps=%.0f cpu_pct=%.1f qps_per_core=%.0f lost=%s scrapes=%s\n", mode, r, q, 100 * cpu, (cpu > 0 ? q / cpu : 0), lost, s
    }' | tee -a "$RESULTS" >&2
  sleep 0.5
}

# Warm-up, then alternate so drift on a shared machine hits both modes alike.
taskset -c 0 dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/q.txt" -l 2 -c 8 -T 1 -q 100 -t 2 >/dev/null 2>&1 || true
for r in $(seq 1 "$REPEAT"); do
  one_run plain "$r"
  one_run scraped "$r"
done

med() { grep "mode=$1 " "$RESULTS" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}' | median; }
size=$(awk '{print $2}' "$WORK/scrapes" 2>/dev/null || echo "?")
echo
echo "Meridian DNS with and without $SCRAPE_PATH scraped every 100 ms (server on CPU 1, dnsperf and scraper on CPU 0)"
echo "median of $REPEAT runs x ${DUR} s$([ -n "$RATE" ] && echo " at dnsperf $RATE"); $SCRAPE_PATH is $size bytes"
printf '%-8s %10s %8s %12s\n' mode qps cpu% qps/core
for mode in plain scraped; do
  printf '%-8s %10.0f %8.1f %12.0f\n' "$mode" "$(med "$mode" qps)" "$(med "$mode" cpu_pct)" "$(med "$mode" qps_per_core)"
done
awk -v a="$(med scraped qps)" -v b="$(med plain qps)" -v c="$(med scraped qps_per_core)" -v d="$(med plain qps_per_core)" 'BEGIN {
  printf "ratio scraped / plain: qps %.3f, qps/core %.3f (target >= 0.95)\n", a / b, c / d }'
echo "qps/core = qps / server CPU fraction: the server-side cost. Below ~95 % server CPU the run is"
echo "client-bound, and the scraper shares the client's CPU, so raw qps understates the scraped mode."
