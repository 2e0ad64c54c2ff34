#!/usr/bin/env bash
# bench/dnssec.sh [DURATION_SECONDS]
#
# Signed answers: Meridian (online signing with its signature cache) against Knot DNS with
# mod-onlinesign (which signs every answer), on the same zone, each pinned to CPU 1 with one
# worker thread, dnsperf on CPU 0. For every (server, name, DO) it measures the highest rate:
# queries/s, server CPU, and queries/s per server core (answered / server CPU seconds), then
# prints the table, the ratios the issue sets targets for, and Meridian's signature cache
# figures from /api/v1/status. Names:
#   static  a static name (two A records)
#   geo     a geo-steered service (Knot: the same name as a static A record)
#   cold    a different name under a wildcard for every query (1,000,000 names, more than a run
#           sends and ten times the cache): every answer is a new RRset, so Meridian's cache
#           misses and it signs as Knot does (cold cache)
# Rows: meridian (signed zone, DO and no DO), plain (the same zone unsigned, no DO:
# the anchor for "unsigned on a signed zone"), knot (mod-onlinesign, DO).
#
# Arguments:
#   DURATION_SECONDS  length of each dnsperf run, 1..600 (default: $DUR, else 5)
# Environment (all optional):
#   REPEAT=3          runs per row; the table shows medians
#   ALGORITHM=ecdsap256sha256   Meridian's key (ed25519 also); Knot signs with ECDSA P-256
#   CLIENTS=8 OUTSTANDING=100   dnsperf -c / -q
#   SERVER_CPU=1 CLIENT_CPU=0
#   SKIP_BUILD=1      use the existing target/release/meridian
#   KEEP=1            keep the temp dir
#   ports, all in 15440-15449: MERIDIAN_PORT=15440 PLAIN_PORT=15441 KNOT_PORT=15442
#                     MERIDIAN_HTTP_PORT=15443
#
# Safety: loopback only; every load run is bounded by dnsperf -l; only the PIDs this script
# started are signalled.
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_args 1 "$@"

DUR="${1:-${DUR:-5}}"
REPEAT="${REPEAT:-3}"
ALGORITHM="${ALGORITHM:-ecdsap256sha256}"
CLIENTS="${CLIENTS:-8}"
OUTSTANDING="${OUTSTANDING:-100}"
SERVER_CPU="${SERVER_CPU:-1}"
CLIENT_CPU="${CLIENT_CPU:-0}"
MERIDIAN_PORT="${MERIDIAN_PORT:-15440}"
PLAIN_PORT="${PLAIN_PORT:-15441}"
KNOT_PORT="${KNOT_PORT:-15442}"
MERIDIAN_HTTP_PORT="${MERIDIAN_HTTP_PORT:-15443}"
HOST=127.0.0.1
ZONE=gslb.test

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_uint "$DUR" && [ "$DUR" -ge 1 ] && [ "$DUR" -le 600 ] || die "DURATION_SECONDS must be an integer 1..600 (got '$DUR')"
is_uint "$REPEAT" && [ "$REPEAT" -ge 1 ] && [ "$REPEAT" -le 50 ] || die "REPEAT must be 1..50"
case "$ALGORITHM" in ecdsap256sha256|ed25519) ;; *) die "ALGORITHM: ecdsap256sha256 or ed25519" ;; esac
is_uint "$SERVER_CPU" && is_uint "$CLIENT_CPU" && [ "$SERVER_CPU" != "$CLIENT_CPU" ] || die "SERVER_CPU and CLIENT_CPU must differ"

need dnsperf dnsperf
need dig bind9-dnsutils
need taskset util-linux
need ss iproute2
need knotd knot
need curl curl
need_done
check_ports 15440 15449 "$MERIDIAN_PORT" "$PLAIN_PORT" "$KNOT_PORT" "$MERIDIAN_HTTP_PORT"
CLK_TCK="$(getconf CLK_TCK)"

[ -n "${SKIP_BUILD:-}" ] || log "building Meridian: cargo build --release"
bench_binary
bench_rundir dnssec
mkdir -p "$RUN/zones" "$RUN/knot-zones" "$RUN/queries" "$RUN/raw" "$RUN/meridian" "$RUN/plain"

zone_head() {
  cat <<'ZONE'
$ORIGIN gslb.test.
$TTL 300
@       IN SOA  ns1.gslb.test. hostmaster.gslb.test. 2024010101 3600 600 604800 60
@       IN NS   ns1.gslb.test.
ns1     IN A    127.0.0.1
static  IN A    192.0.2.10
static  IN A    192.0.2.11
*.wild  IN A    192.0.2.50
ZONE
}
zone_head >"$RUN/zones/$ZONE.zone"
{ zone_head; echo "geo     IN A    127.0.0.11"; } >"$RUN/knot-zones/$ZONE.zone"

echo "static.$ZONE A" >"$RUN/queries/static.txt"
echo "geo.$ZONE A" >"$RUN/queries/geo.txt"
seq 1 1000000 | awk -v z="$ZONE" '{print "n" $1 ".wild." z " A"}' >"$RUN/queries/cold.txt"

"$BIN" dnssec keygen --zone "$ZONE." --algorithm "$ALGORITHM" --out "$RUN/meridian/key.pem" >"$RUN/meridian/dnskey.txt" 2>/dev/null \
  || die "meridian dnssec keygen failed"

meridian_conf() { # FILE DNS_PORT DNSSEC_TABLE HTTP_PORT
  cat >"$1" <<CONF
# Written by bench/dnssec.sh.
[dns]
listen = ["127.0.0.1:$2"]
zones = "$RUN/zones"
workers = 1

[http]
listen = "127.0.0.1:$4"

[geo]
database = "$BENCH_ROOT/geo-data/sample.mmdb"

$(gslb_geo_service "")

$3
CONF
}
meridian_conf "$RUN/meridian/meridian.toml" "$MERIDIAN_PORT" "[dnssec.\"$ZONE.\"]
key = \"key.pem\"" "$MERIDIAN_HTTP_PORT"
meridian_conf "$RUN/plain/meridian.toml" "$PLAIN_PORT" "" "$((MERIDIAN_HTTP_PORT + 1))"
check_ports 15440 15449 "$((MERIDIAN_HTTP_PORT + 1))"

knot_conf "$RUN/knot" "$KNOT_PORT" "$RUN/knot-zones" "$ZONE"
echo "    module: mod-onlinesign" >>"$RUN/knot/knot.conf"

port_of() { case "$1" in meridian) echo "$MERIDIAN_PORT" ;; plain) echo "$PLAIN_PORT" ;; knot) echo "$KNOT_PORT" ;; esac; }

cpu_snap() { awk -v c="cpu$1" '$1==c {b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6}' /proc/stat; }
now() { date +%s.%N; }
RESULTS="$RUN/runs.txt"; : >"$RESULTS"

# one_run SERVER NAME DO R
one_run() {
  local s="$1" n="$2" do="$3" r="$4" out s0 s1 t0 t1 line flag=()
  out="$RUN/raw/$s-$n-$do-$r.txt"
  [ "$do" = do ] && flag=(-D)
  srv_alive "$s" || die "$s is no longer running; log: $RUN/$s.log"
  s0="$(srv_ticks "$s")"; t0="$(now)"
  taskset -c "$CLIENT_CPU" dnsperf -s "$HOST" -p "$(port_of "$s")" -d "$RUN/queries/$n.txt" -l "$DUR" \
    -c "$CLIENTS" -T 1 -q "$OUTSTANDING" -t 2 "${flag[@]}" >"$out" 2>&1 &
  CLIENT_PID=$!
  wait "$CLIENT_PID"; CLIENT_PID=""
  t1="$(now)"; s1="$(srv_ticks "$s")"
  line="$(awk -v s0="$s0" -v s1="$s1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" '
    /Queries completed:/  {done=$3}
    /Queries lost:/       {lost=$3}
    /Run time \(s\):/     {rt=$4}
    /Queries per second:/ {qps=$4}
    /Average packet size:/ {resp=$NF}
    END {
      if (qps=="" || done+0<=0) { printf "error=dnsperf"; exit }
      if (rt+0<=0) rt = t1-t0
      cpu_s = (s1-s0)/hz
      printf "qps=%.0f srv_cpu_pct=%.1f qps_per_core=%.0f lost=%d resp_bytes=%d",
        qps, 100*cpu_s/rt, (cpu_s>0 ? done/cpu_s : 0), lost, resp
    }' "$out")"
  echo "server=$s name=$n do=$do run=$r $line" >>"$RESULTS"
  log "server=$s name=$n do=$do run=$r $line"
  case "$line" in error=*) tail -n 5 "$out" >&2; die "dnsperf failed against $s";; esac
}

start_server() {
  case "$1" in
    meridian) srv_start meridian "$SERVER_CPU" env TOKIO_WORKER_THREADS=1 "$BIN" serve --config "$RUN/meridian/meridian.toml" ;;
    plain) srv_start plain "$SERVER_CPU" env TOKIO_WORKER_THREADS=1 "$BIN" serve --config "$RUN/plain/meridian.toml" ;;
    knot) srv_start knot "$SERVER_CPU" knotd -c "$RUN/knot/knot.conf" ;;
  esac
  wait_answer "$1" "$(port_of "$1")" "static.$ZONE" 20 || exit 1
  srv_pin "$1" "$SERVER_CPU" || exit 1
}

ROWS=(
  "meridian static do" "meridian geo do" "meridian cold do"
  "meridian static nodo" "meridian geo nodo"
  "plain static nodo" "plain geo nodo"
  "knot static do" "knot geo do" "knot cold do" "knot static nodo"
)
for s in meridian plain knot; do
  start_server "$s"
  # Warm-up (and for Meridian, the cache): one unmeasured second per name.
  for n in static geo; do
    taskset -c "$CLIENT_CPU" dnsperf -s "$HOST" -p "$(port_of "$s")" -d "$RUN/queries/$n.txt" -l 1 -D >/dev/null 2>&1
  done
  for r in $(seq 1 "$REPEAT"); do
    for row in "${ROWS[@]}"; do
      read -r rs n do <<<"$row"
      [ "$rs" = "$s" ] && one_run "$s" "$n" "$do" "$r"
    done
  done
  if [ "$s" = meridian ]; then
    curl -s "http://127.0.0.1:$MERIDIAN_HTTP_PORT/api/v1/status" >"$RUN/status.json"
  fi
  srv_stop "$s"
done

med() { # SERVER NAME DO FIELD
  grep "server=$1 name=$2 do=$3 " "$RESULTS" | tr ' ' '\n' | sed -n "s/^$4=//p" | median
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b+0 > 0) printf "%.2f", a/b; else print "nan" }'; }

echo
echo "DNSSEC: one worker on CPU $SERVER_CPU, dnsperf -c $CLIENTS -T 1 -q $OUTSTANDING on CPU $CLIENT_CPU; median of $REPEAT runs x ${DUR} s"
echo "Meridian key: $ALGORITHM; $(knotd -V 2>/dev/null) with mod-onlinesign (ECDSA P-256); $(dnsperf -h 2>&1 | sed -n 's/^Version /dnsperf /p')"
printf '%-10s %-7s %-5s %10s %8s %12s %6s\n' server name DO qps srv_cpu qps/core bytes
for row in "${ROWS[@]}"; do
  read -r s n do <<<"$row"
  printf '%-10s %-7s %-5s %10s %7s%% %12s %6s\n' "$s" "$n" "$do" "$(med "$s" "$n" "$do" qps)" \
    "$(med "$s" "$n" "$do" srv_cpu_pct)" "$(med "$s" "$n" "$do" qps_per_core)" "$(med "$s" "$n" "$do" resp_bytes)"
done
echo
for n in static geo; do
  echo "signed qps/core, Meridian / Knot, $n: $(ratio "$(med meridian "$n" do qps_per_core)" "$(med knot "$n" do qps_per_core)")  (target >= 5)"
  echo "CPU per answer, Meridian signed / Meridian unsigned, $n: $(ratio "$(med meridian "$n" nodo qps_per_core)" "$(med meridian "$n" do qps_per_core)")  (target <= 1.5)"
  echo "CPU per answer, no DO on the signed zone / unsigned zone, $n: $(ratio "$(med plain "$n" nodo qps_per_core)" "$(med meridian "$n" nodo qps_per_core)")  (target <= 1.03)"
done
echo "cold cache (every answer signed), Meridian / Knot qps/core: $(ratio "$(med meridian cold do qps_per_core)" "$(med knot cold do qps_per_core)")"
if [ -s "$RUN/status.json" ]; then
  echo "Meridian signature cache: $(grep -o '"dnssec":\[[^]]*\]' "$RUN/status.json" | grep -o '"\(cache_entries\|cache_hit_rate\|signatures_made\)":[0-9.e-]*' | tr '\n' ' ')"
fi
BENCH_OK=1
