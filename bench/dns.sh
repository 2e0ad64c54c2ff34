#!/usr/bin/env bash
# bench/dns.sh [DURATION_SECONDS]
#
# UDP query throughput and server CPU cost of Meridian against Knot DNS, on
# loopback, for a static name and a load-balanced service name.  Self-contained:
# builds Meridian (release), writes a zone and both servers' configs into a
# temp dir under /tmp, starts each server pinned to CPU 1, drives it with
# dnsperf pinned to CPU 0, stops what it started and prints a table.
# See bench/README.md for the method and how to read the figures.
#
# Arguments:
#   DURATION_SECONDS  length of each dnsperf run, 1..600 (default 10)
# Environment (all optional):
#   REPEAT=3          runs per (server, name); the table shows medians
#   QPS=              fixed query rate: passed to dnsperf as -Q N (CPU % is then
#                     the figure to compare); empty = as fast as possible
#   CLIENTS=8         dnsperf -c        OUTSTANDING=100  dnsperf -q
#   MERIDIAN_PORT=15350  KNOT_PORT=15351  MERIDIAN_RRL_PORT=15352  (in 15350-15359)
#   SERVER_CPU=1 CLIENT_CPU=0   CPUs the servers / dnsperf are pinned to
#   WARMUP=2          seconds of unmeasured load per server before the runs (0 = none)
#   SKIP_BUILD=1      use the existing target/release/meridian, don't run cargo
#   ONLY="meridian knot"  servers to measure (ratios need both); meridian-rrl is a
#                     second Meridian with response rate limiting on but never
#                     triggered (a limit of 1,000,000 responses/s per network)
#   RRL=1             adds meridian-rrl to ONLY: the cost of the limiter per query
#   KEEP=1            keep the temp dir (configs, logs, raw dnsperf output)
#
# Safety: traffic goes to 127.0.0.1 only; every load run is bounded by
# dnsperf -l; only the PIDs this script started are ever signalled.
set -u -o pipefail

usage() { sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "dns.sh: $*" >&2; exit 2; }
log() { echo "[dns.sh] $*" >&2; }

case "${1:-}" in -h|--help) usage; exit 0 ;; esac
[ $# -le 1 ] || { usage >&2; exit 2; }

DUR="${1:-10}"
REPEAT="${REPEAT:-3}"
QPS="${QPS:-}"
CLIENTS="${CLIENTS:-8}"
OUTSTANDING="${OUTSTANDING:-100}"
MERIDIAN_PORT="${MERIDIAN_PORT:-15350}"
KNOT_PORT="${KNOT_PORT:-15351}"
SERVER_CPU="${SERVER_CPU:-1}"
CLIENT_CPU="${CLIENT_CPU:-0}"
WARMUP="${WARMUP:-2}"
SKIP_BUILD="${SKIP_BUILD:-}"
ONLY="${ONLY:-meridian knot}"
MERIDIAN_RRL_PORT="${MERIDIAN_RRL_PORT:-15352}"
[ -z "${RRL:-}" ] || [[ " $ONLY " == *" meridian-rrl "* ]] || ONLY="$ONLY meridian-rrl"
KEEP="${KEEP:-}"
HOST=127.0.0.1   # fixed: loopback only

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_uint "$DUR" && [ "$DUR" -ge 1 ] && [ "$DUR" -le 600 ] || die "DURATION_SECONDS must be an integer 1..600 (got '$DUR')"
is_uint "$REPEAT" && [ "$REPEAT" -ge 1 ] && [ "$REPEAT" -le 50 ] || die "REPEAT must be 1..50"
[ -z "$QPS" ] || { is_uint "$QPS" && [ "$QPS" -ge 1 ]; } || die "QPS must be a positive integer"
is_uint "$CLIENTS" && is_uint "$OUTSTANDING" && is_uint "$WARMUP" || die "CLIENTS, OUTSTANDING, WARMUP must be integers"
[ "$WARMUP" -le 60 ] || die "WARMUP must be <= 60"
for p in "$MERIDIAN_PORT" "$KNOT_PORT" "$MERIDIAN_RRL_PORT"; do
  is_uint "$p" && [ "$p" -ge 15350 ] && [ "$p" -le 15359 ] || die "ports must be in 15350-15359 (got $p)"
done
[ "$(printf '%s\n' "$MERIDIAN_PORT" "$KNOT_PORT" "$MERIDIAN_RRL_PORT" | sort -u | wc -l)" = 3 ] \
  || die "MERIDIAN_PORT, KNOT_PORT and MERIDIAN_RRL_PORT must differ"
is_uint "$SERVER_CPU" && is_uint "$CLIENT_CPU" && [ "$SERVER_CPU" != "$CLIENT_CPU" ] || die "SERVER_CPU and CLIENT_CPU must be two different CPU numbers"
for s in $ONLY; do case "$s" in meridian|meridian-rrl|knot) ;; *) die "ONLY: unknown server '$s' (meridian, meridian-rrl, knot)" ;; esac; done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# --- dependencies ----------------------------------------------------------
missing_pkgs=""
need() {  # need COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 || { echo "dns.sh: '$1' not found (Debian package: $2)" >&2; missing_pkgs="$missing_pkgs $2"; }
}
need dnsperf dnsperf
need dig bind9-dnsutils
need taskset util-linux
need ss iproute2
case " $ONLY " in *" knot "*) need knotd knot ;; esac
if [ -n "$missing_pkgs" ]; then
  echo "dns.sh: install the missing tools with:  apt-get install -y$missing_pkgs" >&2
  exit 2
fi
if [ -z "$SKIP_BUILD" ]; then
  command -v cargo >/dev/null 2>&1 || die "cargo not found (install a Rust toolchain, or SKIP_BUILD=1 with a built binary)"
fi
for c in "$SERVER_CPU" "$CLIENT_CPU"; do
  [ "$(cat "/sys/devices/system/cpu/cpu$c/online" 2>/dev/null || echo 1)" = 1 ] && [ -d "/sys/devices/system/cpu/cpu$c" ] \
    || die "CPU $c is not available (needs at least 2 CPUs; set SERVER_CPU/CLIENT_CPU)"
done
CLK_TCK="$(getconf CLK_TCK)"

# --- build -----------------------------------------------------------------
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/meridian"
if [ -z "$SKIP_BUILD" ]; then
  log "building Meridian: cargo build --release"
  (cd "$ROOT" && cargo build --release) >&2 || die "cargo build --release failed (SKIP_BUILD=1 reuses an existing $BIN)"
fi
[ -x "$BIN" ] || die "$BIN not found (build failed or SKIP_BUILD set without a build)"

# --- scratch dir and process bookkeeping -----------------------------------
RUN="$(mktemp -d /tmp/meridian-bench-dns.XXXXXX)"
declare -A SRV_PID=() SRV_START=()
DP_PID=""
FAILED=1

proc_starttime() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }

# stop_server NAME : SIGTERM the PID we recorded (if it is still the same process), then SIGKILL after 8 s
stop_server() {
  local name="$1" pid="${SRV_PID[$1]:-}" i
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null && [ "$(proc_starttime "$pid")" = "${SRV_START[$name]}" ]; then
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  unset "SRV_PID[$name]"
}

cleanup() {
  trap - EXIT INT TERM
  if [ -n "$DP_PID" ] && kill -0 "$DP_PID" 2>/dev/null; then kill -TERM "$DP_PID" 2>/dev/null; wait "$DP_PID" 2>/dev/null; fi
  local s
  for s in "${!SRV_PID[@]}"; do stop_server "$s"; done
  if [ -n "$KEEP" ] || [ "$FAILED" = 1 ]; then
    log "kept scratch dir $RUN (configs, server logs, raw dnsperf output)"
  else
    rm -rf "$RUN"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { [ -n "$(ss -Hlun "sport = :$1" 2>/dev/null)$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# start_server NAME CMD... : start CMD pinned to SERVER_CPU, log to $RUN/NAME.log
start_server() {
  local name="$1"; shift
  taskset -c "$SERVER_CPU" "$@" >"$RUN/$name.log" 2>&1 &
  SRV_PID[$name]=$!
  sleep 0.05
  SRV_START[$name]="$(proc_starttime "${SRV_PID[$name]}")"
}

# wait_ready NAME PORT QNAME : bounded poll (15 s) with dig until NOERROR
wait_ready() {
  local name="$1" port="$2" q="$3" i
  for i in $(seq 1 150); do
    if ! kill -0 "${SRV_PID[$name]}" 2>/dev/null; then
      echo "dns.sh: $name exited during start-up; its log ($RUN/$name.log):" >&2
      tail -n 20 "$RUN/$name.log" >&2; return 1
    fi
    if dig +time=1 +tries=1 +noedns @"$HOST" -p "$port" "$q" A 2>/dev/null | grep -q 'status: NOERROR'; then
      return 0
    fi
    sleep 0.1
  done
  echo "dns.sh: $name on $HOST:$port did not answer $q within 15 s; log: $RUN/$name.log" >&2
  tail -n 20 "$RUN/$name.log" >&2
  return 1
}

# pinned PID : true if every thread of PID may run only on SERVER_CPU
pinned() {
  local t
  for t in /proc/"$1"/task/*; do
    [ "$(awk '/^Cpus_allowed_list/ {print $2}' "$t/status" 2>/dev/null)" = "$SERVER_CPU" ] || return 1
  done
}

# pin_check NAME : force every thread onto SERVER_CPU (Knot pins its UDP workers
# itself with pthread_setaffinity, overriding the inherited mask) and verify it.
pin_check() {
  local name="$1" pid="${SRV_PID[$1]}"
  taskset -a -p -c "$SERVER_CPU" "$pid" >/dev/null 2>&1 || { echo "dns.sh: taskset -a -p failed for $name" >&2; return 1; }
  pinned "$pid" || { echo "dns.sh: $name threads not all on CPU $SERVER_CPU after taskset -a -p" >&2; return 1; }
  log "$name pid $pid: $(ls /proc/"$pid"/task | wc -l) threads, all on CPU $SERVER_CPU"
}

# --- zone and configs --------------------------------------------------------
mkdir -p "$RUN/meridian/zones" "$RUN/knot/zones" "$RUN/knot/run" "$RUN/knot/db" "$RUN/queries" "$RUN/raw"

cat >"$RUN/meridian/zones/bench.test.zone" <<'EOF'
; Benchmark zone, written by bench/dns.sh.
$ORIGIN bench.test.
$TTL 300
@       IN SOA  ns1.bench.test. hostmaster.bench.test. 2024010101 3600 600 604800 60
@       IN NS   ns1.bench.test.
@       IN MX   10 mail.bench.test.
ns1     IN A    127.0.0.1
; the static name measured: one A record
static  IN A    127.0.0.11
www     IN A    127.0.0.12
www     IN AAAA 2001:db8::12
mail    IN A    127.0.0.13
info    IN TXT  "meridian dns benchmark"
EOF
# Knot has no service names: its copy of the zone answers dyn with one static A
# record (the same answer size as Meridian's max_answers = 1 answer).
cp "$RUN/meridian/zones/bench.test.zone" "$RUN/knot/zones/bench.test.zone"
cat >>"$RUN/knot/zones/bench.test.zone" <<'EOF'
; stand-ins for Meridian's service names (Knot only)
dyn     30 IN A 127.0.0.11
geo     30 IN A 127.0.0.11
EOF

cat >"$RUN/meridian/meridian.toml" <<EOF
# Written by bench/dns.sh.
[dns]
listen = ["$HOST:$MERIDIAN_PORT"]
zones = "zones"

[pools.p1]
members = [ { address = "127.0.0.11" }, { address = "127.0.0.12" }, { address = "127.0.0.13" }, { address = "127.0.0.14" } ]

[services."dyn.bench.test."]
pools = ["p1"]
steering = "failover"
select = "weighted"
max_answers = 1
ttl = 30

# geo + weighted over three sites; dnsperf asks from 127.0.0.1, which the sample database
# places in London, so every query is located (a GeoIP lookup) and steered to p1.
[geo]
database = "$ROOT/geo-data/sample.mmdb"

[pools.p2]
continent = "NA"
members = [ { address = "127.0.0.21" }, { address = "127.0.0.22" } ]

[pools.p3]
continent = "AS"
members = [ { address = "127.0.0.31" }, { address = "127.0.0.32" } ]

[services."geo.bench.test."]
pools = ["p2", "p3", "p1"]
steering = "geo"
select = "weighted"
max_answers = 1
ttl = 30

[services."geo.bench.test.".map]
continents = { EU = ["p1", "p2"] }
EOF

# The same with response rate limiting on, at a limit dnsperf (one source address) never
# reaches: every query pays for the check, none is limited.
mkdir -p "$RUN/meridian-rrl"
sed "s/^listen = .*/listen = [\"$HOST:$MERIDIAN_RRL_PORT\"]/; s|^zones = \"zones\"|zones = \"$RUN/meridian/zones\"|" \
  "$RUN/meridian/meridian.toml" >"$RUN/meridian-rrl/meridian.toml"
cat >>"$RUN/meridian-rrl/meridian.toml" <<EOF

[dns.rrl]
responses_per_second = 1000000
burst = 1000000
EOF

cat >"$RUN/knot/knot.conf" <<EOF
# Written by bench/dns.sh.  One worker of each kind, like Meridian on one core.
server:
    rundir: "$RUN/knot/run"
    listen: $HOST@$KNOT_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

log:
  - target: stderr
    any: warning

database:
    storage: "$RUN/knot/db"

template:
  - id: default
    storage: "$RUN/knot/zones"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off

zone:
  - domain: bench.test
EOF

echo "static.bench.test A" >"$RUN/queries/static.txt"
echo "dyn.bench.test A" >"$RUN/queries/service.txt"
echo "geo.bench.test A" >"$RUN/queries/geo.txt"
NAMES="static service geo"
qname_of() { case "$1" in static) echo static.bench.test ;; service) echo dyn.bench.test ;; geo) echo geo.bench.test ;; esac; }
port_of() { case "$1" in meridian) echo "$MERIDIAN_PORT" ;; meridian-rrl) echo "$MERIDIAN_RRL_PORT" ;; knot) echo "$KNOT_PORT" ;; esac; }

# --- start servers -----------------------------------------------------------
for s in $ONLY; do
  port="$(port_of "$s")"
  port_busy "$port" && die "port $port is already in use (pick another in 15350-15359 with ${s^^}_PORT=)"
done

for s in $ONLY; do
  case "$s" in
    meridian|meridian-rrl)
      "$BIN" check --config "$RUN/$s/meridian.toml" >"$RUN/$s-check.log" 2>&1 \
        || { cat "$RUN/$s-check.log" >&2; die "meridian check rejected the generated config ($s)"; }
      # taskset -c 1 gives tokio one worker thread (its default is one per usable core);
      # TOKIO_WORKER_THREADS=1 says so explicitly.
      start_server "$s" env TOKIO_WORKER_THREADS=1 RUST_LOG=info "$BIN" serve --config "$RUN/$s/meridian.toml"
      ;;
    knot)
      start_server knot knotd -c "$RUN/knot/knot.conf"
      ;;
  esac
  wait_ready "$s" "$(port_of "$s")" static.bench.test || exit 1
  pin_check "$s" || exit 1
done
if [[ " $ONLY " == *" meridian "* ]]; then
  grep -q "listening for dns-udp on $HOST:$MERIDIAN_PORT" "$RUN/meridian.log" \
    || log "warning: Meridian answered but did not log 'listening for dns-udp on $HOST:$MERIDIAN_PORT'"
fi

# --- answer check: right address, one A record, response size (no EDNS, like dnsperf) ---
for s in $ONLY; do
  for n in $NAMES; do
    q="$(qname_of "$n")"
    out="$(dig +time=2 +tries=1 +noedns @"$HOST" -p "$(port_of "$s")" "$q" A)"
    status="$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")"
    answers="$(awk '/^;; ANSWER SECTION/ {f=1; next} /^$/ {f=0} f && $4=="A" {print $5}' <<<"$out")"
    bytes="$(sed -n 's/.*MSG SIZE  rcvd: \([0-9]*\).*/\1/p' <<<"$out")"
    n_ans="$(grep -c . <<<"$answers")"
    [ "$status" = NOERROR ] && [ "$n_ans" = 1 ] && [[ "$answers" =~ ^127\.0\.0\.1[1-4]$ ]] \
      || { echo "$out" >&2; die "$s: unexpected answer for $q A (status=$status answers=$(echo $answers))"; }
    log "$s $q A -> $answers (status $status, $bytes bytes)"
  done
done

# --- measurement ---------------------------------------------------------------
# server CPU ticks: utime + stime of the whole process (all threads), /proc/PID/stat fields 14+15
srv_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# busy jiffies of one CPU from /proc/stat: "busy total"
cpu_snap() { awk -v c="cpu$1" '$1==c {b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6}' /proc/stat; }
now() { date +%s.%N; }

dnsperf_args() {  # dnsperf_args PORT QUERYFILE DURATION
  local a=(-s "$HOST" -p "$1" -d "$2" -l "$3" -c "$CLIENTS" -T 1 -q "$OUTSTANDING" -t 2)
  [ -n "$QPS" ] && a+=(-Q "$QPS")
  echo "${a[@]}"
}

RESULTS="$RUN/runs.txt"; : >"$RESULTS"

# one_run SERVER NAME R : one dnsperf run, appends a key=value line to $RESULTS
one_run() {
  local s="$1" n="$2" r="$3" pid="${SRV_PID[$1]}" port out s0 s1 t0 t1 c0 c1 rc line
  port="$(port_of "$s")"; out="$RUN/raw/$s-$n-$r.txt"
  kill -0 "$pid" 2>/dev/null || die "$s (pid $pid) is no longer running; log: $RUN/$s.log"
  pinned "$pid" || die "$s (pid $pid) has threads outside CPU $SERVER_CPU: $(grep -H Cpus_allowed_list /proc/"$pid"/task/*/status | tr '\n' ' ')"
  s0="$(srv_ticks "$pid")"; c0="$(cpu_snap "$CLIENT_CPU")"; t0="$(now)"
  # shellcheck disable=SC2046
  taskset -c "$CLIENT_CPU" dnsperf $(dnsperf_args "$port" "$RUN/queries/$n.txt" "$DUR") >"$out" 2>&1 &
  DP_PID=$!
  wait "$DP_PID"; rc=$?; DP_PID=""
  t1="$(now)"; c1="$(cpu_snap "$CLIENT_CPU")"; s1="$(srv_ticks "$pid")"
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
      cpu = cpu_s/rt                                  # fraction of one core while dnsperf ran
      split(c0, a, " "); split(c1, b, " ")
      cli = (b[2]>a[2]) ? 100*(b[1]-a[1])/(b[2]-a[2]) : 0
      qpc = (cpu_s>0) ? done/cpu_s : 0                # = qps / cpu fraction
      us  = 1e6*cpu_s/done                            # server CPU microseconds per answered query
      printf "qps=%.0f srv_cpu_pct=%.1f qps_per_core=%.0f cpu_us_per_q=%.3f avg_ms=%.3f lost=%d sent=%d noerror_pct=%s cli_cpu_pct=%.0f resp_bytes=%d",
        qps, 100*cpu, qpc, us, avg*1000, lost, sent, (np==""?"0":np), cli, resp
    }' "$out")"
  echo "server=$s name=$n run=$r $line" >>"$RESULTS"
  log "server=$s name=$n run=$r $line"
  case "$line" in error=*) tail -n 5 "$out" >&2; die "dnsperf failed against $s ($n)";; esac
}

if [ "$WARMUP" -gt 0 ]; then
  for s in $ONLY; do
    # shellcheck disable=SC2046
    taskset -c "$CLIENT_CPU" dnsperf $(dnsperf_args "$(port_of "$s")" "$RUN/queries/service.txt" "$WARMUP") >"$RUN/raw/warmup-$s.txt" 2>&1 &
    DP_PID=$!; wait "$DP_PID"; DP_PID=""
  done
fi

n_srv=$(wc -w <<<"$ONLY")
log "measuring: $n_srv server(s) x 2 names x $REPEAT runs x ${DUR} s$([ -n "$QPS" ] && echo " at -Q $QPS")"
# Interleaved (round-robin) so slow drift on a noisy machine hits every row alike.
for r in $(seq 1 "$REPEAT"); do
  for s in $ONLY; do
    for n in $NAMES; do
      one_run "$s" "$n" "$r"
      sleep 0.5
    done
  done
done

# --- report ----------------------------------------------------------------------
# med SERVER NAME KEY : median over the runs (mean of the middle two for an even count)
med() {
  awk -v s="$1" -v n="$2" -v k="$3" '
    $1=="server="s && $2=="name="n { for (i=3;i<=NF;i++) { split($i,a,"="); if (a[1]==k) print a[2] } }' "$RESULTS" |
  sort -g | awk '{v[NR]=$1} END { if (NR==0) {print "nan"; exit}
    if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0>0 && b+0>0) printf "%.3f", a/b; else print "n/a" }'; }

mode="max rate (no -Q)"; [ -n "$QPS" ] && mode="fixed rate -Q $QPS: compare server CPU %"
echo
echo "Meridian vs Knot DNS, UDP on $HOST; $mode"
echo "dnsperf $(dnsperf_args PORT QUERYFILE "$DUR") on CPU $CLIENT_CPU; server on CPU $SERVER_CPU; median of $REPEAT runs x ${DUR} s"
echo "host: $(nproc) CPUs, $(uname -r); $(dnsperf -h 2>&1 | sed -n 's/^Version /dnsperf /p'); $(knotd -V 2>/dev/null | sed 's/^knotd (Knot DNS), version /knot /')"
echo
printf '%-12s %-8s %-20s %9s %9s %11s %10s %8s %7s %7s %9s %6s\n' \
  server name query qps srv_cpu% qps/core cpu_us/q avg_ms lost noerr% client% resp_B
for s in $ONLY; do
  for n in $NAMES; do
    printf '%-12s %-8s %-20s %9.0f %9.1f %11.0f %10.3f %8.3f %7.0f %7.2f %9.0f %6.0f\n' \
      "$s" "$n" "$(qname_of "$n") A" "$(med "$s" "$n" qps)" "$(med "$s" "$n" srv_cpu_pct)" \
      "$(med "$s" "$n" qps_per_core)" "$(med "$s" "$n" cpu_us_per_q)" "$(med "$s" "$n" avg_ms)" \
      "$(med "$s" "$n" lost)" "$(med "$s" "$n" noerror_pct)" "$(med "$s" "$n" cli_cpu_pct)" "$(med "$s" "$n" resp_bytes)"
  done
done
echo
echo "ratios (from the medians above):"
if [[ " $ONLY " == *" meridian "* && " $ONLY " == *" knot "* ]]; then
  echo "  qps/core     Meridian / Knot, static name:   $(ratio "$(med meridian static qps_per_core)" "$(med knot static qps_per_core)")"
  echo "  qps/core     Meridian / Knot, service name:  $(ratio "$(med meridian service qps_per_core)" "$(med knot service qps_per_core)")"
  echo "  qps/core     Meridian / Knot, geo name:      $(ratio "$(med meridian geo qps_per_core)" "$(med knot geo qps_per_core)")"
fi
if [[ " $ONLY " == *" meridian "* && " $ONLY " == *" meridian-rrl "* ]]; then
  for n in $NAMES; do
    echo "  CPU/query    Meridian with RRL (not triggered) / without, $n name: $(ratio "$(med meridian-rrl "$n" cpu_us_per_q)" "$(med meridian "$n" cpu_us_per_q)") (target <= 1.03)"
  done
  grep -q 'rrl: ' "$RUN/meridian-rrl.log" && echo "WARNING: meridian-rrl limited some responses (see $RUN/meridian-rrl.log): the comparison is void"
fi
if [[ " $ONLY " == *" meridian "* ]]; then
  echo "  CPU/query    Meridian service / Meridian static: $(ratio "$(med meridian service cpu_us_per_q)" "$(med meridian static cpu_us_per_q)")"
  echo "  CPU/query    Meridian geo+weighted / Meridian static: $(ratio "$(med meridian geo cpu_us_per_q)" "$(med meridian static cpu_us_per_q)") (target <= 1.15)"
fi
if [[ " $ONLY " == *" knot "* ]]; then
  echo "  CPU/query    Knot dyn / Knot static (noise floor): $(ratio "$(med knot service cpu_us_per_q)" "$(med knot static cpu_us_per_q)")"
fi
echo
echo "qps/core = qps / (server CPU fraction); cpu_us/q = server CPU microseconds per answered query;"
echo "client% = busy share of CPU $CLIENT_CPU (dnsperf)."
if [ -n "$QPS" ]; then
  echo "Fixed rate: every row was asked for $QPS qps; compare srv_cpu% (lower = cheaper answers)."
  for s in $ONLY; do for n in $NAMES; do
    awk -v q="$(med "$s" "$n" qps)" -v cap="$QPS" 'BEGIN { exit !(q < 0.98*cap) }' &&
      echo "WARNING: $s $n reached only $(med "$s" "$n" qps) of $QPS qps: the rate is above its limit (or the client's); lower QPS."
  done; done
else
  echo "With the server below ~95 % CPU the run is client-bound: compare qps/core and cpu_us/q, not raw qps."
fi
echo "Per-run lines: stderr above$([ -n "$KEEP" ] && echo ", and $RESULTS")."

FAILED=0
exit 0
