#!/usr/bin/env bash
# bench/profile.sh [QUERIES]
#
# Where a query's time goes, as instruction counts, which stay the same on a noisy machine
# (CPU time does not). Runs Meridian (one DNS worker) under valgrind --tool=callgrind with the
# benchmark's zone and health-checked services (bench/dns.sh), sends QUERIES queries per name
# with dnsperf, and has callgrind dump its counters after an idle period and after each name.
# Prints, per name, user-space instructions per answered query (the idle baseline's rate,
# times the phase's length, subtracted), then the top functions of each name
# (callgrind_annotate, self cost unless INCLUSIVE=1), per query. Kernel work (system calls, the
# network stack) is not counted: bench/dns.sh measures it as CPU time. See bench/README.md and
# docs/performance.md.
#
# Arguments:
#   QUERIES           queries per name, 100..1000000 (default 5000)
# Environment (all optional):
#   GEO_PRECOMPUTE=false  [geo] precompute = false: geo steering looks each client up in the
#                     database instead of reading the per-network table (the path before it)
#   NAMES="static geo geo-ecs nxdomain wdyn dyn cname zcname"   what to send:
#                     static: static.gslb.test A (zone data, two records)
#                     static-edns: the same with EDNS (no option): the anchor of the cookie names
#                     cookie: the same with a client cookie (a server cookie made per query)
#                     cookie-valid: the same with a valid server cookie (verified, echoed)
#                     geo: geo.gslb.test A (net map + weighted selection, the benchmark's name)
#                     geo-ecs: the same with EDNS Client Subnet 198.51.100.0/24 (outside the
#                       map: a GeoIP lookup, then the continent's pool; ECS echoed)
#                     nxdomain: nx.gslb.test A (negative answer with the SOA)
#                     wdyn: weighted, one of four; dyn: all four healthy members
#                     cname: a hostname pool's CNAME, one of two by weight (general path)
#                     zcname: alias.gslb.test, the zone's own CNAME out of the zone
#   TOP=15            functions listed per name (0: none)
#   INCLUSIVE=1       list functions by inclusive cost (callees included) instead of self cost
#   FILTER=REGEX      list only functions whose name matches (an awk regex, e.g. '^meridian::')
#   WARM=500          unmeasured queries per name before counting starts
#   IDLE=5            seconds of the idle baseline
#   OUTSTANDING=20    dnsperf -q (queries in flight; batches grow with it)
#   SERVER_CPU=1 CLIENT_CPU=0   where Meridian (under valgrind) / dnsperf and the backends run
#   SKIP_BUILD=1      use the existing target/release/meridian (built with debug = 1)
#   KEEP=1            keep the temp dir (callgrind.out.N per phase, for callgrind_annotate or
#                     kcachegrind; configs, logs, dnsperf output)
#   ports, all in 15430-15439: DNS_PORT=15430 BACKEND_PORT=15431 (127.0.0.11-14) HTTP_PORT=15432
#
# Safety: loopback only; every dnsperf run is bounded by -n and -l, every wait by a timeout; only
# the PIDs this script started are ever signalled.
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_args 1 "$@"

QUERIES="${1:-5000}"
NAMES="${NAMES:-static geo geo-ecs nxdomain wdyn dyn cname zcname}"
TOP="${TOP:-15}"
INCLUSIVE="${INCLUSIVE:-}"
FILTER="${FILTER:-}"
WARM="${WARM:-500}"
IDLE="${IDLE:-5}"
OUTSTANDING="${OUTSTANDING:-20}"
SERVER_CPU="${SERVER_CPU:-1}"
CLIENT_CPU="${CLIENT_CPU:-0}"
DNS_PORT="${DNS_PORT:-15430}"
BACKEND_PORT="${BACKEND_PORT:-15431}"
HTTP_PORT="${HTTP_PORT:-15432}"
ZONE=gslb.test

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_uint "$QUERIES" && [ "$QUERIES" -ge 100 ] && [ "$QUERIES" -le 1000000 ] || die "QUERIES must be 100..1000000 (got '$QUERIES')"
is_uint "$TOP" && is_uint "$WARM" && is_uint "$IDLE" && [ "$IDLE" -ge 1 ] && [ "$IDLE" -le 60 ] || die "TOP, WARM must be integers, IDLE 1..60"
is_uint "$OUTSTANDING" && [ "$OUTSTANDING" -ge 1 ] || die "OUTSTANDING must be a positive integer"
is_uint "$SERVER_CPU" && is_uint "$CLIENT_CPU" && [ "$SERVER_CPU" != "$CLIENT_CPU" ] || die "SERVER_CPU and CLIENT_CPU must be two different CPU numbers"
for n in $NAMES; do case "$n" in static|static-edns|geo|geo-ecs|nxdomain|wdyn|dyn|cookie|cookie-valid|cname|zcname) ;; *) die "NAMES: unknown name '$n'" ;; esac; done

need valgrind valgrind
need callgrind_control valgrind
need callgrind_annotate valgrind
need dnsperf dnsperf
need dig bind9-dnsutils
need taskset util-linux
need ss iproute2
backends_need
need_done
check_ports 15430 15439 "$DNS_PORT" "$BACKEND_PORT" "$HTTP_PORT"
[ -n "${SKIP_BUILD:-}" ] || log "building Meridian: cargo build --release"
bench_binary

bench_rundir profile
mkdir -p "$RUN/zones" "$RUN/queries" "$RUN/raw"

# --- names ----------------------------------------------------------------------------------------
qname_of() { case "$1" in geo-ecs) echo "geo.$ZONE" ;; nxdomain) echo "nx.$ZONE" ;; cookie*|static-edns) echo "static.$ZONE" ;; zcname) echo "alias.$ZONE" ;; *) echo "$1.$ZONE" ;; esac; }
# The EDNS option a name is sent with (dnsperf -E): EDNS Client Subnet (RFC 7871 §6: family 1,
# source /24, scope 0, address 198.51.100), or a COOKIE (RFC 7873 §4): a client cookie, or it
# with the server cookie Meridian issued for it ($VALID_COOKIE, asked once it answers).
CLIENT_COOKIE=2464c4abcf10c957
ecs_of() {
  case "$1" in
    geo-ecs) echo "8:00011800c63364" ;;
    cookie) echo "10:$CLIENT_COOKIE" ;;
    cookie-valid) echo "10:$VALID_COOKIE" ;;
  esac
}
# expected NAME : status and a regex over the sorted, space-joined A addresses
expected() {
  case "$1" in
    static|static-edns|cookie*) echo 'NOERROR ^192\.0\.2\.10 192\.0\.2\.11$' ;;
    geo) echo 'NOERROR ^127\.0\.0\.1[12]$' ;;
    geo-ecs) echo 'NOERROR ^127\.0\.0\.1[34]$' ;;        # located in NA: dc-b
    nxdomain) echo 'NXDOMAIN ^$' ;;
    wdyn) echo 'NOERROR ^127\.0\.0\.1[1-4]$' ;;
    dyn) echo 'NOERROR ^127\.0\.0\.11 127\.0\.0\.12 127\.0\.0\.13 127\.0\.0\.14$' ;;
    cname|zcname) echo 'NOERROR ^$' ;;                   # one CNAME, no address
  esac
}
for n in $NAMES; do echo "$(qname_of "$n") A" >"$RUN/queries/$n.txt"; done

# --- Meridian under callgrind ------------------------------------------------------------------------
gslb_zone "$RUN/zones/$ZONE.zone"
# Probes every 600 s: the first round runs before Meridian answers, and no probe runs while
# counting (probes are off the query path; here they would only add noise to the baseline).
gslb_meridian_conf "$RUN/meridian.toml" "$DNS_PORT" "$HTTP_PORT" "$RUN/zones" "$BACKEND_PORT" 600s
# DNS Cookies on (queries without a COOKIE option pay nothing for it).
printf '\n[dns.cookies]\nsecret_file = "%s"\n' "$RUN/cookie-secret" >>"$RUN/meridian.toml"
backends_start "$BACKEND_PORT" "$CLIENT_CPU" || exit 1
"$BIN" check --config "$RUN/meridian.toml" >"$RUN/check.log" 2>&1 || { cat "$RUN/check.log" >&2; die "meridian check rejected the generated config"; }

log "starting Meridian under callgrind (slow: expect 10-60 s until it answers)"
srv_start meridian "$SERVER_CPU" env TOKIO_WORKER_THREADS=1 RUST_LOG=info \
  valgrind --tool=callgrind --callgrind-out-file="$RUN/callgrind.out" --dump-instr=no \
  "$BIN" serve --config "$RUN/meridian.toml"
PID="${SRV_PID[meridian]}"
wait_answer meridian "$DNS_PORT" "static.$ZONE" 180 || exit 1
for i in $(seq 1 300); do meridian_healthy "$HTTP_PORT" && break; [ "$i" = 300 ] && die "Meridian does not see every backend up after 30 s"; sleep 0.1; done
log "Meridian (pid $PID, under callgrind) answers and sees every backend up"
VALID_COOKIE="$(dig +time=10 +tries=1 +cookie="$CLIENT_COOKIE" @127.0.0.1 -p "$DNS_PORT" "static.$ZONE" A | sed -n 's/^; COOKIE: \([0-9a-f]*\).*/\1/p')"
[ "${#VALID_COOKIE}" = 48 ] || die "no server cookie from Meridian"

for n in $NAMES; do
  read -r want_status want_re <<<"$(expected "$n")"
  ecs=(); case "$n" in geo-ecs) ecs=(+subnet=198.51.100.0/24) ;; cookie) ecs=(+cookie="$CLIENT_COOKIE") ;; cookie-valid) ecs=(+cookie="$VALID_COOKIE") ;; esac
  out="$(dig +time=10 +tries=1 "${ecs[@]}" @127.0.0.1 -p "$DNS_PORT" "$(qname_of "$n")" A)"
  status="$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")"
  answers="$(awk '/^;; ANSWER SECTION/ {f=1; next} /^$/ {f=0} f && $4=="A" {print $5}' <<<"$out" | sort | tr '\n' ' ' | sed 's/ $//')"
  [ "$status" = "$want_status" ] && [[ "$answers" =~ $want_re ]] || { echo "$out" >&2; die "unexpected answer for $n (status=$status answers=$answers)"; }
  log "$n: $(qname_of "$n") A -> ${answers:-no address} ($status)"
done

# send NAME COUNT OUT : COUNT queries of NAME, at most OUTSTANDING in flight, bounded in time
send() {
  local ecs=(); [ -n "$(ecs_of "$1")" ] && ecs=(-E "$(ecs_of "$1")"); [ "$1" = static-edns ] && ecs=(-e)
  taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$RUN/queries/$1.txt" -n "$2" -l 300 \
    -c 1 -T 1 -q "$OUTSTANDING" -t 10 "${ecs[@]}" >"$3" 2>&1 &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || { CLIENT_PID=""; tail -n 5 "$3" >&2; die "dnsperf failed ($1)"; }
  CLIENT_PID=""
}
DUMPS=0
# dump LABEL : callgrind writes the counts since the last dump (or zeroing) to callgrind.out.N
dump() {
  callgrind_control -d "$1" "$PID" >>"$RUN/callgrind_control.log" 2>&1 || die "callgrind_control -d failed"
  DUMPS=$((DUMPS + 1))
  for _ in $(seq 1 100); do [ -s "$RUN/callgrind.out.$DUMPS" ] && grep -q '^totals:' "$RUN/callgrind.out.$DUMPS" && return 0; sleep 0.1; done
  die "callgrind did not write $RUN/callgrind.out.$DUMPS"
}
ir_of() { awk '/^totals:/ {print $2; exit}' "$RUN/callgrind.out.$1"; }

if [ "$WARM" -gt 0 ]; then
  for n in $NAMES; do send "$n" "$WARM" "$RUN/raw/warm-$n.txt"; done
fi
log "idle baseline: $IDLE s"
callgrind_control -z "$PID" >>"$RUN/callgrind_control.log" 2>&1 || die "callgrind_control -z failed"
t0=$(date +%s.%N); sleep "$IDLE"; dump idle; t1=$(date +%s.%N)
IDLE_RATE=$(awk -v ir="$(ir_of 1)" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", ir / (b - a)}')
log "idle: $(ir_of 1) instructions in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s ($IDLE_RATE per second)"

RESULTS="$RUN/phases.txt"; : >"$RESULTS"
for n in $NAMES; do
  t0=$(date +%s.%N)
  send "$n" "$QUERIES" "$RUN/raw/$n.txt"
  dump "$n"
  t1=$(date +%s.%N)
  done_q=$(awk '/Queries completed:/ {print $3}' "$RUN/raw/$n.txt")
  lost=$(awk '/Queries lost:/ {print $3}' "$RUN/raw/$n.txt")
  line=$(awk -v n="$n" -v d="$DUMPS" -v ir="$(ir_of "$DUMPS")" -v rate="$IDLE_RATE" -v a="$t0" -v b="$t1" -v q="$done_q" -v lost="$lost" 'BEGIN {
    idle = rate * (b - a)
    printf "name=%s dump=%d answered=%d lost=%d seconds=%.2f ir=%d idle_ir=%.0f ir_per_query=%.0f", n, d, q, lost, b - a, ir, idle, (q > 0 ? (ir - idle) / q : 0) }')
  echo "$line" >>"$RESULTS"
  log "$line"
  [ "$lost" = 0 ] || log "warning: $lost queries of $n lost (timed out): they may have been counted without being answered"
done

# --- report ------------------------------------------------------------------------------------------
kv() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1==k {print $2; exit}'; }
echo
echo "Instructions per query (user space, valgrind --tool=callgrind; Meridian with one DNS worker)"
echo "$QUERIES queries per name, dnsperf -c 1 -q $OUTSTANDING; idle baseline $IDLE_RATE instructions/s subtracted"
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) && { git -C "$ROOT" diff --quiet HEAD 2>/dev/null || rev="$rev with uncommitted changes"; }
echo "$(valgrind --version); $("$BIN" --version 2>/dev/null || echo meridian)${rev:+, commit $rev}"
echo
printf '%-13s %-26s %9s %5s %14s %12s %12s\n' name query answered lost instructions idle_share per_query
while read -r line; do
  n=$(kv name "$line")
  printf '%-13s %-26s %9s %5s %14s %12s %12s\n' "$n" "$(qname_of "$n") A$(case "$n" in geo-ecs) echo ' +ECS' ;; static-edns) echo ' +EDNS' ;; cookie*) echo ' +COOKIE' ;; esac)" \
    "$(kv answered "$line")" "$(kv lost "$line")" "$(kv ir "$line")" \
    "$(awk -v i="$(kv idle_ir "$line")" -v t="$(kv ir "$line")" 'BEGIN {printf "%.1f%%", (t > 0 ? 100 * i / t : 0)}')" \
    "$(kv ir_per_query "$line")"
done <"$RESULTS"

if [ "$TOP" -gt 0 ]; then
  mode="self"; [ -n "$INCLUSIVE" ] && mode="inclusive"
  while read -r line; do
    n=$(kv name "$line"); q=$(kv answered "$line")
    echo
    echo "$n: top $TOP functions${FILTER:+ matching $FILTER} by $mode instructions per query (of $(kv ir_per_query "$line"); callgrind.out.$(kv dump "$line"))"
    # A dump taken while functions are running records their calls as "calls=0", and
    # callgrind_annotate (3.19) then books the call's inclusive cost as the caller's own; the
    # count is rewritten to 1 for annotating (costs are unchanged).
    sed 's/^calls=0 /calls=1 /' "$RUN/callgrind.out.$(kv dump "$line")" |
      callgrind_annotate --inclusive="$([ -n "$INCLUSIVE" ] && echo yes || echo no)" --threshold=100 --auto=no /dev/stdin 2>/dev/null |
      awk -v q="$q" -v inclusive="$INCLUSIVE" -v filter="$FILTER" '
        /file:function/ { on = 1; getline; next }
        on && /^ *[0-9,]+ / {
          ir = $1; gsub(",", "", ir)
          fn = $0; sub(/^ *[0-9,]+ +\([^)]*\) +/, "", fn); sub(/ \[[^]]*\]$/, "", fn)
          file = fn; sub(/:.*/, "", file); sub(/.*\//, "", file); sub(/^[^:]*:/, "", fn)
          if (filter != "" && fn !~ filter) next
          # Self costs of one function are added up over the source files its code came from;
          # inclusive costs are shown per part (function, file), as callgrind_annotate gives them.
          if (inclusive != "") fn = fn " (" file ")"
          sum[fn] += ir
        }
        /PROGRAM TOTALS/ { all = $1; gsub(",", "", all) }
        END { for (fn in sum) printf "%.0f\t%.1f%%\t%s\n", sum[fn] / q, 100 * sum[fn] / all, fn }' |
      sort -t "$(printf '\t')" -k1,1nr | head -n "$TOP" |
      awk -F '\t' '{ fn = $3; if (length(fn) > 110) fn = substr(fn, 1, 107) "..."; printf "  %9s %6s  %s\n", $1, $2, fn }'
  done <"$RESULTS"
fi
echo
echo "Counts are user-space instructions of the whole process (all threads), divided by the answered"
echo "queries of the phase; the system calls and the kernel's network stack are not included."
BENCH_OK=1
