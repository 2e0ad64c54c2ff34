#!/usr/bin/env bash
# Reload benchmark: dnsperf at a fixed rate across N config reloads (SIGHUP), counting lost
# queries and non-NOERROR answers. Each reload re-reads the config, the zone and the GeoIP
# database, validates them and swaps the snapshot; every other reload alternates the config
# between two valid versions (a pool's members change), so the swap is real.
#
#   bench/reload.sh [RELOADS] [QPS]     (defaults 20 and 20000)
#
# Meridian on 127.0.0.1:15364 (one worker on CPU 1), dnsperf on CPU 0 for RELOADS + 4 seconds,
# one SIGHUP per second. Loopback only; bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."

RELOADS=${1:-20}
QPS=${2:-20000}
DNS_PORT=15364

for tool in dnsperf taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y dnsperf util-linux" >&2; exit 1; }
done

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_binary
bench_workdir reload

mkdir -p "$WORK/zones"
bench_zone "$WORK/zones"
echo "static A 127.0.0.9" >> "$WORK/zones/bench.test.zone"
write_config() { # FILE LAST_MEMBER
  cat > "$1" <<CONF
[dns]
listen = ["127.0.0.1:$DNS_PORT"]
zones = "zones"

[geo]
database = "$PWD/geo-data/sample.mmdb"

[pools.eu]
continent = "EU"
members = [{ address = "127.0.0.11" }, { address = "$2" }]

[pools.us]
continent = "NA"
members = [{ address = "127.0.0.21" }]

[services."dyn.bench.test."]
pools = ["us", "eu"]
steering = "geo"
select = "weighted"
max_answers = 1
CONF
}
write_config "$WORK/a.toml" 127.0.0.12
write_config "$WORK/b.toml" 127.0.0.13
cp "$WORK/a.toml" "$WORK/meridian.toml"
printf 'dyn.bench.test A\nstatic.bench.test A\n' > "$WORK/q.txt"

bench_serve "$WORK/meridian.toml" "$WORK/meridian.log"

DUR=$((RELOADS + 4))
taskset -c 0 dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/q.txt" -l "$DUR" -Q "$QPS" -c 8 -T 1 -t 2 \
  > "$WORK/dnsperf.txt" 2>&1 &
PERF=$!; PIDS+=("$PERF")
sleep 2
for ((i = 1; i <= RELOADS; i++)); do
  if ((i % 2)); then cp "$WORK/b.toml" "$WORK/meridian.toml"; else cp "$WORK/a.toml" "$WORK/meridian.toml"; fi
  kill -HUP "$SRV"
  sleep 1
done
wait "$PERF" || true

reloaded=$(grep -c "meridian::reload: reloaded: " "$WORK/meridian.log" || true)
failed=$(grep -c "reload failed" "$WORK/meridian.log" || true)
sent=$(awk '/Queries sent/ {print $3}' "$WORK/dnsperf.txt")
completed=$(awk '/Queries completed/ {print $3}' "$WORK/dnsperf.txt")
lost=$(awk '/Queries lost/ {print $3}' "$WORK/dnsperf.txt")
noerror=$(awk '/Response codes/ {for (i = 1; i <= NF; i++) if ($i == "NOERROR") print $(i + 1)}' "$WORK/dnsperf.txt")
echo "reloads: $reloaded done, $failed failed (of $RELOADS sent)"
echo "queries: sent=$sent completed=$completed lost=$lost NOERROR=$noerror at $QPS qps for $DUR s (target: lost 0)"
