#!/usr/bin/env bash
# Soak test: DNS load at a fixed rate for a long time while a backend flaps and the config is
# reloaded, watching for lost queries, memory growth and unexpected log lines.
#
#   bench/soak.sh [SECONDS] [QPS]      (defaults 600 and 90000, about half of one core's maximum)
#
# Meridian on 127.0.0.1:15365 (one worker on CPU 1, its health thread free) serves a geo +
# weighted service over two HTTP-monitored members (python3 http.server on 127.0.0.31 and
# 127.0.0.32, port 15366) and a static name. dnsperf (CPU 0) asks at QPS for SECONDS. Every 5 s
# the second backend is stopped or started again; every 30 s the config is reloaded (SIGHUP).
# Resident memory is sampled every 10 s. At the end: dnsperf's counts, RSS after warm-up (first
# minute) vs at the end, and every WARN/ERROR line that is not an expected DOWN of the flapping
# backend. Loopback only; bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${1:-600}
QPS=${2:-90000}
DNS_PORT=15365
WEB_PORT=15366

for tool in dnsperf python3 taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y dnsperf python3 util-linux" >&2; exit 1; }
done

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_binary
bench_workdir soak

mkdir -p "$WORK/zones" "$WORK/www"
echo ok > "$WORK/www/index.html"
bench_zone "$WORK/zones"
echo "static A 127.0.0.9" >> "$WORK/zones/bench.test.zone"
cat > "$WORK/meridian.toml" <<CONF
[dns]
listen = ["127.0.0.1:$DNS_PORT"]
zones = "zones"

[geo]
database = "$PWD/geo-data/sample.mmdb"

[monitors.web]
type = "http"
port = $WEB_PORT
interval = "1s"
timeout = "500ms"
rise = 2
fall = 2

[pools.eu]
monitor = "web"
continent = "EU"
members = [{ address = "127.0.0.31" }, { address = "127.0.0.32" }]

[pools.us]
continent = "NA"
members = [{ address = "127.0.0.41" }]

[services."dyn.bench.test."]
pools = ["eu", "us"]
steering = "geo"
select = "weighted"
max_answers = 1
CONF
printf 'dyn.bench.test A\nstatic.bench.test A\n' > "$WORK/q.txt"

start_backend() { # ADDR -> sets BACKEND
  (cd "$WORK/www" && exec python3 -m http.server --bind "$1" "$WEB_PORT" >/dev/null 2>&1) &
  BACKEND=$!; PIDS+=("$BACKEND")
}
start_backend 127.0.0.31
start_backend 127.0.0.32
FLAPPER=$BACKEND
# Both backends accept before Meridian's first probe round, so its first answers are healthy.
for addr in 127.0.0.31 127.0.0.32; do
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/$addr/$WEB_PORT") 2>/dev/null && break; sleep 0.1; done
done

bench_serve "$WORK/meridian.toml" "$WORK/meridian.log"

taskset -c 0 dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/q.txt" -l "$DUR" -Q "$QPS" -c 8 -T 1 -t 2 \
  > "$WORK/dnsperf.txt" 2>&1 &
PERF=$!; PIDS+=("$PERF")

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$SRV/status"; }
echo "t_s rss_kb" > "$WORK/rss.txt"
flaps=0 reloads=0 up=1
for ((t = 1; t <= DUR; t++)); do
  sleep 1
  if ((t % 5 == 0)); then
    if ((up)); then kill "$FLAPPER"; wait "$FLAPPER" 2>/dev/null || true; up=0
    else start_backend 127.0.0.32; FLAPPER=$BACKEND; up=1; fi
    flaps=$((flaps + 1))
  fi
  if ((t % 30 == 0)); then kill -HUP "$SRV"; reloads=$((reloads + 1)); fi
  if ((t % 10 == 0)); then echo "$t $(rss_kb)" >> "$WORK/rss.txt"; fi
done
wait "$PERF" || true

sent=$(awk '/Queries sent/ {print $3}' "$WORK/dnsperf.txt")
lost=$(awk '/Queries lost/ {print $3}' "$WORK/dnsperf.txt")
noerror=$(awk '/Response codes/ {for (i = 1; i <= NF; i++) if ($i == "NOERROR") print $(i + 1)}' "$WORK/dnsperf.txt")
warm=$(awk 'NR > 1 && $1 >= 60 {print $2; exit}' "$WORK/rss.txt")
warm=${warm:-$(awk 'NR == 2 {print $2}' "$WORK/rss.txt")}
last=$(tail -1 "$WORK/rss.txt" | awk '{print $2}')
max=$(awk 'NR > 1 {print $2}' "$WORK/rss.txt" | sort -n | tail -1)
unexpected=$(grep -E " (WARN|ERROR) " "$WORK/meridian.log" | grep -v "member 127.0.0.32 of pool eu DOWN" || true)
downs=$(grep -c "member 127.0.0.32 of pool eu DOWN" "$WORK/meridian.log" || true)
ups=$(grep -c "member 127.0.0.32 of pool eu UP" "$WORK/meridian.log" || true)
reloaded=$(grep -c "meridian::reload: reloaded: " "$WORK/meridian.log" || true)

echo "soak: ${DUR} s at $QPS qps; $flaps backend flaps, $reloads reloads sent ($reloaded done)"
echo "queries: sent=$sent lost=$lost NOERROR=$noerror (target: lost 0)"
echo "rss_kb: after warm-up=$warm end=$last max=$max growth=$(awk -v a="$warm" -v b="$last" 'BEGIN {printf "%.1f%%", (b - a) / a * 100}') (target <= 10%)"
echo "transitions of the flapping member: $downs DOWN, $ups UP"
if [ -n "$unexpected" ]; then echo "unexpected WARN/ERROR lines:"; echo "$unexpected" | head -20; else echo "unexpected WARN/ERROR lines: none"; fi
