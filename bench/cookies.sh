#!/usr/bin/env bash
# bench/cookies.sh [DURATION_SECONDS]
#
# What DNS Cookies cost per query: one Meridian ([dns.cookies] on, one DNS worker pinned to
# CPU 1) and dnsperf on CPU 0 asking a static name (the fast path) as fast as it can, in three
# modes taken in turn, ROUNDS times: plain (EDNS, no cookie: the anchor), client (a client
# cookie only: a fresh server cookie is hashed per query, the common case) and valid (a client
# cookie with a valid server cookie Meridian issued at the start: verified, echoed). Server CPU
# time per answered query is the measure; the table gives the median of the rounds per mode
# and the ratio to the anchor of the same run (target: <= 1.05). Instruction counts of the same
# modes: bench/profile.sh with NAMES="static-edns cookie cookie-valid".
#
# Arguments:
#   DURATION_SECONDS  length of each dnsperf run, 1..600 (default 5)
# Environment (all optional):
#   ROUNDS=5          rounds (3..50); each runs every mode once, modes in turn
#   CLIENTS=4 OUTSTANDING=100   dnsperf -c / -q
#   SERVER_CPU=1 CLIENT_CPU=0   where Meridian / dnsperf run
#   SKIP_BUILD=1      use the existing target/release/meridian
#   KEEP=1            keep the temp dir (config, logs, raw dnsperf output, runs.txt)
#   DNS_PORT=15470    in 15470-15479
#
# Safety: loopback only; every dnsperf run is bounded by -l, every wait by a timeout; only the
# PID this script started is ever signalled. The valid cookie lasts an hour (RFC 9018 §4.3):
# the script refuses ROUNDS x DURATION that would outlast half of it.
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_args 1 "$@"

DUR="${1:-5}"
ROUNDS="${ROUNDS:-5}"
CLIENTS="${CLIENTS:-4}"
OUTSTANDING="${OUTSTANDING:-100}"
SERVER_CPU="${SERVER_CPU:-1}"
CLIENT_CPU="${CLIENT_CPU:-0}"
DNS_PORT="${DNS_PORT:-15470}"
MODES="plain client valid"
# A fixed client cookie (RFC 7873 §4.1: 8 bytes; any value does for a benchmark).
CLIENT_COOKIE=2464c4abcf10c957

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_uint "$DUR" && [ "$DUR" -ge 1 ] && [ "$DUR" -le 600 ] || die "DURATION_SECONDS must be 1..600 (got '$DUR')"
is_uint "$ROUNDS" && [ "$ROUNDS" -ge 3 ] && [ "$ROUNDS" -le 50 ] || die "ROUNDS must be 3..50 (got '$ROUNDS')"
[ $((ROUNDS * DUR * 3)) -le 1500 ] || die "ROUNDS x DURATION x 3 modes must stay under 25 minutes (the valid cookie is renewed after 30)"
is_uint "$CLIENTS" && is_uint "$OUTSTANDING" && [ "$CLIENTS" -ge 1 ] && [ "$OUTSTANDING" -ge 1 ] || die "CLIENTS and OUTSTANDING must be positive integers"
is_uint "$SERVER_CPU" && is_uint "$CLIENT_CPU" && [ "$SERVER_CPU" != "$CLIENT_CPU" ] || die "SERVER_CPU and CLIENT_CPU must be two different CPU numbers"

need dnsperf dnsperf
need dig bind9-dnsutils
need taskset util-linux
need ss iproute2
need_done
check_ports 15470 15479 "$DNS_PORT"
[ -n "${SKIP_BUILD:-}" ] || log "building Meridian: cargo build --release"
bench_binary
CLK_TCK="$(getconf CLK_TCK)"

bench_rundir cookies
mkdir -p "$RUN/zones" "$RUN/raw"
bench_zone "$RUN/zones"
echo "static A 192.0.2.10" >>"$RUN/zones/bench.test.zone"
echo "static.bench.test A" >"$RUN/queries.txt"
cat >"$RUN/meridian.toml" <<CONF
# Written by bench/cookies.sh.
[dns]
listen = ["127.0.0.1:$DNS_PORT"]
zones = "$RUN/zones"
workers = 1

[dns.cookies]
secret_file = "$RUN/cookie-secret"
CONF

srv_start meridian "$SERVER_CPU" env TOKIO_WORKER_THREADS=1 "$BIN" serve --config "$RUN/meridian.toml"
wait_answer meridian "$DNS_PORT" static.bench.test 20 || exit 1
srv_pinned meridian "$SERVER_CPU" || die "Meridian has threads outside CPU $SERVER_CPU"

# The server cookie Meridian gives this client cookie from 127.0.0.1 (dnsperf's address too).
out="$(dig +time=2 +tries=1 +cookie="$CLIENT_COOKIE" @127.0.0.1 -p "$DNS_PORT" static.bench.test A)"
VALID="$(sed -n 's/^; COOKIE: \([0-9a-f]*\).*/\1/p' <<<"$out")"
[ "${#VALID}" = 48 ] && [ "${VALID:0:16}" = "$CLIENT_COOKIE" ] || { echo "$out" >&2; die "no server cookie from Meridian"; }
echo "$out" | grep -q "status: NOERROR" || die "Meridian does not answer static.bench.test"
log "server cookie for $CLIENT_COOKIE: ${VALID:16}"
# The valid cookie is echoed as sent: the answering path verifies without making a new one.
again="$(dig +time=2 +tries=1 +cookie="$VALID" @127.0.0.1 -p "$DNS_PORT" static.bench.test A)"
[ "$(sed -n 's/^; COOKIE: \([0-9a-f]*\).*/\1/p' <<<"$again")" = "$VALID" ] || { echo "$again" >&2; die "the valid cookie was not echoed"; }

option_of() {
  case "$1" in
    plain) echo -e ;;
    client) echo "-E 10:$CLIENT_COOKIE" ;;
    valid) echo "-E 10:$VALID" ;;
  esac
}

RESULTS="$RUN/runs.txt"; : >"$RESULTS"
# one_run MODE ROUND : a dnsperf run as fast as it can; appends a key=value line to $RESULTS
one_run() {
  local out="$RUN/raw/$1-$2.txt" s0 s1 rc line
  srv_alive meridian || die "Meridian is no longer running; log: $RUN/meridian.log"
  s0="$(srv_ticks meridian)"
  # shellcheck disable=SC2046
  taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$RUN/queries.txt" -l "$DUR" \
    -c "$CLIENTS" -T 1 -q "$OUTSTANDING" -t 2 $(option_of "$1") >"$out" 2>&1 &
  CLIENT_PID=$!
  wait "$CLIENT_PID"; rc=$?; CLIENT_PID=""
  s1="$(srv_ticks meridian)"
  line="$(awk -v rc="$rc" -v s0="$s0" -v s1="$s1" -v hz="$CLK_TCK" '
    /Queries completed:/  {done=$3}
    /Queries lost:/       {lost=$3}
    /Queries per second:/ {qps=$4}
    /Response codes:/     {for (i=3;i<=NF;i++) if ($i=="NOERROR") {np=$(i+2); gsub(/[()%,]/,"",np)}}
    END {
      if (qps=="" || done+0<=0) { printf "error=dnsperf_rc_%s", rc; exit }
      cpu_s = (s1-s0)/hz
      printf "qps=%.0f cpu_us_per_query=%.3f lost=%d noerror_pct=%s", qps, 1e6*cpu_s/done, lost, (np==""?"0":np)
    }' "$out")"
  echo "mode=$1 round=$2 $line" >>"$RESULTS"
  log "mode=$1 round=$2 $line"
  case "$line" in error=*) tail -n 5 "$out" >&2; die "dnsperf failed ($1)";; esac
}

log "warm-up"
for m in $MODES; do
  taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$RUN/queries.txt" -l 1 -c "$CLIENTS" -T 1 \
    -q "$OUTSTANDING" -t 2 $(option_of "$m") >"$RUN/raw/warm-$m.txt" 2>&1 || die "dnsperf warm-up failed ($m)"
done
for r in $(seq 1 "$ROUNDS"); do
  for m in $MODES; do one_run "$m" "$r"; done
done

# --- report --------------------------------------------------------------------------------------
med() { awk -v m="$1" -v k="$2" '$1=="mode="m {for (i=2;i<=NF;i++) {split($i, kv, "="); if (kv[1]==k) print kv[2]}}' "$RESULTS" | median; }
anchor="$(med plain cpu_us_per_query)"
echo
echo "DNS Cookies: server CPU per answered query, static.bench.test A (fast path), Meridian with one DNS worker"
echo "$ROUNDS rounds of ${DUR} s per mode, dnsperf -c $CLIENTS -q $OUTSTANDING as fast as it can; medians; ratio to plain of the same run"
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) && { git -C "$ROOT" diff --quiet HEAD 2>/dev/null || rev="$rev with uncommitted changes"; }
echo "$("$BIN" --version 2>/dev/null || echo meridian)${rev:+, commit $rev}; $(nproc) CPUs"
echo
printf '%-8s %-36s %10s %16s %8s %8s\n' mode "COOKIE option" qps "cpu µs/query" ratio target
for m in $MODES; do
  case "$m" in plain) what="none (EDNS only)" ;; client) what="client cookie (8 bytes)" ;; valid) what="client + valid server cookie (24)" ;; esac
  c="$(med "$m" cpu_us_per_query)"
  ratio="$(awk -v c="$c" -v a="$anchor" 'BEGIN {printf "%.3f", (a > 0 ? c / a : 0)}')"
  target="-"; [ "$m" = plain ] || target="<= 1.05"
  printf '%-8s %-36s %10.0f %16.3f %8s %8s\n' "$m" "$what" "$(med "$m" qps)" "$c" "$ratio" "$target"
done
echo
echo "CPU time is the server process's utime + stime (all threads) over the run, divided by the"
echo "queries dnsperf saw answered; kernel work for the packets is included."
BENCH_OK=1
