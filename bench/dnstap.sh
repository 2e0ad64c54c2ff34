#!/usr/bin/env bash
# What dnstap costs DNS: queries/second per server core with [dnstap] logging every query and
# response to an fstrm_capture reader, against the same config without [dnstap], in the same run.
#
#   bench/dnstap.sh [SECONDS]      (default 10 per run; REPEAT env, default 3; SKIP_BUILD=1)
#   QNAME="dyn.bench.test" ...     ask a service name instead of the static ns1.bench.test
#   QPS=50000 bench/dnstap.sh 5    fixed query rate (dnsperf -Q): compare server CPU %
#   CAPTURE_TO=/tmp/x.fstrm ...    the reader writes there instead of /dev/null
#
# Meridian (one worker, every thread pinned to CPU 1, so the dnstap writer thread shares the DNS
# core and its cost is in the figure) serves on 127.0.0.1:15390, HTTP API on 127.0.0.1:15391.
# dnsperf and fstrm_capture run on CPU 0. Runs alternate: off, on, REPEAT times; each run starts
# its own Meridian. Server CPU comes from /proc/PID/stat (all threads), so besides raw
# queries/second it reports qps/core (what one full core would sustain). After each "on" run the
# dnstap counters are read from /metrics: messages sent and dropped (a drop means the reader or
# the queue could not keep up, and that run's figure is not the cost of logging everything).
# Loopback only; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${1:-10}
REPEAT=${REPEAT:-3}
DNS_PORT=15390
HTTP_PORT=15391
QNAME=${QNAME:-ns1.bench.test}
CAPTURE_TO=${CAPTURE_TO:-/dev/null}
RATE=""
if [ -n "${QPS:-}" ]; then RATE="-Q $QPS"; fi
case "$DUR" in ''|*[!0-9]*) echo "SECONDS must be a number" >&2; exit 2 ;; esac
[ "$DUR" -ge 1 ] && [ "$DUR" -le 600 ] || { echo "SECONDS must be 1..600" >&2; exit 2; }

# shellcheck source=bench/lib.sh
. bench/lib.sh
need dnsperf dnsperf; need fstrm_capture fstrm-bin; need curl curl; need taskset util-linux; need ss iproute2
need_done
check_ports 1 65535 "$DNS_PORT" "$HTTP_PORT"
HZ=$(getconf CLK_TCK)
bench_binary
bench_workdir dnstap

mkdir -p "$WORK/zones"
bench_zone "$WORK/zones"
base_config() {
  cat <<TOML
[dns]
listen = ["127.0.0.1:$DNS_PORT"]
zones = "zones"
workers = 1

[http]
listen = "127.0.0.1:$HTTP_PORT"

TOML
  bench_dyn_service
}
base_config > "$WORK/off.toml"
{ base_config; printf '\n[dnstap]\nsocket = "%s"\n' "$WORK/tap.sock"; } > "$WORK/on.toml"
echo "$QNAME A" > "$WORK/q.txt"

taskset -c 0 fstrm_capture -t protobuf:dnstap.Dnstap -u "$WORK/tap.sock" -w "$CAPTURE_TO" 2>"$WORK/capture.log" &
PIDS+=("$!")
for _ in $(seq 1 50); do [ -S "$WORK/tap.sock" ] && break; sleep 0.1; done
[ -S "$WORK/tap.sock" ] || { echo "fstrm_capture did not start" >&2; cat "$WORK/capture.log" >&2; exit 1; }

metric() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v m="$1" '$1 ~ "^"m {s += $2} END {print s + 0}'; }
RESULTS="$WORK/runs.txt"; : > "$RESULTS"
one_run() { # off|on R
  local log="$WORK/meridian-$1-$2.log" t0 t1 out q sent="-" dropped="-"
  bench_serve "$WORK/$1.toml" "$log"
  taskset -a -p -c 1 "$SRV" >/dev/null
  if [ "$1" = on ]; then
    for _ in $(seq 1 100); do [ "$(metric 'meridian_dnstap_connected')" = 1 ] && break; sleep 0.1; done
    [ "$(metric 'meridian_dnstap_connected')" = 1 ] || { echo "dnstap did not connect" >&2; cat "$log" >&2; exit 1; }
  fi
  # Warm-up (not measured).
  taskset -c 0 dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/q.txt" -l 1 -c 8 -T 1 -q 100 -t 2 >/dev/null 2>&1 || true
  local sent0 dropped0
  sent0=$(metric meridian_dnstap_sent_total); dropped0=$(metric meridian_dnstap_dropped_total)
  t0=$(proc_ticks "$SRV")
  # shellcheck disable=SC2086
  out=$(taskset -c 0 dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/q.txt" -l "$DUR" -c 8 -T 1 -q 100 -t 2 $RATE 2>&1)
  t1=$(proc_ticks "$SRV")
  if [ "$1" = on ]; then
    sent=$(( $(metric meridian_dnstap_sent_total) - sent0 ))
    dropped=$(( $(metric meridian_dnstap_dropped_total) - dropped0 ))
  fi
  kill "$SRV"; wait "$SRV" 2>/dev/null || true
  q=$(echo "$out" | awk '/Queries per second/ {print $4}')
  [ -n "$q" ] || { echo "dnsperf failed: $out" >&2; exit 1; }
  awk -v mode="$1" -v r="$2" -v q="$q" -v a="$t0" -v b="$t1" -v hz="$HZ" -v d="$DUR" -v s="$sent" -v x="$dropped" \
    -v lost="$(echo "$out" | awk '/Queries lost/ {print $3}')" 'BEGIN {
      cpu = (b - a) / hz / d
      printf "mode=%s run=%s qps=%.0f cpu_pct=%.1f qps_per_core=%.0f lost=%s sent=%s dropped=%s\n", mode, r, q, 100 * cpu, (cpu > 0 ? q / cpu : 0), lost, s, x
    }' | tee -a "$RESULTS" >&2
}

# Alternate, so drift on a shared machine hits both modes alike.
for r in $(seq 1 "$REPEAT"); do
  one_run off "$r"
  one_run on "$r"
done

med() { grep "mode=$1 " "$RESULTS" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}' | median; }
echo
echo "Meridian DNS ($QNAME A) with and without dnstap (queries and responses to fstrm_capture -w $CAPTURE_TO)"
echo "server: one worker, all threads on CPU 1; dnsperf and fstrm_capture on CPU 0"
echo "median of $REPEAT runs x ${DUR} s$([ -n "$RATE" ] && echo " at dnsperf $RATE")"
printf '%-5s %10s %8s %12s %14s %10s\n' mode qps cpu% qps/core "dnstap sent" dropped
for mode in off on; do
  printf '%-5s %10.0f %8.1f %12.0f %14s %10s\n' "$mode" "$(med "$mode" qps)" "$(med "$mode" cpu_pct)" "$(med "$mode" qps_per_core)" \
    "$([ "$mode" = on ] && med on sent || echo -)" "$([ "$mode" = on ] && med on dropped || echo -)"
done
awk -v a="$(med on qps)" -v b="$(med off qps)" -v c="$(med on qps_per_core)" -v d="$(med off qps_per_core)" 'BEGIN {
  printf "ratio on / off: qps %.3f, qps/core %.3f\n", a / b, c / d }'
echo "qps/core = qps / server CPU fraction (the writer thread included). Below ~95 % server CPU the"
echo "run is client-bound, and fstrm_capture shares the client's CPU, so raw qps understates 'on'."
