#!/usr/bin/env bash
# Failover benchmark: how long after a backend dies Meridian stops handing it out, and how long
# after it comes back Meridian hands it out again.
#
#   bench/failover.sh [CYCLES]        (default 5; REPEAT env works too)
#
# Two HTTP backends (python3 -m http.server) on 127.0.0.21 and 127.0.0.22, port 15361; Meridian
# on 127.0.0.1:15360 probes them with GET / every 1 s (fall 2, rise 2, fast_interval 250 ms) and
# serves dyn.bench.test (select = "all"). Each cycle kills the second backend, polls dig every
# 50 ms until its address leaves the answer (detect), restarts it, and polls until it is back
# (recover). Prints every cycle and the medians. Loopback only; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

CYCLES=${1:-${REPEAT:-5}}
DNS_PORT=15360
WEB_PORT=15361
MAX_WAIT=15

for tool in dig python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y bind9-dnsutils python3" >&2; exit 1; }
done

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_binary
bench_workdir failover

mkdir -p "$WORK/zones" "$WORK/www"
echo ok > "$WORK/www/index.html"
bench_zone "$WORK/zones"
cat > "$WORK/meridian.toml" <<CONF
[dns]
listen = ["127.0.0.1:$DNS_PORT"]
zones = "zones"

[monitors.web]
type = "http"
port = $WEB_PORT
interval = "1s"
fast_interval = "250ms"
timeout = "500ms"
rise = 2
fall = 2

[pools.p]
monitor = "web"
members = [{ address = "127.0.0.21" }, { address = "127.0.0.22" }]

[services."dyn.bench.test."]
pools = ["p"]
select = "all"
ttl = 30
min_ttl = 1
# Only healthy members are ever in the answer, so "served" means "up" (no fail-open).
when_all_down = "nodata"
CONF

start_backend() { # ADDR -> prints PID
  (cd "$WORK/www" && exec python3 -m http.server --bind "$1" "$WEB_PORT" >/dev/null 2>&1) &
  echo $!
}
now() { date +%s.%N; }
served() { dig @127.0.0.1 -p "$DNS_PORT" dyn.bench.test A +short +tries=1 +time=1 | grep -qx "$1"; }
wait_until() { # COND ARGS... -> prints seconds waited, or fails after MAX_WAIT
  local t0 t; t0=$(now)
  while true; do
    if "$@"; then t=$(now); awk -v a="$t" -v b="$t0" 'BEGIN {print a - b}'; return 0; fi
    t=$(now)
    if awk -v a="$t" -v b="$t0" -v m="$MAX_WAIT" 'BEGIN {exit !(a - b > m)}'; then
      echo "timeout"; return 1
    fi
    sleep 0.05
  done
}
not_served() { ! served "$1"; }

B1=$(start_backend 127.0.0.21); PIDS+=("$B1")
B2=$(start_backend 127.0.0.22); PIDS+=("$B2")
"$BIN" serve --config "$WORK/meridian.toml" 2>"$WORK/meridian.log" &
PIDS+=("$!")
wait_until served 127.0.0.22 >/dev/null || { echo "Meridian never served 127.0.0.22" >&2; cat "$WORK/meridian.log" >&2; exit 1; }

DETECT=(); RECOVER=()
for i in $(seq 1 "$CYCLES"); do
  wait_until served 127.0.0.22 >/dev/null
  sleep 0.$((RANDOM % 10))   # kill at a random point of the probe interval
  # The kill time is taken just before the kill, so detect includes the whole reaction.
  kill "$B2"; wait "$B2" 2>/dev/null || true
  d=$(wait_until not_served 127.0.0.22)
  B2=$(start_backend 127.0.0.22); PIDS+=("$B2")
  r=$(wait_until served 127.0.0.22)
  printf 'cycle=%d detect_s=%.3f recover_s=%.3f\n' "$i" "$d" "$r"
  DETECT+=("$d"); RECOVER+=("$r")
done
printf 'median detect_s=%.3f recover_s=%.3f cycles=%d (interval 1s, fast_interval 250ms, fall 2, rise 2)\n' \
  "$(printf '%s\n' "${DETECT[@]}" | median)" "$(printf '%s\n' "${RECOVER[@]}" | median)" "$CYCLES"
grep -E "DOWN|UP" "$WORK/meridian.log" | tail -4 | sed 's/^/log: /'
