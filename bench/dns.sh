#!/usr/bin/env bash
# bench/dns.sh [DURATION_SECONDS]
#
# The project's DNS benchmark: Meridian against gdnsd, Knot DNS and NSD on loopback, with the
# same zone and equivalent names, each server pinned to CPU 1 with one worker thread and
# dnsperf on CPU 0. For every (server, name) it measures the highest rate (queries/s, server
# CPU, queries/s per server core), server CPU at a fixed rate, average latency at a low fixed
# rate and queries over TCP, then prints one table and the ratios Meridian / anchor next to
# the issue's targets. Self-contained: builds Meridian (release), writes zones and configs into
# a temp dir under /tmp, starts HTTP backends for the health checks (nginx on
# 127.0.0.11-14) and the servers, stops what it started. See bench/README.md.
#
# Arguments:
#   DURATION_SECONDS  length of each dnsperf run, 1..600 (default: $DUR, else 10)
# Environment (all optional):
#   REPEAT=3          runs per (mode, server, name); the table shows medians
#   ONLY="meridian gdnsd knot nsd"  servers; meridian-rrl is a second Meridian with
#                     response rate limiting on but never triggered
#   RRL=1             adds meridian-rrl to ONLY (what the limiter costs)
#   NAMES="static geo wdyn dyn"  names (Knot and NSD serve static only):
#                     static: 2 A records; geo: geo steering (a net map) over two weighted
#                     pools, one address; wdyn: weighted, one address of four; dyn: all four
#                     healthy addresses. The three services are HTTP health-checked.
#   MODES="max rate latency tcp"  max: UDP as fast as dnsperf can; rate: UDP at QPS (compare
#                     server CPU); latency: UDP at LAT_QPS (compare avg latency); tcp: dnsperf
#                     -m tcp, CLIENTS connections with many queries each, as fast as it can
#   QPS=100000        rate of the rate mode       LAT_QPS=20000  rate of the latency mode
#   CLIENTS=8         dnsperf -c                  OUTSTANDING=100  dnsperf -q
#   SERVER_CPU=1 CLIENT_CPU=0   CPUs of the servers / of dnsperf and the backends
#   WARMUP=2          seconds of unmeasured load per server before the runs (0: none)
#   SKIP_BUILD=1      use the existing target/release/meridian, don't run cargo
#   KEEP=1            keep the temp dir (configs, logs, raw dnsperf output, runs.txt)
#   ports, all in 15410-15419: MERIDIAN_PORT=15410 MERIDIAN_RRL_PORT=15411 GDNSD_PORT=15412
#                     KNOT_PORT=15413 NSD_PORT=15414 BACKEND_PORT=15415 (127.0.0.11-14)
#                     MERIDIAN_HTTP_PORT=15416 MERIDIAN_RRL_HTTP_PORT=15417 (Meridian's API,
#                     read to see that its members are up)
#
# Safety: traffic goes to loopback only; every load run is bounded by dnsperf -l; only the
# PIDs this script started are ever signalled.
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_args 1 "$@"

DUR="${1:-${DUR:-10}}"
REPEAT="${REPEAT:-3}"
ONLY="${ONLY:-meridian gdnsd knot nsd}"
[ -z "${RRL:-}" ] || [[ " $ONLY " == *" meridian-rrl "* ]] || ONLY="$ONLY meridian-rrl"
NAMES="${NAMES:-static geo wdyn dyn}"
MODES="${MODES:-max rate latency tcp}"
QPS="${QPS:-100000}"
LAT_QPS="${LAT_QPS:-20000}"
CLIENTS="${CLIENTS:-8}"
OUTSTANDING="${OUTSTANDING:-100}"
SERVER_CPU="${SERVER_CPU:-1}"
CLIENT_CPU="${CLIENT_CPU:-0}"
WARMUP="${WARMUP:-2}"
MERIDIAN_PORT="${MERIDIAN_PORT:-15410}"
MERIDIAN_RRL_PORT="${MERIDIAN_RRL_PORT:-15411}"
GDNSD_PORT="${GDNSD_PORT:-15412}"
KNOT_PORT="${KNOT_PORT:-15413}"
NSD_PORT="${NSD_PORT:-15414}"
BACKEND_PORT="${BACKEND_PORT:-15415}"
MERIDIAN_HTTP_PORT="${MERIDIAN_HTTP_PORT:-15416}"
MERIDIAN_RRL_HTTP_PORT="${MERIDIAN_RRL_HTTP_PORT:-15417}"
HOST=127.0.0.1                                       # fixed: loopback only
ZONE=gslb.test                                       # BACKENDS (127.0.0.11-14): bench/lib.sh

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_uint "$DUR" && [ "$DUR" -ge 1 ] && [ "$DUR" -le 600 ] || die "DURATION_SECONDS must be an integer 1..600 (got '$DUR')"
is_uint "$REPEAT" && [ "$REPEAT" -ge 1 ] && [ "$REPEAT" -le 50 ] || die "REPEAT must be 1..50"
is_uint "$QPS" && [ "$QPS" -ge 1 ] && is_uint "$LAT_QPS" && [ "$LAT_QPS" -ge 1 ] || die "QPS and LAT_QPS must be positive integers"
is_uint "$CLIENTS" && is_uint "$OUTSTANDING" && is_uint "$WARMUP" && [ "$WARMUP" -le 60 ] || die "CLIENTS, OUTSTANDING must be integers, WARMUP 0..60"
is_uint "$SERVER_CPU" && is_uint "$CLIENT_CPU" && [ "$SERVER_CPU" != "$CLIENT_CPU" ] || die "SERVER_CPU and CLIENT_CPU must be two different CPU numbers"
for s in $ONLY; do case "$s" in meridian|meridian-rrl|gdnsd|knot|nsd) ;; *) die "ONLY: unknown server '$s' (meridian, meridian-rrl, gdnsd, knot, nsd)" ;; esac; done
for n in $NAMES; do case "$n" in static|geo|wdyn|dyn) ;; *) die "NAMES: unknown name '$n' (static, geo, wdyn, dyn)" ;; esac; done
for m in $MODES; do case "$m" in max|rate|latency|tcp) ;; *) die "MODES: unknown mode '$m' (max, rate, latency, tcp)" ;; esac; done
[ -n "$ONLY" ] && [ -n "$NAMES" ] && [ -n "$MODES" ] || die "ONLY, NAMES and MODES must not be empty"
has() { [[ " $1 " == *" $2 "* ]]; }       # has LIST WORD
dynamic_wanted() { [ -n "$(tr ' ' '\n' <<<"$NAMES" | grep -v '^static$')" ]; }

# --- dependencies ---------------------------------------------------------------------------
need dnsperf dnsperf
need dig bind9-dnsutils
need taskset util-linux
need ss iproute2
backends_need
has "$ONLY" gdnsd && need gdnsd gdnsd
has "$ONLY" knot && need knotd knot
has "$ONLY" nsd && need nsd nsd
need_done
for c in "$SERVER_CPU" "$CLIENT_CPU"; do
  [ -d "/sys/devices/system/cpu/cpu$c" ] && [ "$(cat "/sys/devices/system/cpu/cpu$c/online" 2>/dev/null || echo 1)" = 1 ] \
    || die "CPU $c is not available (needs at least 2 CPUs; set SERVER_CPU/CLIENT_CPU)"
done
check_ports 15410 15419 "$MERIDIAN_PORT" "$MERIDIAN_RRL_PORT" "$GDNSD_PORT" "$KNOT_PORT" "$NSD_PORT" \
  "$BACKEND_PORT" "$MERIDIAN_HTTP_PORT" "$MERIDIAN_RRL_HTTP_PORT"
CLK_TCK="$(getconf CLK_TCK)"

if [[ " $ONLY " == *" meridian"* ]]; then
  [ -n "${SKIP_BUILD:-}" ] || log "building Meridian: cargo build --release"
  bench_binary
fi

bench_rundir dns
mkdir -p "$RUN/zones" "$RUN/queries" "$RUN/raw"

# --- zone, names, configs ---------------------------------------------------------------------
gslb_zone "$RUN/zones/$ZONE.zone"   # the anchors' zone, the same for every server

for n in static geo wdyn dyn; do echo "$n.$ZONE A" >"$RUN/queries/$n.txt"; done
serves() { case "$1" in knot|nsd) [ "$2" = static ] ;; *) true ;; esac; }   # serves SERVER NAME
port_of() {
  case "$1" in
    meridian) echo "$MERIDIAN_PORT" ;; meridian-rrl) echo "$MERIDIAN_RRL_PORT" ;;
    gdnsd) echo "$GDNSD_PORT" ;; knot) echo "$KNOT_PORT" ;; nsd) echo "$NSD_PORT" ;;
  esac
}
# expected NAME : a regex over the sorted, space-joined A addresses of an answer
expected() {
  case "$1" in
    static) echo '^192\.0\.2\.10 192\.0\.2\.11$' ;;
    geo) echo '^127\.0\.0\.1[12]$' ;;                        # one of dc-a (127/8 is mapped to dc-a first)
    wdyn) echo '^127\.0\.0\.1[1-4]$' ;;                      # one of four
    dyn) echo '^127\.0\.0\.11 127\.0\.0\.12 127\.0\.0\.13 127\.0\.0\.14$' ;;   # all four
  esac
}

# Meridian: one worker thread; services equivalent to gdnsd's resources below, probed as often.
mkdir -p "$RUN/meridian" "$RUN/meridian-rrl"
gslb_meridian_conf "$RUN/meridian/meridian.toml" "$MERIDIAN_PORT" "$MERIDIAN_HTTP_PORT" "$RUN/zones" "$BACKEND_PORT" 2s
# The same with response rate limiting on, at a limit dnsperf (one source address) never
# reaches: every query pays for the check, none is limited.
gslb_meridian_conf "$RUN/meridian-rrl/meridian.toml" "$MERIDIAN_RRL_PORT" "$MERIDIAN_RRL_HTTP_PORT" "$RUN/zones" "$BACKEND_PORT" 2s
cat >>"$RUN/meridian-rrl/meridian.toml" <<EOF

[dns.rrl]
responses_per_second = 1000000
burst = 1000000
EOF

# gdnsd 3.8: one UDP and one TCP thread; the same zone plus its dynamic records.
mkdir -p "$RUN/gdnsd/zones" "$RUN/gdnsd/run" "$RUN/gdnsd/state"
cat >"$RUN/gdnsd/config" <<EOF
# Written by bench/dns.sh.
options => {
  listen => { $HOST:$GDNSD_PORT => { udp_threads => 1, tcp_threads => 1 } }
  run_dir => $RUN/gdnsd/run
  state_dir => $RUN/gdnsd/state
  zones_rfc1035_threads => 1
}

service_types => {
  web => {
    plugin => http_status
    port => $BACKEND_PORT
    url_path => /health
    interval => 2      # the minimum gdnsd allows (timeout must be below it)
    timeout => 1
    down_thresh => 2
    ok_thresh => 2
    up_thresh => 2
  }
}

plugins => {
  # dyn: every healthy member
  multifo => {
    pool => { service_types => web, up_thresh => 0.25, b1 => 127.0.0.11, b2 => 127.0.0.12, b3 => 127.0.0.13, b4 => 127.0.0.14 }
  }
  weighted => {
    service_types => web
    up_thresh => 0.1
    # wdyn: one address by weight
    wpool => { b1 = [ 127.0.0.11, 40 ], b2 = [ 127.0.0.12, 30 ], b3 = [ 127.0.0.13, 20 ], b4 = [ 127.0.0.14, 10 ] }
    # the datacenters of geo
    dc-a => { a1 = [ 127.0.0.11, 60 ], a2 = [ 127.0.0.12, 40 ] }
    dc-b => { b1 = [ 127.0.0.13, 60 ], b2 = [ 127.0.0.14, 40 ] }
  }
  # geo: network -> ordered datacenters (nets only, no GeoIP database); each datacenter is a
  # weighted resource (the "%plugin!resource" reference of gdnsd-plugin-metafo/geoip)
  geoip => {
    maps => {
      netmap => {
        datacenters => [ dc-a, dc-b ]
        nets => {
          127.0.0.0/8 => [ dc-a, dc-b ]
          10.0.0.0/8 => [ dc-b, dc-a ]
          192.0.2.0/24 => [ dc-b, dc-a ]
        }
      }
    }
    resources => {
      geopool => {
        map => netmap
        dcmap => { dc-a => %weighted!dc-a, dc-b => %weighted!dc-b }
      }
    }
  }
}
EOF
{ cat "$RUN/zones/$ZONE.zone"; cat <<'EOF'
; gdnsd's dynamic names
dyn     30 DYNA multifo!pool
wdyn    30 DYNA weighted!wpool
geo     30 DYNA geoip!geopool
EOF
} >"$RUN/gdnsd/zones/$ZONE"

knot_conf "$RUN/knot" "$KNOT_PORT" "$RUN/zones" "$ZONE"
nsd_conf "$RUN/nsd" "$NSD_PORT" "$RUN/zones" "$ZONE"

# --- start --------------------------------------------------------------------------------------
backends_start "$BACKEND_PORT" "$CLIENT_CPU" || exit 1
log "backends: nginx (pid ${SRV_PID[nginx]}) on ${BACKENDS// /, } port $BACKEND_PORT, CPU $CLIENT_CPU"

# healthy SERVER : every health-checked member is up in the server's own view.
healthy() {
  case "$1" in
    meridian) meridian_healthy "$MERIDIAN_HTTP_PORT" ;;
    meridian-rrl) meridian_healthy "$MERIDIAN_RRL_HTTP_PORT" ;;
    gdnsd)
      gdnsdctl -c "$RUN/gdnsd" -o -t 5 states 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
w = [v for k, v in d.items() if k.endswith("/web")]
sys.exit(0 if len(w) == 4 and all(v["state"] == "UP" for v in w) else 1)' 2>/dev/null ;;
    *) true ;;
  esac
}

for s in $ONLY; do
  case "$s" in
    meridian|meridian-rrl)
      "$BIN" check --config "$RUN/$s/meridian.toml" >"$RUN/$s-check.log" 2>&1 \
        || { cat "$RUN/$s-check.log" >&2; die "meridian check rejected the generated config ($s)"; }
      srv_start "$s" "$SERVER_CPU" env TOKIO_WORKER_THREADS=1 RUST_LOG=info "$BIN" serve --config "$RUN/$s/meridian.toml" ;;
    gdnsd) srv_start gdnsd "$SERVER_CPU" gdnsd -c "$RUN/gdnsd" start ;;
    knot) srv_start knot "$SERVER_CPU" knotd -c "$RUN/knot/knot.conf" ;;
    nsd) srv_start nsd "$SERVER_CPU" nsd -d -c "$RUN/nsd/nsd.conf" ;;
  esac
  wait_answer "$s" "$(port_of "$s")" "static.$ZONE" 20 || exit 1
  srv_pin "$s" "$SERVER_CPU" || exit 1
  if dynamic_wanted; then
    for i in $(seq 1 300); do healthy "$s" && break; [ "$i" = 300 ] && die "$s does not see every backend up after 30 s; log: $RUN/$s.log"; sleep 0.1; done
  fi
  log "$s pid ${SRV_PID[$s]}: $(srv_tree "$s" | while read -r p; do ls "/proc/$p/task"; done | wc -l) threads, all on CPU $SERVER_CPU$(dynamic_wanted && has "meridian meridian-rrl gdnsd" "$s" && echo ", every backend up")"
done

# --- answer check: right addresses, NOERROR, response size (no EDNS, like dnsperf) -------------
for s in $ONLY; do
  for n in $NAMES; do
    serves "$s" "$n" || continue
    q="$n.$ZONE"
    out="$(dig +time=2 +tries=1 +noedns @"$HOST" -p "$(port_of "$s")" "$q" A)"
    status="$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")"
    answers="$(awk '/^;; ANSWER SECTION/ {f=1; next} /^$/ {f=0} f && $4=="A" {print $5}' <<<"$out" | sort | tr '\n' ' ' | sed 's/ $//')"
    bytes="$(sed -n 's/.*MSG SIZE  rcvd: \([0-9]*\).*/\1/p' <<<"$out")"
    [ "$status" = NOERROR ] && [[ "$answers" =~ $(expected "$n") ]] \
      || { echo "$out" >&2; die "$s: unexpected answer for $q A (status=$status answers=$answers)"; }
    log "$s $q A -> $answers ($status, $bytes bytes)"
  done
done

# --- measurement ---------------------------------------------------------------------------------
cpu_snap() { awk -v c="cpu$1" '$1==c {b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6}' /proc/stat; }   # busy total
now() { date +%s.%N; }

dnsperf_args() {  # dnsperf_args MODE PORT QUERYFILE DURATION
  local a=(-s "$HOST" -p "$2" -d "$3" -l "$4" -c "$CLIENTS" -T 1 -q "$OUTSTANDING" -t 2)
  case "$1" in
    rate) a+=(-Q "$QPS") ;;
    latency) a+=(-Q "$LAT_QPS") ;;
    tcp) a+=(-m tcp) ;;
  esac
  echo "${a[@]}"
}

RESULTS="$RUN/runs.txt"; : >"$RESULTS"

# one_run MODE SERVER NAME R : one dnsperf run; appends a key=value line to $RESULTS
one_run() {
  local mode="$1" s="$2" n="$3" r="$4" out s0 s1 t0 t1 c0 c1 rc line
  out="$RUN/raw/$mode-$s-$n-$r.txt"
  srv_alive "$s" || die "$s is no longer running; log: $RUN/$s.log"
  srv_pinned "$s" "$SERVER_CPU" || die "$s has threads outside CPU $SERVER_CPU"
  s0="$(srv_ticks "$s")"; c0="$(cpu_snap "$CLIENT_CPU")"; t0="$(now)"
  # shellcheck disable=SC2046
  taskset -c "$CLIENT_CPU" dnsperf $(dnsperf_args "$mode" "$(port_of "$s")" "$RUN/queries/$n.txt" "$DUR") >"$out" 2>&1 &
  CLIENT_PID=$!
  wait "$CLIENT_PID"; rc=$?; CLIENT_PID=""
  t1="$(now)"; c1="$(cpu_snap "$CLIENT_CPU")"; s1="$(srv_ticks "$s")"
  line="$(awk -v rc="$rc" -v s0="$s0" -v s1="$s1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" \
              -v c0="$c0" -v c1="$c1" '
    /Queries sent:/       {sent=$3}
    /Queries completed:/  {done=$3}
    /Queries lost:/       {lost=$3}
    /Response codes:/     {for (i=3;i<=NF;i++) if ($i=="NOERROR") {np=$(i+2); gsub(/[()%,]/,"",np)}}
    /Run time \(s\):/     {rt=$4}
    /Queries per second:/ {qps=$4}
    /Average Latency/     {avg=$4}
    /Average packet size:/ {resp=$NF}
    END {
      if (qps=="" || qps+0<=0 || done+0<=0) { printf "error=dnsperf_rc_%s", rc; exit }
      if (rt+0<=0) rt = t1-t0
      cpu_s = (s1-s0)/hz                              # server CPU seconds during the run
      split(c0, a, " "); split(c1, b, " ")
      cli = (b[2]>a[2]) ? 100*(b[1]-a[1])/(b[2]-a[2]) : 0
      qpc = (cpu_s>0) ? done/cpu_s : 0                # = qps / server CPU fraction
      printf "qps=%.0f srv_cpu_pct=%.1f qps_per_core=%.0f avg_ms=%.3f lost=%d sent=%d noerror_pct=%s cli_cpu_pct=%.0f resp_bytes=%d",
        qps, 100*cpu_s/rt, qpc, avg*1000, lost, sent, (np==""?"0":np), cli, resp
    }' "$out")"
  echo "mode=$mode server=$s name=$n run=$r $line" >>"$RESULTS"
  log "mode=$mode server=$s name=$n run=$r $line"
  case "$line" in error=*) tail -n 5 "$out" >&2; die "dnsperf failed against $s ($mode, $n)";; esac
}

if [ "$WARMUP" -gt 0 ]; then
  for s in $ONLY; do
    # shellcheck disable=SC2046
    taskset -c "$CLIENT_CPU" dnsperf $(dnsperf_args max "$(port_of "$s")" "$RUN/queries/static.txt" "$WARMUP") >"$RUN/raw/warmup-$s.txt" 2>&1 &
    CLIENT_PID=$!; wait "$CLIENT_PID"; CLIENT_PID=""
  done
fi

rows=0
for s in $ONLY; do for n in $NAMES; do serves "$s" "$n" && rows=$((rows + 1)); done; done
modes_n=$(wc -w <<<"$MODES")
log "measuring: $rows (server, name) rows x $modes_n modes x $REPEAT runs x ${DUR} s (about $(( (rows * modes_n * REPEAT * (DUR + 3) + 59) / 60 )) min)"
# Interleaved: every (mode, server, name) once per round, so slow drift on a noisy machine
# hits every row alike.
for r in $(seq 1 "$REPEAT"); do
  for mode in $MODES; do
    for s in $ONLY; do
      for n in $NAMES; do
        serves "$s" "$n" || continue
        one_run "$mode" "$s" "$n" "$r"
        sleep 0.5
      done
    done
  done
done

# Nothing may have flipped while measuring.
HEALTH_NOTE=""
if dynamic_wanted; then
  for s in $ONLY; do healthy "$s" || HEALTH_NOTE="$HEALTH_NOTE $s"; done
fi

# --- report ----------------------------------------------------------------------------------------
# med MODE SERVER NAME KEY : median over the runs ("nan" when none)
med() {
  awk -v m="mode=$1" -v s="server=$2" -v n="name=$3" -v k="$4" '
    $1==m && $2==s && $3==n { for (i=5;i<=NF;i++) { split($i,a,"="); if (a[1]==k) print a[2] } }' "$RESULTS" | median
}
# all SERVER NAME KEY : the values of every run of every mode
all() {
  awk -v s="server=$1" -v n="name=$2" -v k="$3" '
    $2==s && $3==n { for (i=5;i<=NF;i++) { split($i,a,"="); if (a[1]==k) print a[2] } }' "$RESULTS"
}
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v=="nan" || v=="") printf "%s", "-"; else printf f, v }'; }
k() { awk -v q="$1" 'BEGIN { if (q % 1000) printf "%.1fk", q/1000; else printf "%dk", q/1000 }'; }
has_mode() { has "$MODES" "$1"; }

echo
echo "DNS over loopback: Meridian and the anchors (gdnsd, Knot DNS, NSD), zone $ZONE, same run"
echo "server on CPU $SERVER_CPU (one worker thread), dnsperf -c $CLIENTS -T 1 -q $OUTSTANDING on CPU $CLIENT_CPU; median of $REPEAT runs x ${DUR} s"
echo "host: $(nproc) CPUs, $(uname -r); $(dnsperf -h 2>&1 | sed -n 's/^Version /dnsperf /p')$(has "$ONLY" gdnsd && gdnsd -h 2>&1 | sed -n 's/^gdnsd version \([^ ]*\).*/; gdnsd \1/p')$(has "$ONLY" knot && knotd -V 2>/dev/null | sed 's/^knotd (Knot DNS), version /; knot /')$(has "$ONLY" nsd && nsd -v 2>&1 | sed -n '1s/^NSD version /; nsd /p')"
echo
printf '%-20s %-26s | %-9s | %-10s | %-26s | %s\n' "" "UDP, max rate" "UDP $(k "$QPS")" "UDP $(k "$LAT_QPS")" "TCP, max rate" "all runs"
printf '%-12s %-7s %9s %6s %9s | %9s | %10s | %9s %6s %9s | %6s %7s %6s\n' \
  server name qps cpu% qps/core cpu% avg_ms qps cpu% qps/core lost noerr% resp_B
for s in $ONLY; do
  for n in $NAMES; do
    serves "$s" "$n" || continue
    printf '%-12s %-7s %9s %6s %9s | %9s | %10s | %9s %6s %9s | %6s %7s %6s\n' "$s" "$n" \
      "$(fmt "$(med max "$s" "$n" qps)" %.0f)" "$(fmt "$(med max "$s" "$n" srv_cpu_pct)" %.1f)" \
      "$(fmt "$(med max "$s" "$n" qps_per_core)" %.0f)" \
      "$(fmt "$(med rate "$s" "$n" srv_cpu_pct)" %.1f)" \
      "$(fmt "$(med latency "$s" "$n" avg_ms)" %.3f)" \
      "$(fmt "$(med tcp "$s" "$n" qps)" %.0f)" "$(fmt "$(med tcp "$s" "$n" srv_cpu_pct)" %.1f)" \
      "$(fmt "$(med tcp "$s" "$n" qps_per_core)" %.0f)" \
      "$(all "$s" "$n" lost | awk '{t+=$1} END {print t+0}')" \
      "$(fmt "$(all "$s" "$n" noerror_pct | sort -g | head -1)" %.2f)" \
      "$(fmt "$(all "$s" "$n" resp_bytes | median)" %.0f)"
  done
done
echo
echo "max: as fast as dnsperf can (the harness tops out near 160 k qps: below ~95 % server CPU compare"
echo "qps/core, not qps); $(k "$QPS"): server CPU at a fixed $QPS qps; $(k "$LAT_QPS"): average latency at"
echo "a fixed $LAT_QPS qps; tcp: dnsperf -m tcp ($CLIENTS connections, many queries each). qps/core = answered"
echo "queries / server CPU seconds. lost: over every run of the row; noerr%: the lowest run; resp_B: response size."

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a!="nan" && b!="nan" && a+0>0 && b+0>0) printf "%.3f", a/b; else print "-" }'; }
# reached MODE SERVER NAME : the fixed-rate runs of the row got at least 98 % of their rate
reached() {
  local want="$QPS"; [ "$1" = latency ] && want="$LAT_QPS"
  awk -v q="$(med "$1" "$2" "$3" qps)" -v w="$want" 'BEGIN { exit !(q != "nan" && q >= 0.98 * w) }'
}
# target FIGURE NAME VALUE OP LIMIT [VOID_REASON] : one line of the targets table
target() {
  local v
  v=$(awk -v x="$3" -v op="$4" -v t="$5" 'BEGIN { if (x=="-" || x=="nan" || x=="") print "-";
    else if (op=="<=") print (x+0 <= t+0 ? "met" : "MISSED"); else print (x+0 >= t+0 ? "met" : "MISSED") }')
  [ -n "${6:-}" ] && [ "$v" != "-" ] && v="void: $6"
  printf '  %-46s %-7s %9s %9s  %s\n' "$1" "$2" "$3" "$4 $5" "$v"
}
in_run() { has "$ONLY" "$1" && serves "$1" "$2" && has "$NAMES" "$2"; }   # in_run SERVER NAME

if has "$ONLY" meridian; then
  echo
  echo "the issue's targets (Meridian, this run)"
  printf '  %-46s %-7s %9s %9s  %s\n' figure name value target verdict
  if has_mode rate; then
    for pair in "gdnsd geo" "nsd static"; do
      read -r a n <<<"$pair"
      in_run meridian "$n" && in_run "$a" "$n" || continue
      void=""; reached rate meridian "$n" && reached rate "$a" "$n" || void="$(k "$QPS") qps not reached"
      target "server cpu% at $(k "$QPS") qps, Meridian / $a" "$n" \
        "$(ratio "$(med rate meridian "$n" srv_cpu_pct)" "$(med rate "$a" "$n" srv_cpu_pct)")" "<=" 1.00 "$void"
    done
  fi
  if has_mode latency; then
    for n in $NAMES; do
      void=""; reached latency meridian "$n" || void="$(k "$LAT_QPS") qps not reached"
      target "avg latency at $(k "$LAT_QPS") qps (ms)" "$n" "$(fmt "$(med latency meridian "$n" avg_ms)" %.3f)" "<=" 0.100 "$void"
    done
  fi
  if has_mode tcp && in_run knot static && in_run meridian static; then
    target "tcp qps/core, Meridian / knot" static "$(ratio "$(med tcp meridian static qps_per_core)" "$(med tcp knot static qps_per_core)")" ">=" 1.00
  fi
  for n in $NAMES; do
    target "lost queries, every run" "$n" "$(all meridian "$n" lost | awk '{t+=$1} END {print t+0}')" "<=" 0
    target "NOERROR %, lowest run" "$n" "$(fmt "$(all meridian "$n" noerror_pct | sort -g | head -1)" %.2f)" ">=" 100
  done

  echo
  echo "ratios, Meridian / anchor (cpu%: lower is better; qps/core: higher is better; latency: lower is better)"
  header=1
  for a in gdnsd nsd knot; do
    for n in static geo wdyn dyn; do
      in_run meridian "$n" && in_run "$a" "$n" || continue
      [ -z "$header" ] || printf '  %-8s %-7s %12s %12s %12s %14s\n' anchor name "cpu%@$(k "$QPS")" "qps/core" "avg_ms@$(k "$LAT_QPS")" "tcp qps/core"
      header=""
      printf '  %-8s %-7s %12s %12s %12s %14s\n' "$a" "$n" \
        "$(ratio "$(med rate meridian "$n" srv_cpu_pct)" "$(med rate "$a" "$n" srv_cpu_pct)")" \
        "$(ratio "$(med max meridian "$n" qps_per_core)" "$(med max "$a" "$n" qps_per_core)")" \
        "$(ratio "$(med latency meridian "$n" avg_ms)" "$(med latency "$a" "$n" avg_ms)")" \
        "$(ratio "$(med tcp meridian "$n" qps_per_core)" "$(med tcp "$a" "$n" qps_per_core)")"
    done
  done
  if has_mode max && has "$NAMES" static; then
    line=""
    for n in geo wdyn dyn; do
      in_run meridian "$n" && line="$line $n $(ratio "$(med max meridian static qps_per_core)" "$(med max meridian "$n" qps_per_core)")"
    done
    [ -z "$line" ] || echo "  Meridian's CPU per query, name / static (1.00: a dynamic answer costs a static one):$line"
  fi
  if has "$ONLY" meridian-rrl && has_mode max; then
    line=""
    for n in $NAMES; do line="$line $n $(ratio "$(med max meridian "$n" qps_per_core)" "$(med max meridian-rrl "$n" qps_per_core)")"; done
    echo "  Meridian's CPU per query, with RRL on (not hit) / without (target <= 1.03):$line"
    grep -q 'rrl: ' "$RUN/meridian-rrl.log" && echo "  WARNING: meridian-rrl limited some responses (see its log): the comparison is void"
  fi
fi

echo
for mode in rate latency; do
  has_mode "$mode" || continue
  for s in $ONLY; do for n in $NAMES; do
    serves "$s" "$n" && ! reached "$mode" "$s" "$n" &&
      echo "WARNING: $s $n got $(med "$mode" "$s" "$n" qps) qps in the $mode mode, not $(k "$([ "$mode" = rate ] && echo "$QPS" || echo "$LAT_QPS")"): that row's figure is not at the fixed rate."
  done; done
done
[ -z "$HEALTH_NOTE" ] || echo "WARNING: after the runs, not every backend was up for:$HEALTH_NOTE (see their logs): rerun."
grep -h -E ' (WARN|ERROR) ' "$RUN"/meridian*.log 2>/dev/null | head -5 | sed 's/^/WARNING: meridian log: /'
echo "Per-run lines: stderr above$([ -n "${KEEP:-}" ] && echo ", and $RESULTS")."
BENCH_OK=1
