#!/usr/bin/env bash
# Fleet benchmark (docs/fleet.md): three `meridian serve` instances sharing health and overrides
# through a 3-member etcd cluster, on loopback. Measures, over RUNS runs each:
#
#   (a) drain issued on ns1's API -> the last of the three instances stops answering the member
#       (dig on each instance every 10 ms);
#   (b) a member's backend killed -> all three agree it is down (interval 1s, fall 2), beside a
#       single instance without a fleet probing the same backend in the same run;
#   (c) etcd writes per second: 3 instances x 1000 members with 1 % of them flapping, and
#       3 instances x 10,000 members steady (keys written: etcd_mvcc_put_total +
#       etcd_mvcc_delete_total from etcd's /metrics, a put inside a txn counted once per key;
#       beside the sum of meridian_fleet_etcd_writes_total);
#   (d) DNS qps of ns1 (fleet on) against the single instance (fleet off), same run, ratio;
#   (e) queries lost by dnsperf loops on all three instances across a SIGKILL of the etcd
#       leader (the member is restarted after each run).
#
#   bench/fleet.sh [RUNS]        (default 5; REPEAT env works too)
#
# Environment: DUR (dnsperf seconds per run, default 10), WINDOW (seconds the write rate of (c)
# is measured over, default 20), SKIP_C=1 (skip the large configs of (c)), SKIP_BUILD, KEEP.
#
# Ports: etcd 15440-15445 (client, peer per member), Meridian DNS 15450-15452 (ns1-3) and
# 15456 (single), HTTP 15453-15455 and 15457, HTTP backends 127.0.0.11-12:15460, TCP
# accept-and-close backends 127.0.0.1:20000-29999 for (c). Probe sources 127.0.0.21-23 (ns1-3)
# and 127.0.0.24 (single). Instances run with one tokio worker; ns1 and the single instance on
# CPU 1, everything else on CPU 0. Loopback only; every loop is bounded in count and time;
# only processes this script started are signalled.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-${REPEAT:-5}}
DUR=${DUR:-10}
WINDOW=${WINDOW:-20}
ETCD_CLIENT=(15440 15442 15444)
ETCD_PEER=(15441 15443 15445)
DNS=(15450 15451 15452)
HTTP=(15453 15454 15455)
SINGLE_DNS=15456
SINGLE_HTTP=15457
WEB_PORT=15460
FIRST_PORT=20000
SOURCES=(127.0.0.21 127.0.0.22 127.0.0.23)
SINGLE_SOURCE=127.0.0.24
MAX_WAIT=20          # seconds any single wait may take
QNAME=dyn.bench.test

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_args 1 "$@"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number (got $RUNS)"
need etcd etcd-server; need etcdctl etcd-client; need dig bind9-dnsutils; need dnsperf dnsperf
need python3 python3; need curl curl; need taskset util-linux; need ss iproute2
need_done
check_ports 15440 15460 "${ETCD_CLIENT[@]}" "${ETCD_PEER[@]}" "${DNS[@]}" "${HTTP[@]}" \
  "$SINGLE_DNS" "$SINGLE_HTTP" "$WEB_PORT"
bench_binary
bench_rundir fleet
# lib.sh's cleanup reaps with `wait`, whose status is the child's; under `set -e` that would
# end the cleanup at its first process. Run it without -e (and srv_stop below with `|| true`).
trap 'set +e; bench_rundir_cleanup' EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$RUN/zones" "$RUN/www"
echo ok > "$RUN/www/index.html"
bench_zone "$RUN/zones"
echo "$QNAME A" > "$RUN/q.txt"
echo "bench-fleet-token-$$-$RANDOM" > "$RUN/admin.token"
TOKEN=$(cat "$RUN/admin.token")
PREFIX_BASE="/bench/fleet-$$-$RANDOM"

now() { date +%s.%N; }
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN {printf "%.3f\n", a - b}'; }
maxof() { sort -g | tail -1; }

# --- etcd ------------------------------------------------------------------------------------
ETCD_ENDPOINTS=$(printf 'http://127.0.0.1:%s,' "${ETCD_CLIENT[@]}"); ETCD_ENDPOINTS=${ETCD_ENDPOINTS%,}
ETCD_INITIAL=""
for i in 0 1 2; do ETCD_INITIAL+="e$i=http://127.0.0.1:${ETCD_PEER[$i]},"; done
ETCD_INITIAL=${ETCD_INITIAL%,}
ETCD_TOKEN="meridian-bench-$$-$RANDOM"
# The server is configured by flags only: inherited ETCD_* variables are removed.
ETCD_UNSET=()
for v in $(compgen -e | grep '^ETCD' || true); do ETCD_UNSET+=(-u "$v"); done

etcd_start() { # I : starts member I (again, on its data dir, after a kill)
  local i="$1"
  srv_start "etcd$i" 0 env "${ETCD_UNSET[@]}" etcd --name "e$i" --data-dir "$RUN/etcd$i.data" \
    --listen-client-urls "http://127.0.0.1:${ETCD_CLIENT[$i]}" \
    --advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PEER[$i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER[$i]}" \
    --initial-cluster "$ETCD_INITIAL" --initial-cluster-state new \
    --initial-cluster-token "$ETCD_TOKEN"
}
ectl() { ETCDCTL_API=3 etcdctl --endpoints="$ETCD_ENDPOINTS" --dial-timeout=1s --command-timeout=2s "$@"; }
# Waits until every running member is healthy (a leader, a quorum).
etcd_healthy() {
  local end=$((SECONDS + MAX_WAIT)) eps="" i
  for i in 0 1 2; do srv_alive "etcd$i" && eps+="http://127.0.0.1:${ETCD_CLIENT[$i]},"; done
  while [ "$SECONDS" -lt "$end" ]; do
    ETCDCTL_API=3 etcdctl --endpoints="${eps%,}" --dial-timeout=1s --command-timeout=2s \
      endpoint health >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "etcd not healthy within $MAX_WAIT s; logs: $RUN/etcd*.log" >&2
  tail -n 5 "$RUN"/etcd*.log >&2
  return 1
}
# The index (0-2) of the current leader, from the running members' status.
etcd_leader() {
  local end=$((SECONDS + MAX_WAIT)) out
  while [ "$SECONDS" -lt "$end" ]; do
    out=$(ectl endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
st = json.load(sys.stdin)
leader = {s["Status"]["leader"] for s in st}
ids = {s["Status"]["header"]["member_id"]: s["Endpoint"] for s in st}
if len(leader) == 1 and next(iter(leader)) in ids:
    print(ids[next(iter(leader))].rsplit(":", 1)[1])' 2>/dev/null || true)
    for i in 0 1 2; do [ "$out" = "${ETCD_CLIENT[$i]}" ] && { echo "$i"; return 0; }; done
    sleep 0.1
  done
  echo "no etcd leader within $MAX_WAIT s" >&2; return 1
}
# Keys etcd has written (puts and deletes, each op of a txn counted once; etcd_mvcc_txn_total
# is not added, it would count a batch twice), read from one running member (every member
# applies every write).
etcd_writes() {
  local i
  for i in 0 1 2; do
    if srv_alive "etcd$i"; then
      curl -s -m 2 "http://127.0.0.1:${ETCD_CLIENT[$i]}/metrics" |
        awk '$1 == "etcd_mvcc_put_total" || $1 == "etcd_mvcc_delete_total" {s += $2} END {printf "%d\n", s}'
      return 0
    fi
  done
  echo 0
}
# SIGKILL a recorded process (only while its PID is still the one started), and forget it.
srv_kill() {
  local pid="${SRV_PID[$1]:-}"
  [ -n "$pid" ] || return 0
  srv_alive "$1" && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  unset "SRV_PID[$1]" "SRV_START[$1]"
}

# --- Meridian --------------------------------------------------------------------------------
# conf_small FILE I|single : the config of (a), (b), (d), (e): two members probed over HTTP.
conf_small() {
  local file="$1" i="$2" dns http source fleet="" consensus=""
  if [ "$i" = single ]; then
    dns=$SINGLE_DNS; http=$SINGLE_HTTP; source=$SINGLE_SOURCE
  else
    dns=${DNS[$i]}; http=${HTTP[$i]}; source=${SOURCES[$i]}
    fleet=$(printf '[fleet]\netcd = [%s]\nname = "ns%d"\nprefix = "%s/small"\n' \
      "$(printf '"http://127.0.0.1:%s", ' "${ETCD_CLIENT[@]}" | sed 's/, $//')" $((i + 1)) "$PREFIX_BASE")
    consensus='consensus = "majority"'
  fi
  cat > "$file" <<CONF
# Written by bench/fleet.sh.
[dns]
listen = ["127.0.0.1:$dns"]
zones = "$RUN/zones"
workers = 1

[http]
listen = "127.0.0.1:$http"
admin_token_file = "$RUN/admin.token"

[health]
state_file = "$file.state"

$fleet

[monitors.web]
type = "http"
port = $WEB_PORT
interval = "1s"
timeout = "500ms"
rise = 2
fall = 2
source = "$source"
$consensus

[pools.p]
monitor = "web"
members = [{ address = "127.0.0.11" }, { address = "127.0.0.12" }]

[services."$QNAME."]
pools = ["p"]
select = "all"
ttl = 30
min_ttl = 1
# Only usable members are ever answered, so "answered" means "up" (no fail-open).
when_all_down = "nodata"
CONF
}

# conf_many FILE I MEMBERS TAG : I's config of (c): MEMBERS members probed by TCP connect.
conf_many() {
  local file="$1" i="$2" n="$3" tag="$4" k
  {
    cat <<CONF
# Written by bench/fleet.sh.
[dns]
listen = ["127.0.0.1:${DNS[$i]}"]
zones = "$RUN/zones"
workers = 1

[http]
listen = "127.0.0.1:${HTTP[$i]}"

[health]
state_file = "$file.state"
max_concurrent_probes = 512

[fleet]
etcd = [$(printf '"http://127.0.0.1:%s", ' "${ETCD_CLIENT[@]}" | sed 's/, $//')]
name = "ns$((i + 1))"
prefix = "$PREFIX_BASE/$tag"

[monitors.tcp]
type = "tcp"
interval = "1s"
timeout = "1s"
rise = 2
fall = 2
source = "${SOURCES[$i]}"
consensus = "majority"

[pools.many]
monitor = "tcp"
members = [
CONF
    for ((k = 0; k < n; k++)); do
      echo "  { address = \"127.0.0.1\", port = $((FIRST_PORT + k)) },"
    done
    echo "]"
  } > "$file"
}

# meridian_start NAME CONFIG CPU : starts `meridian serve`, waits for its DNS listener.
meridian_start() {
  srv_start "$1" "$3" env TOKIO_WORKER_THREADS=1 "$BIN" serve --config "$2"
  local end=$((SECONDS + 120))   # 10,000 members: loading and the first round take a while
  while [ "$SECONDS" -lt "$end" ]; do
    grep -q "listening for dns-udp" "$RUN/$1.log" && return 0
    srv_alive "$1" || break
    sleep 0.1
  done
  echo "$1 did not start; log: $RUN/$1.log" >&2; tail -n 20 "$RUN/$1.log" >&2; return 1
}
metric() { # HTTP_PORT NAME [LABELS] : the value of one sample (0 when absent)
  curl -s -m 2 "http://127.0.0.1:$1/metrics" | awk -v n="$2${3:-}" '$1 == n {v = $2} END {print v + 0}'
}
metric_is() { # HTTP_PORT NAME VALUE : numerically equal
  awk -v a="$(metric "$1" "$2")" -v b="$3" 'BEGIN {exit !(a == b)}'
}
answered() { # PORT ADDR : the instance at PORT hands out ADDR for QNAME now
  dig +time=1 +tries=1 +short @127.0.0.1 -p "$1" "$QNAME" A 2>/dev/null | grep -qx "$2"
}
# wait_all STATE ADDR PORT... : until every instance answers (STATE=in) or omits (out) ADDR;
# prints the seconds waited. Polls each instance every 10 ms, bounded by MAX_WAIT.
wait_all() {
  local state="$1" addr="$2" t0 p pending; shift 2
  t0=$(now); pending=("$@")
  while [ ${#pending[@]} -gt 0 ]; do
    local left=()
    for p in "${pending[@]}"; do
      if answered "$p" "$addr"; then [ "$state" = in ] || left+=("$p")
      else [ "$state" = out ] || left+=("$p"); fi
    done
    pending=("${left[@]+"${left[@]}"}")
    [ ${#pending[@]} -eq 0 ] && break
    awk -v a="$(now)" -v b="$t0" -v m="$MAX_WAIT" 'BEGIN {exit !(a - b > m)}' && {
      echo "instances on ports ${pending[*]}: $addr still not $state after $MAX_WAIT s" >&2; return 1; }
    sleep 0.01
  done
  elapsed "$t0"
}
api() { # HTTP_PORT ACTION POOL MEMBER
  curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$1/api/v1/pools/$3/members/$4/$2"
}
backend_start() { # ADDR : a python3 http.server on ADDR:WEB_PORT, recorded as web-ADDR
  srv_start "web-$1" 0 python3 -m http.server --bind "$1" --directory "$RUN/www" "$WEB_PORT"
  local end=$((SECONDS + MAX_WAIT))
  while [ "$SECONDS" -lt "$end" ]; do
    [ "$(curl -s -m 1 "http://$1:$WEB_PORT/")" = ok ] && return 0
    sleep 0.05
  done
  echo "backend $1:$WEB_PORT does not answer" >&2; return 1
}

# --- Start: etcd, backends, ns1-3 and the single instance --------------------------------------
log "etcd: 3 members on 127.0.0.1:${ETCD_CLIENT[*]}"
for i in 0 1 2; do etcd_start "$i"; done
etcd_healthy
backend_start 127.0.0.11
backend_start 127.0.0.12
ALL_DNS=("${DNS[@]}")   # every fleet instance's DNS port
for i in 0 1 2; do
  conf_small "$RUN/ns$((i + 1)).toml" "$i"
  cpu=0; [ "$i" = 0 ] && cpu=1
  meridian_start "ns$((i + 1))" "$RUN/ns$((i + 1)).toml" "$cpu"
done
conf_small "$RUN/single.toml" single
meridian_start single "$RUN/single.toml" 1
wait_all in 127.0.0.12 "${ALL_DNS[@]}" "$SINGLE_DNS" >/dev/null
for i in 0 1 2; do
  end=$((SECONDS + MAX_WAIT))
  until metric_is "${HTTP[$i]}" meridian_fleet_instances_live 3; do
    [ "$SECONDS" -lt "$end" ] || die "ns$((i + 1)) does not see 3 live instances; log: $RUN/ns$((i + 1)).log"
    sleep 0.1
  done
done
log "fleet of 3 up, and the single instance"

# --- (d) DNS qps, fleet on (ns1) vs off (single) ---------------------------------------------
QPS_ON=(); QPS_OFF=()
dnsperf_qps() { # PORT
  taskset -c 0 dnsperf -s 127.0.0.1 -p "$1" -d "$RUN/q.txt" -l "$DUR" -c 8 -T 1 -q 100 -t 2 2>&1 |
    awk '/Queries per second/ {print $4}'
}
for r in $(seq 1 "$RUNS"); do
  on=$(dnsperf_qps "${DNS[0]}"); off=$(dnsperf_qps "$SINGLE_DNS")
  log "(d) run $r: qps fleet on $on, off $off"
  QPS_ON+=("$on"); QPS_OFF+=("$off")
done

# --- (a) drain on ns1 -> the last instance stops answering ------------------------------------
DRAIN=()
for r in $(seq 1 "$RUNS"); do
  wait_all in 127.0.0.11 "${ALL_DNS[@]}" >/dev/null
  t0=$(now)
  code=$(api "${HTTP[0]}" drain p 127.0.0.11)
  [ "$code" = 200 ] || die "drain answered HTTP $code"
  wait_all out 127.0.0.11 "${ALL_DNS[@]}" >/dev/null
  # Measured from before the API call, so the call's own time is included.
  d=$(awk -v a="$(now)" -v b="$t0" 'BEGIN {printf "%.3f", a - b}')
  log "(a) run $r: drained everywhere after ${d}s"
  DRAIN+=("$d")
  code=$(api "${HTTP[0]}" undrain p 127.0.0.11)
  [ "$code" = 200 ] || die "undrain answered HTTP $code"
done
wait_all in 127.0.0.11 "${ALL_DNS[@]}" >/dev/null

# --- (b) backend killed -> all three agree it is down; the single instance beside -------------
AGREE=(); ALONE=()
for r in $(seq 1 "$RUNS"); do
  wait_all in 127.0.0.12 "${ALL_DNS[@]}" "$SINGLE_DNS" >/dev/null
  sleep "0.$((RANDOM % 10))"   # kill at a random point of the probe interval
  t0=$(now)
  srv_kill web-127.0.0.12
  # Both figures from the same kill: poll the fleet and the single instance together.
  t_single=""; pending=("${ALL_DNS[@]}"); end_ok=0
  for _ in $(seq 1 $((MAX_WAIT * 100))); do
    awk -v a="$(now)" -v b="$t0" -v m="$MAX_WAIT" 'BEGIN {exit !(a - b > m)}' && break
    if [ -z "$t_single" ] && ! answered "$SINGLE_DNS" 127.0.0.12; then t_single=$(elapsed "$t0"); fi
    left=()
    for p in "${pending[@]}"; do answered "$p" 127.0.0.12 && left+=("$p"); done
    pending=("${left[@]+"${left[@]}"}")
    if [ ${#pending[@]} -eq 0 ] && [ -z "${t_fleet_r:-}" ]; then t_fleet_r=$(elapsed "$t0"); fi
    if [ -n "$t_single" ] && [ -n "${t_fleet_r:-}" ]; then end_ok=1; break; fi
    sleep 0.01
  done
  [ "$end_ok" = 1 ] || die "(b) run $r: the dead backend was still answered after $MAX_WAIT s"
  log "(b) run $r: all 3 agree after ${t_fleet_r}s; single instance ${t_single}s"
  AGREE+=("$t_fleet_r"); ALONE+=("$t_single"); unset t_fleet_r
  backend_start 127.0.0.12
done
wait_all in 127.0.0.12 "${ALL_DNS[@]}" "$SINGLE_DNS" >/dev/null

# --- (e) queries lost across a SIGKILL of the etcd leader -------------------------------------
LOST=(); SENT=()
for r in $(seq 1 "$RUNS"); do
  etcd_healthy
  leader=$(etcd_leader)
  outs=()
  for i in 0 1 2; do
    taskset -c 0 dnsperf -s 127.0.0.1 -p "${DNS[$i]}" -d "$RUN/q.txt" -l 6 -Q 1000 -c 2 -T 1 -t 2 \
      > "$RUN/e-$r-$i.out" 2>&1 &
    outs+=("$!")
  done
  sleep 2
  srv_kill "etcd$leader"
  for p in "${outs[@]}"; do wait "$p" || true; done
  sent=0; lost=0
  for i in 0 1 2; do
    s=$(awk '/Queries sent/ {print $3}' "$RUN/e-$r-$i.out"); l=$(awk '/Queries lost/ {print $3}' "$RUN/e-$r-$i.out")
    sent=$((sent + ${s:-0})); lost=$((lost + ${l:-0}))
  done
  log "(e) run $r: killed etcd leader e$leader; lost $lost of $sent queries"
  LOST+=("$lost"); SENT+=("$sent")
  etcd_start "$leader"
done
etcd_healthy

# --- (c) etcd writes per second at scale ------------------------------------------------------
WRITES_FLAP=""; WRITES_STEADY=""; MWRITES_FLAP=""; MWRITES_STEADY=""; DOWN_FLAP=""; DOWN_STEADY=""
cat > "$RUN/accept.py" <<'PY'
# Accept-and-close TCP servers on 127.0.0.1 ports FIRST..FIRST+N-1. Every PERIOD seconds the
# first FLAP ports swap between listening and closed (connection refused), so their members
# flap at one transition per PERIOD. Runs until killed.
import selectors, socket, sys, time
first, n, flap, period = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sel = selectors.DefaultSelector()
socks = {}
def listen(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    socks[port] = s
for port in range(first, first + n):
    listen(port)
print("ready", flush=True)
up, next_flip = True, time.monotonic() + period
while True:
    for key, _ in sel.select(timeout=0.1):
        try:
            c, _ = key.fileobj.accept()
            c.close()
        except OSError:
            pass
    if flap and time.monotonic() >= next_flip:
        next_flip += period
        for port in range(first, first + flap):
            if up:
                s = socks.pop(port); sel.unregister(s); s.close()
            else:
                listen(port)
        up = not up
PY
# scale_run MEMBERS FLAP TAG : starts the accept server and three instances on MEMBERS members,
# waits until every instance is ready and the join writes are done, then measures WINDOW s;
# sets SCALE_ETCD and SCALE_MERIDIAN (writes per second).
scale_run() {
  local n="$1" flap="$2" tag="$3" i w0 w1 m0 m1 end
  [ "$(ulimit -n)" -ge $((n + 500)) ] || die "(c) needs $((n + 500)) open files, have $(ulimit -n)"
  srv_start accept 0 python3 "$RUN/accept.py" "$FIRST_PORT" "$n" "$flap" 4
  end=$((SECONDS + 60))
  until grep -q ready "$RUN/accept.log"; do
    [ "$SECONDS" -lt "$end" ] && srv_alive accept || die "accept server did not start: $RUN/accept.log"
    sleep 0.1
  done
  for i in 0 1 2; do
    conf_many "$RUN/$tag-ns$((i + 1)).toml" "$i" "$n" "$tag"
    meridian_start "$tag-ns$((i + 1))" "$RUN/$tag-ns$((i + 1)).toml" -
  done
  for i in 0 1 2; do
    end=$((SECONDS + 180))
    until [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:${HTTP[$i]}/readyz")" = 200 ] &&
          metric_is "${HTTP[$i]}" meridian_fleet_instances_live 3; do
      [ "$SECONDS" -lt "$end" ] || die "(c) $tag-ns$((i + 1)) not ready with 3 live instances; log: $RUN/$tag-ns$((i + 1)).log"
      sleep 0.5
    done
  done
  # Let the join (one write per member and instance) and the first flips settle: bounded.
  local cur
  end=$((SECONDS + 120))
  while [ "$SECONDS" -lt "$end" ]; do
    cur=$(etcd_writes); sleep 5
    [ "$(( $(etcd_writes) - cur ))" -le $((flap * 3 * 5 + 10)) ] && break
  done
  w0=$(etcd_writes); m0=0
  for i in 0 1 2; do m0=$(awk -v a="$m0" -v b="$(metric "${HTTP[$i]}" meridian_fleet_etcd_writes_total)" 'BEGIN {print a + b}'); done
  sleep "$WINDOW"
  w1=$(etcd_writes); m1=0
  for i in 0 1 2; do m1=$(awk -v a="$m1" -v b="$(metric "${HTTP[$i]}" meridian_fleet_etcd_writes_total)" 'BEGIN {print a + b}'); done
  SCALE_ETCD=$(awk -v a="$w0" -v b="$w1" -v d="$WINDOW" 'BEGIN {printf "%.1f", (b - a) / d}')
  SCALE_MERIDIAN=$(awk -v a="$m0" -v b="$m1" -v d="$WINDOW" 'BEGIN {printf "%.1f", (b - a) / d}')
  # Members ns1 shows down at the end: in a "steady" run, real flips (probe timeouts on a
  # loaded machine) would explain writes.
  SCALE_DOWN=$(metric "${HTTP[0]}" 'meridian_members{state="down"}')
  log "(c) $tag: $SCALE_ETCD etcd writes/s, $SCALE_MERIDIAN meridian_fleet_etcd_writes_total/s over $WINDOW s; $SCALE_DOWN members down on ns1"
  for i in 0 1 2; do srv_stop "$tag-ns$((i + 1))" || true; done
  srv_stop accept || true
}
if [ -z "${SKIP_C:-}" ]; then
  for i in 0 1 2; do srv_stop "ns$((i + 1))" || true; done   # (c) takes their ports
  srv_stop single || true
  scale_run 1000 10 flap1000
  WRITES_FLAP=$SCALE_ETCD; MWRITES_FLAP=$SCALE_MERIDIAN; DOWN_FLAP=$SCALE_DOWN
  scale_run 10000 0 steady10000
  WRITES_STEADY=$SCALE_ETCD; MWRITES_STEADY=$SCALE_MERIDIAN; DOWN_STEADY=$SCALE_DOWN
fi

# --- The table ---------------------------------------------------------------------------------
med() { printf '%s\n' "$@" | median; }
mx() { printf '%s\n' "$@" | maxof; }
f0() { awk -v v="$1" 'BEGIN {printf "%.0f", v}'; }      # counts and qps: whole numbers
f3() { awk -v v="$1" 'BEGIN {printf "%.3f", v}'; }      # seconds
ratio=$(awk -v a="$(med "${QPS_ON[@]}")" -v b="$(med "${QPS_OFF[@]}")" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
{
  printf '\nFleet benchmark: 3 instances, 3-member etcd, %d runs (loopback)\n\n' "$RUNS"
  printf '%-58s %12s %12s  %s\n' "measure" "median" "max" "beside"
  printf '%-58s %12s %12s  %s\n' "(a) drain on ns1 -> last instance stops answering (s)" \
    "$(f3 "$(med "${DRAIN[@]}")")" "$(f3 "$(mx "${DRAIN[@]}")")" "dig every 10 ms on each instance"
  printf '%-58s %12s %12s  %s\n' "(b) backend killed -> all 3 agree it is down (s)" \
    "$(f3 "$(med "${AGREE[@]}")")" "$(f3 "$(mx "${AGREE[@]}")")" \
    "single instance: median $(f3 "$(med "${ALONE[@]}")") max $(f3 "$(mx "${ALONE[@]}")") (interval 1s, fall 2)"
  if [ -z "${SKIP_C:-}" ]; then
    printf '%-58s %12s %12s  %s\n' "(c) etcd writes/s, 3 x 1000 members, 1 % flapping" \
      "$WRITES_FLAP" "-" "meridian_fleet_etcd_writes_total: $MWRITES_FLAP/s (10 members flip every 4 s; $DOWN_FLAP down at the end)"
    printf '%-58s %12s %12s  %s\n' "(c) etcd writes/s, 3 x 10,000 members steady" \
      "$WRITES_STEADY" "-" "meridian_fleet_etcd_writes_total: $MWRITES_STEADY/s (over $WINDOW s; $DOWN_STEADY down at the end)"
  else
    printf '%-58s %12s %12s  %s\n' "(c) etcd writes/s" "skipped" "-" "SKIP_C set"
  fi
  printf '%-58s %12s %12s  %s\n' "(d) DNS qps, fleet on (ns1)" "$(f0 "$(med "${QPS_ON[@]}")")" \
    "$(f0 "$(mx "${QPS_ON[@]}")")" \
    "fleet off: median $(f0 "$(med "${QPS_OFF[@]}")"); on/off ratio $ratio (dnsperf ${DUR}s runs)"
  printf '%-58s %12s %12s  %s\n' "(e) queries lost across an etcd leader kill" \
    "$(f0 "$(med "${LOST[@]}")")" "$(f0 "$(mx "${LOST[@]}")")" \
    "of $(f0 "$(med "${SENT[@]}")") sent per run (3 x 1000 qps, 6 s; the leader killed at 2 s)"
}
BENCH_OK=1
