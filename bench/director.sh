#!/usr/bin/env bash
# bench/director.sh [DURATION_SECONDS]
#
# Meridian's TCP director against HAProxy (mode tcp) on loopback, side by side in
# the same run: keep-alive HTTP requests/s, new connections/s (Connection: close)
# and bulk TCP Gbit/s, each also straight to the backend for the harness ceiling.
# Both proxies run one thread pinned to CPU 1 in front of the same backends (one
# single-process nginx on three loopback addresses, an iperf3 server); wrk and
# iperf3 run on CPU 0. Figures are medians of REPEAT short runs; "per core" is
# the figure divided by the proxy's CPU share during the run (/proc/PID/stat).
#
# Arguments:
#   DURATION_SECONDS  length of each load run, 1..60 (default 5)
# Environment (all optional):
#   REPEAT=3       runs per (test, target)
#   CONNS=50       wrk connections (keep-alive and close tests)
#   TESTS="keepalive close bulk"   which tests to run
#   SCHEDULER=rr   Meridian's scheduler for the web director (compare leastconn and wlc:
#                  SCHEDULER=leastconn TESTS=close, then SCHEDULER=wlc TESTS=close;
#                  SCHEDULER=fastest also times each first byte)
#   SPLICE=        1: HAProxy also gets 'option splice-auto' (its faster bulk mode)
#   SKIP_BUILD=1   use the existing target/release/meridian
#   KEEP=1         keep the temp dir (configs, logs, raw tool output)
#
# Ports 15380-15389 on 127.0.0.0/8 only; every run is bounded in time; only the
# PIDs this script started are signalled.
set -u -o pipefail

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "director.sh: $*" >&2; exit 2; }
log() { echo "[director.sh] $*" >&2; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
[ $# -le 1 ] || { usage >&2; exit 2; }

DUR="${1:-5}"; REPEAT="${REPEAT:-3}"; CONNS="${CONNS:-50}"
SCHEDULER="${SCHEDULER:-rr}"; SPLICE="${SPLICE:-}"; SKIP_BUILD="${SKIP_BUILD:-}"; KEEP="${KEEP:-}"
SERVER_CPU=1; CLIENT_CPU=0
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_uint "$DUR" && [ "$DUR" -ge 1 ] && [ "$DUR" -le 60 ] || die "DURATION_SECONDS must be 1..60"
is_uint "$REPEAT" && [ "$REPEAT" -ge 1 ] && [ "$REPEAT" -le 20 ] || die "REPEAT must be 1..20"
is_uint "$CONNS" && [ "$CONNS" -ge 1 ] && [ "$CONNS" -le 1000 ] || die "CONNS must be 1..1000"
case "$SCHEDULER" in rr|wrr|leastconn|source-hash|random2|wlc|sed|nq|fastest) ;; *) die "SCHEDULER: unknown scheduler '$SCHEDULER'" ;; esac
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs"

# Ports (all on loopback).
BACKEND_PORT=15380     # nginx on 127.0.0.11-13
IPERF_PORT=15381       # iperf3 server on 127.0.0.1
MERIDIAN_DNS=15382     # Meridian's DNS (needed by its config; unused here)
MERIDIAN_WEB=15383; MERIDIAN_BULK=15384
HAPROXY_WEB=15385; HAPROXY_BULK=15386

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/bench/lib.sh"

missing=""
for t in wrk:wrk iperf3:iperf3 nginx:nginx-light haproxy:haproxy taskset:util-linux ss:iproute2 curl:curl; do
  command -v "${t%%:*}" >/dev/null 2>&1 || missing="$missing ${t#*:}"
done
[ -z "$missing" ] || die "missing tools; install them with:  apt-get install -y$missing"
for p in $(seq 15380 15389); do
  ss -Hltn "sport = :$p" | grep -q . && die "port $p is already in use"
done

if [ -z "$SKIP_BUILD" ]; then
  log "building Meridian (release)"
  (cd "$ROOT" && cargo build --release --quiet) || die "cargo build failed"
fi
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/meridian"
[ -x "$BIN" ] || die "no binary at $BIN"

bench_workdir director
CLK_TCK=$(getconf CLK_TCK)
STARTED=()   # "pid:starttime" of every process started here

starttime() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }
# start NAME CPU CMD...: runs CMD pinned to CPU in the background, logs to $WORK/NAME.log
start() {
  local name="$1" cpu="$2"; shift 2
  taskset -c "$cpu" "$@" >"$WORK/$name.log" 2>&1 &
  local pid=$!
  sleep 0.2
  STARTED+=("$pid:$(starttime "$pid")")
  PIDS+=("$pid")
  eval "PID_$name=$pid"
}
stop_started() {
  local e pid st
  for e in "${STARTED[@]}"; do
    pid="${e%%:*}"; st="${e#*:}"
    [ "$(starttime "$pid")" = "$st" ] && kill -TERM "$pid" 2>/dev/null
  done
  wait 2>/dev/null
}
trap 'stop_started; [ -n "$KEEP" ] || rm -rf "$WORK"' EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM
wait_port() {  # wait_port HOST PORT: up to 10 s, without connecting (iperf3 dislikes probes)
  for _ in $(seq 1 100); do ss -Hltn "src $1:$2" | grep -q . && return 0; sleep 0.1; done
  die "nothing listens on $1:$2; logs in $WORK"
}
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }  # utime+stime, all threads

# --- backends ---------------------------------------------------------------
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx.conf" <<NGINX
daemon off;
master_process off;
worker_processes 1;
error_log $WORK/nginx.err warn;
pid $WORK/nginx.pid;
events { worker_connections 8192; }
http {
  access_log off;
  default_type text/plain;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.11:$BACKEND_PORT backlog=4096;
    listen 127.0.0.12:$BACKEND_PORT backlog=4096;
    listen 127.0.0.13:$BACKEND_PORT backlog=4096;
    location = / { return 200 "hello\n"; }
  }
}
NGINX
start nginx "$CLIENT_CPU" nginx -e "$WORK/nginx.early.err" -p "$WORK" -c "$WORK/nginx.conf"
start iperf3 "$CLIENT_CPU" iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT"
wait_port 127.0.0.11 "$BACKEND_PORT"; wait_port 127.0.0.1 "$IPERF_PORT"

# --- Meridian ---------------------------------------------------------------
mkdir -p "$WORK/zones"
printf '$TTL 60\n@ SOA ns hostmaster 1 7200 900 1209600 60\n@ NS ns\nns A 127.0.0.1\n' >"$WORK/zones/bench.test.zone"
cat >"$WORK/meridian.toml" <<TOML
[dns]
listen = ["127.0.0.1:$MERIDIAN_DNS"]
zones = "zones"
[health]
state_file = "meridian.state"
[monitors.tcp]
type = "tcp"
port = $BACKEND_PORT
interval = "1s"
timeout = "1s"
rise = 2
fall = 2
[pools.web]
monitor = "tcp"
members = [
  { address = "127.0.0.11" }, { address = "127.0.0.12" }, { address = "127.0.0.13" },
]
[pools.bulk]
members = [{ address = "127.0.0.1" }]
[services."web.bench.test."]
pools = ["web"]
[services."bulk.bench.test."]
pools = ["bulk"]
[[directors]]
listen = "127.0.0.1:$MERIDIAN_WEB"
service = "web.bench.test."
port = $BACKEND_PORT
scheduler = "$SCHEDULER"
[[directors]]
listen = "127.0.0.1:$MERIDIAN_BULK"
service = "bulk.bench.test."
port = $IPERF_PORT
TOML
start meridian "$SERVER_CPU" env TOKIO_WORKER_THREADS=1 RUST_LOG=warn "$BIN" serve --config "$WORK/meridian.toml"
wait_port 127.0.0.1 "$MERIDIAN_WEB"

# --- HAProxy (the anchor's config: one thread, mode tcp, roundrobin, checks every 1 s) ------
# splice-auto needs pipes, two more descriptors per connection: a lower maxconn fits the limit.
HAP_MAXCONN=8000; [ -n "$SPLICE" ] && HAP_MAXCONN=4000
cat >"$WORK/haproxy.cfg" <<HAP
global
    nbthread 1
    maxconn $HAP_MAXCONN
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 1s
    ${SPLICE:+option splice-auto}
listen web
    bind 127.0.0.1:$HAPROXY_WEB
    balance roundrobin
    default-server inter 1s fall 2 rise 2
    server b1 127.0.0.11:$BACKEND_PORT check
    server b2 127.0.0.12:$BACKEND_PORT check
    server b3 127.0.0.13:$BACKEND_PORT check
listen bulk
    bind 127.0.0.1:$HAPROXY_BULK
    server i1 127.0.0.1:$IPERF_PORT
HAP
start haproxy "$SERVER_CPU" haproxy -db -f "$WORK/haproxy.cfg"
wait_port 127.0.0.1 "$HAPROXY_WEB"
# Both proxies are serving: a request through each must answer.
sleep 2.5   # first health checks (Meridian: 1 s interval; HAProxy: inter 1s)
for p in "$MERIDIAN_WEB" "$HAPROXY_WEB"; do
  curl -fsS -m 3 "http://127.0.0.1:$p/" | grep -q hello || die "no answer through 127.0.0.1:$p; logs in $WORK"
done

cat >"$WORK/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK requests=%d duration_us=%d errors=%d\n", summary.requests,
    summary.duration, e.connect + e.read + e.write + e.timeout + e.status))
end
LUA

# measure TEST TARGET -> appends "test target value cpu_pct per_core errors" to $WORK/results
measure() {
  local test="$1" target="$2" port pid="" c0 c1 t0 t1 value errors=0 out="$WORK/raw-$1-$2-$RANDOM.txt"
  case "$target" in
    direct)   [ "$test" = bulk ] && port="127.0.0.1:$IPERF_PORT" || port="127.0.0.11:$BACKEND_PORT" ;;
    meridian) pid=$PID_meridian; [ "$test" = bulk ] && port="127.0.0.1:$MERIDIAN_BULK" || port="127.0.0.1:$MERIDIAN_WEB" ;;
    haproxy)  pid=$PID_haproxy;  [ "$test" = bulk ] && port="127.0.0.1:$HAPROXY_BULK" || port="127.0.0.1:$HAPROXY_WEB" ;;
  esac
  [ -n "$pid" ] && c0=$(cpu_ticks "$pid")
  t0=$(date +%s.%N)
  case "$test" in
    keepalive) timeout $((DUR + 15)) taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${DUR}s" --timeout 5s -s "$WORK/report.lua" "http://$port/" >"$out" 2>&1 ;;
    close)     timeout $((DUR + 15)) taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${DUR}s" --timeout 5s -H "Connection: close" -s "$WORK/report.lua" "http://$port/" >"$out" 2>&1 ;;
    bulk)      timeout $((DUR + 15)) taskset -c "$CLIENT_CPU" iperf3 -c "${port%:*}" -p "${port##*:}" -t "$DUR" -J >"$out" 2>&1 ;;
  esac
  t1=$(date +%s.%N)
  if [ "$test" = bulk ]; then
    value=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' "$out" 2>/dev/null || echo 0)
  else
    read -r value errors < <(awk '/^WRK/ { for (i=2;i<=NF;i++) { split($i,a,"="); v[a[1]]=a[2] } printf "%.0f %d\n", v["requests"]/(v["duration_us"]/1e6), v["errors"] }' "$out")
    value="${value:-0}"; errors="${errors:-0}"
  fi
  local cpu="" per=""
  if [ -n "$pid" ]; then
    c1=$(cpu_ticks "$pid")
    cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$CLK_TCK" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.1f", 100*(b-a)/hz/(t1-t0)}')
    per=$(awk -v v="$value" -v c="$cpu" 'BEGIN { if (c>0) printf "%.2f", v*100/c; else print 0 }')
  fi
  echo "$test $target $value ${cpu:--} ${per:--} $errors" >>"$WORK/results"
  log "run: test=$test target=$target value=$value cpu_pct=${cpu:--} per_core=${per:--} errors=$errors"
}

TESTS="${TESTS:-keepalive close bulk}"
for t in $TESTS; do case "$t" in keepalive|close|bulk) ;; *) die "TESTS: unknown test '$t'" ;; esac; done
log "warming up"
DUR_SAVED=$DUR; DUR=1
for t in meridian haproxy; do measure keepalive "$t"; done
: >"$WORK/results"; DUR=$DUR_SAVED
for rep in $(seq 1 "$REPEAT"); do
  for test in $TESTS; do
    for target in direct meridian haproxy; do measure "$test" "$target"; sleep 0.5; done
  done
done

col() { awk -v t="$1" -v g="$2" -v c="$3" '$1==t && $2==g {print $c}' "$WORK/results" | median; }
unit() { case "$1" in keepalive) echo "req/s";; close) echo "conn/s";; bulk) echo "Gbit/s";; esac; }
echo "# bench/director.sh: scheduler $SCHEDULER, ${DUR}s runs, median of $REPEAT, proxies pinned to CPU $SERVER_CPU (one thread each), clients on CPU $CLIENT_CPU, $(haproxy -v 2>&1 | awk 'NR==1 {print "HAProxy", $3}')${SPLICE:+ with splice-auto}"
printf '%-10s %-7s %12s %12s %12s %9s %9s %14s %14s %8s %10s\n' test unit direct meridian haproxy mer_cpu% hap_cpu% meridian/core haproxy/core ratio ratio/core
for test in $TESTS; do
  d=$(col "$test" direct 3); m=$(col "$test" meridian 3); h=$(col "$test" haproxy 3)
  mc=$(col "$test" meridian 4); hc=$(col "$test" haproxy 4)
  mp=$(col "$test" meridian 5); hp=$(col "$test" haproxy 5)
  r=$(awk -v a="$m" -v b="$h" 'BEGIN { if (b>0) printf "%.2f", a/b; else print "nan" }')
  rp=$(awk -v a="$mp" -v b="$hp" 'BEGIN { if (b>0) printf "%.2f", a/b; else print "nan" }')
  printf '%-10s %-7s %12s %12s %12s %9s %9s %14s %14s %8s %10s\n' "$test" "$(unit "$test")" "$d" "$m" "$h" "$mc" "$hc" "$mp" "$hp" "$r" "$rp"
done
errs=$(awk '$2!="direct" {s+=$6} END {print s+0}' "$WORK/results")
echo "# errors through the proxies (wrk connect/read/write/timeout/status): $errs"
