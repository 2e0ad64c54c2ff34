# Shared helpers for the bench/ scripts (sourced, not run).

# Messages and arguments, named after the script that sources this file.
BENCH_SCRIPT=$(basename "$0")
die() { echo "$BENCH_SCRIPT: $*" >&2; exit 2; }
log() { echo "[$BENCH_SCRIPT] $*" >&2; }
# bench_args MAX "$@" : -h/--help prints the script's header comment and exits; more than MAX
# arguments print it to stderr and exit 2.
bench_args() {
  local max="$1"; shift
  case "${1:-}" in -h|--help) bench_usage; exit 0 ;; esac
  [ $# -le "$max" ] || { bench_usage >&2; exit 2; }
}
bench_usage() { awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; }

# Creates $WORK (a temp dir named after the benchmark) and $PIDS; on exit, signals only the
# PIDs the script recorded in PIDS and removes $WORK unless KEEP is set.
bench_workdir() {
  WORK=$(mktemp -d "/tmp/meridian-bench-$1.XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}

# Median of the numbers on stdin, one per line ("nan" when there are none).
median() {
  sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'
}

# Builds Meridian (unless SKIP_BUILD is set) and sets BIN to the release binary; works from any
# directory.
bench_binary() {
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [ -z "${SKIP_BUILD:-}" ]; then (cd "$root" && cargo build --release --quiet) || exit 2; fi
  BIN=$(realpath -m "${CARGO_TARGET_DIR:-$root/target}/release/meridian")
  [ -x "$BIN" ] || { echo "$BIN not found (SKIP_BUILD=1 needs a built binary)" >&2; exit 2; }
}

# Writes DIR/bench.test.zone: SOA, NS and ns1, the names every benchmark config builds on.
bench_zone() {
  cat > "$1/bench.test.zone" <<ZONE
\$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 60
@ NS ns1
ns1 A 127.0.0.1
ZONE
}

# The unmonitored pool `web` (members 127.0.0.11-14) and the service dyn.bench.test. (one
# member by weight), as TOML for a config beside bench_zone's zone (metrics.sh, dnstap.sh).
bench_dyn_service() {
  cat <<'TOML'
[pools.web]
members = [{ address = "127.0.0.11" }, { address = "127.0.0.12" }, { address = "127.0.0.13" }, { address = "127.0.0.14" }]

[services."dyn.bench.test."]
pools = ["web"]
select = "weighted"
max_answers = 1
TOML
}

# proc_ticks PID : CPU time (utime + stime, clock ticks) of the process, all its threads.
proc_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# Starts `meridian serve` on CONFIG with one tokio worker pinned to CPU 1, logging to LOG; sets
# SRV to its PID (recorded in PIDS) and waits at most 10 s for its "listening for dns-udp" line.
bench_serve() { # CONFIG LOG
  TOKIO_WORKER_THREADS=1 taskset -c 1 "$BIN" serve --config "$1" 2>"$2" &
  SRV=$!; PIDS+=("$SRV")
  for _ in $(seq 1 100); do grep -q "listening for dns-udp" "$2" && return 0; sleep 0.1; done
  echo "Meridian did not start" >&2; cat "$2" >&2; exit 1
}

# --- Servers under test (dns.sh, zone-load.sh, profile.sh) ------------------------------------
# A script calls bench_rundir first. Every process it starts with srv_start is recorded by name
# with its kernel start time; cleanup signals only recorded processes, and only while the PID
# still belongs to the process that was started, so a reused PID is never hit.

declare -A SRV_PID=() SRV_START=()
CLIENT_PID=""   # a load generator running in the background, stopped by the cleanup too

# bench_rundir NAME : creates RUN=/tmp/meridian-bench-NAME.XXXXXX and the EXIT trap that stops
# every recorded process and removes RUN, unless KEEP is set or the script did not reach
# `BENCH_OK=1` (then RUN is kept for its logs).
bench_rundir() {
  RUN=$(mktemp -d "/tmp/meridian-bench-$1.XXXXXX")
  BENCH_OK=0
  trap bench_rundir_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_rundir_cleanup() {
  trap - EXIT INT TERM
  if [ -n "$CLIENT_PID" ] && kill -0 "$CLIENT_PID" 2>/dev/null; then
    kill -TERM "$CLIENT_PID" 2>/dev/null; wait "$CLIENT_PID" 2>/dev/null
  fi
  local s
  for s in "${!SRV_PID[@]}"; do srv_stop "$s"; done
  if [ -n "${KEEP:-}" ] || [ "$BENCH_OK" != 1 ]; then
    log "kept $RUN (configs, logs, raw output)"
  else
    rm -rf "$RUN"
  fi
}

proc_starttime() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }

# srv_start NAME CPU CMD... : runs CMD in the background pinned to CPU ("-": not pinned),
# output to $RUN/NAME.log, and records it.
srv_start() {
  local name="$1" cpu="$2"; shift 2
  if [ "$cpu" = - ]; then
    "$@" >"$RUN/$name.log" 2>&1 &
  else
    taskset -c "$cpu" "$@" >"$RUN/$name.log" 2>&1 &
  fi
  SRV_PID[$name]=$!
  SRV_START[$name]=$(proc_starttime "$!")
}

# srv_alive NAME : the recorded process is still the one that was started.
srv_alive() {
  local pid="${SRV_PID[$1]:-}"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(proc_starttime "$pid")" = "${SRV_START[$1]}" ]
}

# srv_stop NAME : SIGTERM, then SIGKILL after 8 s; forgets the record.
srv_stop() {
  local name="$1" pid="${SRV_PID[$1]:-}"
  [ -n "$pid" ] || return 0
  if srv_alive "$name"; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  unset "SRV_PID[$name]" "SRV_START[$name]"
}

# srv_tree NAME : the recorded PID and its descendants (NSD forks its server processes).
srv_tree() {
  local queue=("${SRV_PID[$1]:-}") p
  while [ ${#queue[@]} -gt 0 ]; do
    p="${queue[0]}"; queue=("${queue[@]:1}")
    [ -n "$p" ] && [ -d "/proc/$p" ] || continue
    echo "$p"
    # shellcheck disable=SC2207
    queue+=($(pgrep -P "$p"))
  done
}

# srv_ticks NAME [FIELDS] : CPU time (clock ticks) of the process tree, all threads: utime +
# stime, or with FIELDS=user the user-space part only (utime; the rest is the kernel's).
srv_ticks() {
  local p t=0 expr='$12 + $13'
  [ "${2:-}" = user ] && expr='$12'
  for p in $(srv_tree "$1"); do
    t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk "{s = $expr} END {print s + 0}")))
  done
  echo "$t"
}
# srv_uticks NAME : the user-space part of srv_ticks.
srv_uticks() { srv_ticks "$1" user; }

# srv_pinned NAME CPU : every thread of the tree may run only on CPU.
srv_pinned() {
  local p t
  for p in $(srv_tree "$1"); do
    for t in /proc/"$p"/task/*; do
      [ "$(awk '/^Cpus_allowed_list/ {print $2}' "$t/status" 2>/dev/null)" = "$2" ] || return 1
    done
  done
}

# srv_pin NAME CPU : forces every thread of the tree onto CPU (Knot pins its UDP workers itself
# with pthread_setaffinity, overriding the mask it inherited) and checks.
srv_pin() {
  local p
  for p in $(srv_tree "$1"); do taskset -a -p -c "$2" "$p" >/dev/null 2>&1; done
  srv_pinned "$1" "$2" || { echo "$1: threads not all on CPU $2 after taskset -a -p" >&2; return 1; }
}

# wait_answer NAME PORT QNAME SECONDS [REGEX] : polls with dig (UDP, no EDNS) every 50 ms until
# NAME answers QNAME A with NOERROR (and an answer line matching REGEX); fails when the process
# exits or time runs out.
wait_answer() {
  local name="$1" port="$2" q="$3" re="${5:-}" out end=$((SECONDS + $4))
  while [ "$SECONDS" -lt "$end" ]; do
    srv_alive "$name" || { echo "$name exited; its log ($RUN/$name.log):" >&2; tail -n 20 "$RUN/$name.log" >&2; return 1; }
    out=$(dig +time=1 +tries=1 +noedns @127.0.0.1 -p "$port" "$q" A 2>/dev/null)
    if grep -q 'status: NOERROR' <<<"$out" && { [ -z "$re" ] || grep -Eq "$re" <<<"$out"; }; then return 0; fi
    sleep 0.05
  done
  echo "$name on 127.0.0.1:$port did not answer $q within $4 s; log: $RUN/$name.log" >&2
  tail -n 20 "$RUN/$name.log" >&2
  return 1
}

# port_busy PORT : something listens on PORT (UDP or TCP).
port_busy() { [ -n "$(ss -Hlun "sport = :$1" 2>/dev/null)$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# check_ports LOW HIGH PORT... : each port in LOW..HIGH, all different, none in use.
check_ports() {
  local lo="$1" hi="$2" p; shift 2
  for p in "$@"; do
    [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge "$lo" ] && [ "$p" -le "$hi" ] || { echo "ports must be in $lo-$hi (got $p)" >&2; exit 2; }
    port_busy "$p" && { echo "port $p is already in use" >&2; exit 2; }
  done
  [ "$(printf '%s\n' "$@" | sort -u | wc -l)" = $# ] || { echo "ports must differ: $*" >&2; exit 2; }
}

# need COMMAND PACKAGE... : notes a missing tool; need_done exits with the apt-get line if any.
MISSING_PKGS=""
need() { command -v "$1" >/dev/null 2>&1 || { echo "'$1' not found (Debian package: $2)" >&2; MISSING_PKGS="$MISSING_PKGS $2"; }; }
need_done() {
  [ -z "$MISSING_PKGS" ] || { echo "install the missing tools with:  apt-get install -y$MISSING_PKGS" >&2; exit 2; }
}

# knot_conf DIR PORT ZONEDIR ZONE : DIR/knot.conf serving ZONEDIR/ZONE.zone on 127.0.0.1:PORT
# with one UDP, one TCP and one background worker (as the anchors ran it).
knot_conf() {
  mkdir -p "$1/run" "$1/db"
  cat >"$1/knot.conf" <<CONF
# Written by bench/$BENCH_SCRIPT. One worker of each kind, like Meridian on one core.
server:
    rundir: "$1/run"
    listen: 127.0.0.1@$2
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

log:
  - target: stderr
    any: warning

database:
    storage: "$1/db"

template:
  - id: default
    storage: "$3"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off

zone:
  - domain: $4
CONF
}

# nsd_conf DIR PORT ZONEDIR ZONE : DIR/nsd.conf serving ZONEDIR/ZONE.zone on 127.0.0.1:PORT with
# one server process, response rate limiting off (Debian's NSD has it on), no database file and
# minimal responses (no authority and additional records in positive answers, like the others).
nsd_conf() {
  mkdir -p "$1"
  cat >"$1/nsd.conf" <<CONF
# Written by bench/$BENCH_SCRIPT. One server process, like Meridian on one core.
server:
    server-count: 1
    ip-address: 127.0.0.1@$2
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "$3"
    database: ""
    zonelistfile: "$1/zone.list"
    xfrdfile: "$1/xfrd.state"
    xfrdir: "$1"
    pidfile: "$1/nsd.pid"
    logfile: "$1/nsd.log"
    verbosity: 0
    hide-version: yes
    tcp-count: 100
    minimal-responses: yes
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0

remote-control:
    control-enable: no

zone:
    name: $4
    zonefile: $4.zone
CONF
}

# --- The benchmark zone and services (dns.sh, profile.sh) --------------------------------------
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BACKENDS="127.0.0.11 127.0.0.12 127.0.0.13 127.0.0.14"

# gslb_zone FILE : the anchors' zone gslb.test. (the static names every server serves).
gslb_zone() {
  cat >"$1" <<'ZONE'
; Benchmark zone gslb.test. (the anchors' zone), written by a bench/ script.
$ORIGIN gslb.test.
$TTL 300
@       IN SOA  ns1.gslb.test. hostmaster.gslb.test. 2024010101 3600 600 604800 60
@       IN NS   ns1.gslb.test.
ns1     IN A    127.0.0.1
ns1     IN AAAA ::1
; the static name measured: static A (two records)
static  IN A    192.0.2.10
static  IN A    192.0.2.11
static  IN AAAA 2001:db8::10
www     IN A    192.0.2.20
www     IN AAAA 2001:db8::20
mail    IN A    192.0.2.25
@       IN MX   10 mail.gslb.test.
; a CNAME out of the zone, to compare a hostname service with (bench/profile.sh)
alias   IN CNAME cdn.example.net.
ZONE
}

# gslb_meridian_conf FILE DNS_PORT HTTP_PORT ZONEDIR BACKEND_PORT INTERVAL : a Meridian config
# with one DNS worker serving ZONEDIR and the three health-checked services of the benchmark
# (dyn, wdyn, geo in gslb.test.; members 127.0.0.11-14, GET /health on BACKEND_PORT every
# INTERVAL), equivalent to gdnsd's resources in bench/dns.sh.
gslb_meridian_conf() {
  cat >"$1" <<CONF
# Written by a bench/ script.
[dns]
listen = ["127.0.0.1:$2"]
zones = "$4"
workers = 1

[http]
listen = "127.0.0.1:$3"

[geo]
database = "$BENCH_ROOT/geo-data/sample.mmdb"
${GEO_PRECOMPUTE:+precompute = $GEO_PRECOMPUTE}

[monitors.web]
type = "http"
path = "/health"
port = $5
interval = "$6"
timeout = "1s"
rise = 2
fall = 2

# dyn: every healthy member (gdnsd: multifo)
[pools.all]
monitor = "web"
members = [ { address = "127.0.0.11" }, { address = "127.0.0.12" }, { address = "127.0.0.13" }, { address = "127.0.0.14" } ]

[services."dyn.gslb.test."]
pools = ["all"]
steering = "failover"
select = "all"
ttl = 30

# wdyn: one member drawn by weight (gdnsd: weighted)
[pools.w]
monitor = "web"
members = [ { address = "127.0.0.11", weight = 40 }, { address = "127.0.0.12", weight = 30 },
            { address = "127.0.0.13", weight = 20 }, { address = "127.0.0.14", weight = 10 } ]

[services."wdyn.gslb.test."]
pools = ["w"]
steering = "failover"
select = "weighted"
max_answers = 1
ttl = 30

# cname: a hostname pool, one CNAME drawn by weight (gdnsd: DYNC); unmonitored
[pools.cdn]
members = [ { cname = "eu.cdn.example.net." }, { cname = "us.cdn.example.net." } ]

[services."cname.gslb.test."]
pools = ["cdn"]
select = "weighted"
ttl = 30

$(gslb_geo_service 'monitor = "web"')
CONF
}

# gslb_geo_service MONITOR_LINE : the benchmark's geo service and its two pools (the pools'
# monitor line as given, or none).
gslb_geo_service() {
  cat <<CONF
# geo: the client's network orders the pools, then one member by weight (gdnsd: a geoip
# resource, nets only, whose datacenters are weighted resources). A client in 127.0.0.0/8 gets
# dc-a first. The continents decide for clients outside the map (located in the GeoIP database).
[pools.dc-a]
$1
continent = "EU"
members = [ { address = "127.0.0.11", weight = 60 }, { address = "127.0.0.12", weight = 40 } ]

[pools.dc-b]
$1
continent = "NA"
members = [ { address = "127.0.0.13", weight = 60 }, { address = "127.0.0.14", weight = 40 } ]

[services."geo.gslb.test."]
pools = ["dc-a", "dc-b"]
steering = "geo"
select = "weighted"
max_answers = 1
ttl = 30

[services."geo.gslb.test.".map]
nets = { "127.0.0.0/8" = ["dc-a", "dc-b"], "10.0.0.0/8" = ["dc-b", "dc-a"], "192.0.2.0/24" = ["dc-b", "dc-a"] }
CONF
}

# meridian_healthy HTTP_PORT : Meridian's API says it is ready and every member is up.
meridian_healthy() {
  curl -s -m 2 "http://127.0.0.1:$1/api/v1/status" | python3 -c '
import json, sys
d = json.load(sys.stdin)
m = [x for p in d["pools"] for x in p["members"]]
sys.exit(0 if d["ready"] and m and all(x["state"] == "up" for x in m) else 1)' 2>/dev/null
}

# backends_need : notes the tools backends_start and meridian_healthy use (see need).
backends_need() { need nginx nginx-light; need curl curl; need python3 python3; }

# backends_start PORT CPU : one nginx process (recorded as "nginx", pinned to CPU) answering
# GET /health with "ok" on every address of BACKENDS at PORT; waits until each does.
backends_start() {
  local b i
  mkdir -p "$RUN/nginx"
  {
    cat <<CONF
# Written by bench/$BENCH_SCRIPT: the health-check backends.
daemon off;
master_process off;
worker_processes 1;
error_log $RUN/nginx/error.log warn;
pid $RUN/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $RUN/nginx/body;
  proxy_temp_path $RUN/nginx/proxy;
  fastcgi_temp_path $RUN/nginx/fastcgi;
  uwsgi_temp_path $RUN/nginx/uwsgi;
  scgi_temp_path $RUN/nginx/scgi;
  server {
CONF
    for b in $BACKENDS; do echo "    listen $b:$1;"; done
    cat <<'CONF'
    location = /health { return 200 "ok\n"; }
  }
}
CONF
  } >"$RUN/nginx/nginx.conf"
  srv_start nginx "$2" nginx -e "$RUN/nginx/early.log" -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf"
  for b in $BACKENDS; do
    for i in $(seq 1 100); do
      [ "$(curl -s -m 1 "http://$b:$1/health")" = ok ] && break
      [ "$i" = 100 ] && { echo "backend $b:$1 does not answer; log: $RUN/nginx/error.log" >&2; return 1; }
      sleep 0.1
    done
  done
}
