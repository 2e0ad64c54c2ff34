#!/usr/bin/env bash
# bench/dns-ecs.sh [DURATION_SECONDS]
#
# DNS with EDNS Client Subnet from many client networks, against gdnsd, both reading the same
# full-size GeoIP database: ip-location-db's geo-whois-asn-country (CC0, from the npm registry,
# cached under target/bench-cache) rewritten in the GeoIP2 layout gdnsd's geoip2 plugin reads
# (`ecs-load mmdb`). The query stream is built from that database (`ecs-load stream`):
# ECS_V4 distinct /24 and ECS_V6 distinct /56 client networks spread over its networks, PLAIN %
# of the queries without ECS, the names of NAMES in turn: geo (a continent map), country (a
# country map), near (proximity; it needs a database with coordinates, which a country database
# is not: gdnsd refuses its map, Meridian ranks every client in config order). dnsperf sends one fixed EDNS option, so the project's load generator
# (bench/ecs-load.rs: a stream file, batched sendmmsg/recvmmsg, a fixed rate, bounded in count
# and time, loopback only) sends it.
#
# Servers, each pinned to CPU 1 with one worker thread, the load generator on CPU 0:
#   meridian          the build under test: per-network tables ([geo] precompute, the default)
#   meridian-lookup   the same binary with [geo] precompute = false: a GeoIP lookup per query
#                     (the path before the tables; the differential check's reference)
#   gdnsd             gdnsd 3.8's geoip plugin with the same maps and database
# Per server and run: the server CPU at a fixed QPS (the stream cycled for DURATION seconds),
# (and its user-space part) and queries/s per core at MAX_QPS (answered queries / server CPU
# seconds). Before measuring,
# the differential check: the whole stream once against meridian and meridian-lookup, every
# answer compared (same RCODE and addresses; scope equal or wider, and for PROBES widened
# scopes, addresses across the wider network asked of meridian-lookup get the same answer).
# Also reported: the database's load (networks, tables built, their time and memory), each
# server's resident memory, and 6 s at QPS against meridian with a SIGHUP (database and tables
# rebuilt) at 2 s and 4 s: the reloads done and what the load generator saw. The last line is `ecs cpu ratio meridian/gdnsd: R`
# (medians, same run). See bench/README.md.
#
# Arguments:
#   DURATION_SECONDS  length of each measured run, 1..600 (default: $DUR, else 10)
# Environment (all optional):
#   REPEAT=3          runs per (mode, server); the table shows medians (at least 3 for the ratio)
#   NAMES="geo country"  names of the stream (geo, country, near)
#   ONLY="meridian meridian-lookup gdnsd"   servers to measure
#   QPS=100000        the fixed rate             MAX_QPS=400000  the rate of the qps/core runs
#   ECS_V4=50000 ECS_V6=5000 PLAIN=10 SEED=1   the stream (distinct /24s, /56s, % without ECS)
#   PROBES=2000       widened scopes checked address by address in the differential
#   DIFF_QPS=20000    rate of the differential runs
#   SERVER_CPU=1 CLIENT_CPU=0   CPUs of the servers / of the load generator
#   DB_PKG=@ip-location-db/geo-whois-asn-country-mmdb  DB_VERSION=2.3.2026061719  DB_FILE=geo-whois-asn-country.mmdb
#   COALESCE_US=0     Meridian's [dns] udp_coalesce_us (receive coalescing, 0 = off)
#   SKIP_BUILD=1      use the existing release binaries, don't run cargo
#   KEEP=1            keep the temp dir (configs, logs, stream, results)
#   ports, all in 15480-15489: MERIDIAN_PORT=15480 LOOKUP_PORT=15481 GDNSD_PORT=15482
#
# Safety: traffic goes to loopback only (ecs-load refuses any other address); every load run is
# bounded in count (rate x duration) and time; only the PIDs this script started are signalled.
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_args 1 "$@"

DUR="${1:-${DUR:-10}}"
REPEAT="${REPEAT:-3}"
ONLY="${ONLY:-meridian meridian-lookup gdnsd}"
QPS="${QPS:-100000}"
MAX_QPS="${MAX_QPS:-400000}"
COALESCE_US="${COALESCE_US:-0}"
ECS_V4="${ECS_V4:-50000}"
ECS_V6="${ECS_V6:-5000}"
PLAIN="${PLAIN:-10}"
SEED="${SEED:-1}"
PROBES="${PROBES:-2000}"
DIFF_QPS="${DIFF_QPS:-20000}"
SERVER_CPU="${SERVER_CPU:-1}"
CLIENT_CPU="${CLIENT_CPU:-0}"
DB_PKG="${DB_PKG:-@ip-location-db/geo-whois-asn-country-mmdb}"
DB_VERSION="${DB_VERSION:-2.3.2026061719}"
DB_FILE="${DB_FILE:-geo-whois-asn-country.mmdb}"
MERIDIAN_PORT="${MERIDIAN_PORT:-15480}"
LOOKUP_PORT="${LOOKUP_PORT:-15481}"
GDNSD_PORT="${GDNSD_PORT:-15482}"
HOST=127.0.0.1
ZONE=gslb.test
NAMES="${NAMES:-geo country}"

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_uint "$DUR" && [ "$DUR" -ge 1 ] && [ "$DUR" -le 600 ] || die "DURATION_SECONDS must be an integer 1..600 (got '$DUR')"
is_uint "$REPEAT" && [ "$REPEAT" -ge 1 ] && [ "$REPEAT" -le 50 ] || die "REPEAT must be 1..50"
for v in QPS MAX_QPS ECS_V4 ECS_V6 PLAIN SEED PROBES DIFF_QPS; do is_uint "${!v}" || die "$v must be a non-negative integer"; done
[ "$QPS" -ge 1 ] && [ "$MAX_QPS" -ge 1 ] && [ "$DIFF_QPS" -ge 1 ] && [ "$PLAIN" -le 90 ] || die "QPS, MAX_QPS, DIFF_QPS must be positive, PLAIN at most 90"
[[ "$COALESCE_US" =~ ^[0-9]+$ ]] && [ "$COALESCE_US" -le 1000 ] || die "COALESCE_US must be 0..1000"
is_uint "$SERVER_CPU" && is_uint "$CLIENT_CPU" && [ "$SERVER_CPU" != "$CLIENT_CPU" ] || die "SERVER_CPU and CLIENT_CPU must be two different CPU numbers"
for n in $NAMES; do case "$n" in geo|country|near) ;; *) die "NAMES: unknown name '$n' (geo, country, near)" ;; esac; done
[ -n "$NAMES" ] || die "NAMES must not be empty"
for s in $ONLY; do case "$s" in meridian|meridian-lookup|gdnsd) ;; *) die "ONLY: unknown server '$s' (meridian, meridian-lookup, gdnsd)" ;; esac; done
has() { [[ " $1 " == *" $2 "* ]]; }

need dig bind9-dnsutils
need taskset util-linux
need ss iproute2
need curl curl
need tar tar
has "$ONLY" gdnsd && need gdnsd gdnsd
need_done
check_ports 15480 15489 "$MERIDIAN_PORT" "$LOOKUP_PORT" "$GDNSD_PORT"
CLK_TCK="$(getconf CLK_TCK)"

[ -n "${SKIP_BUILD:-}" ] || log "building Meridian and the load generator: cargo build --release"
bench_binary
if [ -z "${SKIP_BUILD:-}" ]; then (cd "$ROOT" && cargo build --release --quiet --example ecs-load) || exit 2; fi
LOAD="$(dirname "$BIN")/examples/ecs-load"
[ -x "$LOAD" ] || die "$LOAD not found (SKIP_BUILD=1 needs a built load generator)"

# --- the database ------------------------------------------------------------------------------
CACHE="${CARGO_TARGET_DIR:-$ROOT/target}/bench-cache"
mkdir -p "$CACHE"
TGZ="$CACHE/${DB_PKG##*/}-$DB_VERSION.tgz"
if [ ! -s "$TGZ" ]; then
  url="https://registry.npmjs.org/$DB_PKG/-/${DB_PKG##*/}-$DB_VERSION.tgz"
  log "downloading $url"
  curl -sfL --max-time 300 -o "$TGZ.part" "$url" && mv "$TGZ.part" "$TGZ" || die "download failed: $url"
fi
SRC_DB="$CACHE/${DB_PKG##*/}-$DB_VERSION.mmdb"
[ -s "$SRC_DB" ] || { tar -xzOf "$TGZ" "package/$DB_FILE" >"$SRC_DB.part" && mv "$SRC_DB.part" "$SRC_DB"; } || die "$TGZ has no package/$DB_FILE"
DB="$CACHE/${DB_PKG##*/}-$DB_VERSION.geoip2.mmdb"
if [ ! -s "$DB" ]; then
  log "rewriting $SRC_DB in the GeoIP2 layout"
  "$LOAD" mmdb "$SRC_DB" "$DB.part" >&2 && mv "$DB.part" "$DB" || die "ecs-load mmdb failed"
fi

bench_rundir dns-ecs
mkdir -p "$RUN/zones" "$RUN/raw"

log "building the query stream from the database"
"$LOAD" stream "$DB" "$RUN/stream.txt" "$(for n in $NAMES; do printf '%s.%s,' "$n" "$ZONE"; done | sed 's/,$//')" "$ECS_V4" "$ECS_V6" "$PLAIN" "$SEED" 2>"$RUN/stream.log" \
  || { cat "$RUN/stream.log" >&2; die "ecs-load stream failed"; }
STREAM_LEN=$(wc -l <"$RUN/stream.txt")
STREAM_ECS=$(grep -vc ' -$' "$RUN/stream.txt")
STREAM_V6=$(grep -c ':' "$RUN/stream.txt")
log "stream: $STREAM_LEN queries, $STREAM_ECS with ECS ($STREAM_V6 IPv6), $(sed -n 's/ distinct.*//p' "$RUN/stream.log" | tr '\n' ' ')distinct networks"

# --- zone and configs ----------------------------------------------------------------------------
gslb_zone "$RUN/zones/$ZONE.zone"
# Pools: one address each, unmonitored (always up), every member answered. The continent map
# and the country map are each pools' own geography (derived lists, completed with the rest).
meridian_conf() {  # meridian_conf FILE PORT PRECOMPUTE
  cat >"$1" <<EOF
# Written by bench/dns-ecs.sh.
[dns]
listen = ["$HOST:$2"]
zones = "$RUN/zones"
workers = 1
udp_coalesce_us = $COALESCE_US

[geo]
database = "$DB"
precompute = $3

[pools.eu]
continent = "EU"
location = [50.1, 8.7]
members = [{ address = "127.0.0.11" }]
[pools.us]
continent = "NA"
location = [38.9, -77.0]
members = [{ address = "127.0.0.12" }]
[pools.ap]
continent = "AS"
location = [1.3, 103.9]
members = [{ address = "127.0.0.13" }]
[pools.de]
countries = ["DE", "AT", "CH"]
members = [{ address = "127.0.0.21" }]
[pools.gb]
countries = ["GB", "IE"]
members = [{ address = "127.0.0.22" }]
[pools.usa]
countries = ["US"]
members = [{ address = "127.0.0.23" }]
[pools.jp]
countries = ["JP", "KR"]
members = [{ address = "127.0.0.24" }]

[services."geo.$ZONE."]
pools = ["eu", "us", "ap"]
steering = "geo"

[services."country.$ZONE."]
pools = ["de", "gb", "usa", "jp"]
steering = "geo"

[services."near.$ZONE."]
pools = ["eu", "us", "ap"]
steering = "proximity"
EOF
}
mkdir -p "$RUN/meridian" "$RUN/meridian-lookup"
meridian_conf "$RUN/meridian/meridian.toml" "$MERIDIAN_PORT" true
meridian_conf "$RUN/meridian-lookup/meridian.toml" "$LOOKUP_PORT" false

# gdnsd: the same orders as Meridian derives them (a continent's pools, then the rest in
# config order; a country's pool, then the rest).
mkdir -p "$RUN/gdnsd/zones" "$RUN/gdnsd/run" "$RUN/gdnsd/state" "$RUN/gdnsd/geoip"
cp "$DB" "$RUN/gdnsd/geoip/geo.mmdb"
cat >"$RUN/gdnsd/config" <<EOF
# Written by bench/dns-ecs.sh.
options => {
  listen => { $HOST:$GDNSD_PORT => { udp_threads => 1, tcp_threads => 1 } }
  run_dir => $RUN/gdnsd/run
  state_dir => $RUN/gdnsd/state
  zones_rfc1035_threads => 1
}
plugins => {
  geoip => {
    maps => {
      continents => {
        geoip2_db => geo.mmdb
        datacenters => [eu, us, ap]
        map => { EU => [eu, us, ap], NA => [us, eu, ap], AS => [ap, eu, us] }
      }
      countries => {
        geoip2_db => geo.mmdb
        datacenters => [de, gb, usa, jp]
        map => {
          EU => { DE => [de, gb, usa, jp], AT => [de, gb, usa, jp], CH => [de, gb, usa, jp], GB => [gb, de, usa, jp], IE => [gb, de, usa, jp] }
          NA => { US => [usa, de, gb, jp] }
          AS => { JP => [jp, de, gb, usa], KR => [jp, de, gb, usa] }
        }
      }
$(has "$NAMES" near && echo "      near => { geoip2_db => geo.mmdb, datacenters => [eu, us, ap], auto_dc_coords => { eu => [50.1, 8.7], us => [38.9, -77.0], ap => [1.3, 103.9] } }")
    }
    resources => {
      geo => { map => continents, service_types => up, dcmap => { eu => 127.0.0.11, us => 127.0.0.12, ap => 127.0.0.13 } }
      country => { map => countries, service_types => up, dcmap => { de => 127.0.0.21, gb => 127.0.0.22, usa => 127.0.0.23, jp => 127.0.0.24 } }
$(has "$NAMES" near && echo "      near => { map => near, service_types => up, dcmap => { eu => 127.0.0.11, us => 127.0.0.12, ap => 127.0.0.13 } }")
    }
  }
}
EOF
{ cat "$RUN/zones/$ZONE.zone"; cat <<'EOF'
; gdnsd's dynamic names
geo     30 DYNA geoip!geo
country 30 DYNA geoip!country
EOF
has "$NAMES" near && echo "near    30 DYNA geoip!near"
} >"$RUN/gdnsd/zones/$ZONE"

port_of() { case "$1" in meridian) echo "$MERIDIAN_PORT" ;; meridian-lookup) echo "$LOOKUP_PORT" ;; gdnsd) echo "$GDNSD_PORT" ;; esac; }
rss_kb() { awk -v k="$2" '$1==k":" {print $2}' "/proc/${SRV_PID[$1]}/status" 2>/dev/null; }

# --- start -----------------------------------------------------------------------------------------
declare -A START_S=()
STARTED="meridian meridian-lookup"; has "$ONLY" gdnsd && STARTED="$STARTED gdnsd"
for s in $STARTED; do
  t0=$(date +%s.%N)
  case "$s" in
    meridian|meridian-lookup)
      "$BIN" check --config "$RUN/$s/meridian.toml" >"$RUN/$s-check.log" 2>&1 \
        || { cat "$RUN/$s-check.log" >&2; die "meridian check rejected the generated config ($s)"; }
      srv_start "$s" "$SERVER_CPU" env TOKIO_WORKER_THREADS=1 RUST_LOG=info "$BIN" serve --config "$RUN/$s/meridian.toml" ;;
    gdnsd) srv_start gdnsd "$SERVER_CPU" gdnsd -c "$RUN/gdnsd" start ;;
  esac
  wait_answer "$s" "$(port_of "$s")" "geo.$ZONE" 60 || exit 1
  t1=$(date +%s.%N)
  srv_pin "$s" "$SERVER_CPU" || exit 1
  START_S[$s]=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b-a}')
  log "$s pid ${SRV_PID[$s]}: answering after ${START_S[$s]} s, RSS $(( $(rss_kb "$s" VmRSS) / 1024 )) MB"
done
TABLES_LINE="$(grep -o '[0-9]* per-network steering tables ([^)]*)' "$RUN/meridian.log" | head -1)"
[ -n "$TABLES_LINE" ] || die "meridian's log does not report its tables ($RUN/meridian.log)"
log "meridian: $TABLES_LINE"

# --- differential check: the stream once against both Meridians ------------------------------------
DIFF_SECONDS=$(( (STREAM_LEN + DIFF_QPS - 1) / DIFF_QPS ))
for s in meridian meridian-lookup; do
  taskset -c "$CLIENT_CPU" "$LOAD" send "$HOST:$(port_of "$s")" "$RUN/stream.txt" "$DIFF_QPS" "$DIFF_SECONDS" "$RUN/results-$s.txt" >"$RUN/raw/diff-$s.txt" 2>&1 \
    || { cat "$RUN/raw/diff-$s.txt" >&2; die "ecs-load send failed against $s"; }
done
taskset -c "$CLIENT_CPU" "$LOAD" diff "$RUN/stream.txt" "$RUN/results-meridian.txt" "$RUN/results-meridian-lookup.txt" "$HOST:$LOOKUP_PORT" "$PROBES" >"$RUN/diff.txt" 2>"$RUN/diff.err"
DIFF_RC=$?
DIFF_LINE="$(tail -n 1 "$RUN/diff.txt")"
[ "$DIFF_RC" = 0 ] || { head -n 20 "$RUN/diff.err" >&2; log "$DIFF_LINE"; die "the differential check failed: Meridian's tables answer differently from its per-query lookups"; }
log "$DIFF_LINE"

# --- measurement ---------------------------------------------------------------------------------
RESULTS="$RUN/runs.txt"; : >"$RESULTS"
one_run() {  # one_run MODE SERVER R
  local mode="$1" s="$2" r="$3" rate out s0 s1 u0 u1 line
  rate="$QPS"; [ "$mode" = max ] && rate="$MAX_QPS"
  out="$RUN/raw/$mode-$s-$r.txt"
  srv_alive "$s" || die "$s is no longer running; log: $RUN/$s.log"
  srv_pinned "$s" "$SERVER_CPU" || die "$s has threads outside CPU $SERVER_CPU"
  s0="$(srv_ticks "$s")"; u0="$(srv_uticks "$s")"
  taskset -c "$CLIENT_CPU" "$LOAD" send "$HOST:$(port_of "$s")" "$RUN/stream.txt" "$rate" "$DUR" >"$out" 2>&1 &
  CLIENT_PID=$!; wait "$CLIENT_PID"; CLIENT_PID=""
  s1="$(srv_ticks "$s")"; u1="$(srv_uticks "$s")"
  line="$(awk -v s0="$s0" -v s1="$s1" -v u0="$u0" -v u1="$u1" -v hz="$CLK_TCK" '
    /^sent=/ { for (i=1;i<=NF;i++) { split($i,a,"="); v[a[1]]=a[2] } }
    END {
      if (v["answered"]+0 <= 0) { print "error=no_answers"; exit }
      cpu = (s1-s0)/hz
      printf "qps=%.0f srv_cpu_pct=%.1f user_cpu_pct=%.1f qps_per_core=%.0f lost=%d sent=%d noerror_pct=%.2f",
        v["qps"], 100*cpu/v["seconds"], 100*(u1-u0)/hz/v["seconds"], (cpu>0 ? v["answered"]/cpu : 0), v["lost"], v["sent"], 100*v["noerror"]/v["answered"]
    }' "$out")"
  echo "mode=$mode server=$s run=$r $line" >>"$RESULTS"
  log "mode=$mode server=$s run=$r $line"
  case "$line" in error=*) cat "$out" >&2; die "ecs-load send failed against $s ($mode)";; esac
}
# Warm-up: the whole stream once per server (caches, buffers), unmeasured.
for s in $ONLY; do taskset -c "$CLIENT_CPU" "$LOAD" send "$HOST:$(port_of "$s")" "$RUN/stream.txt" "$QPS" 2 >/dev/null 2>&1; done
log "measuring: $(wc -w <<<"$ONLY") servers x 2 modes x $REPEAT runs x ${DUR} s"
for r in $(seq 1 "$REPEAT"); do
  for mode in rate max; do
    for s in $ONLY; do one_run "$mode" "$s" "$r"; sleep 0.5; done
  done
done

# --- reloads under load: the database and tables rebuilt twice while answering ----------------------
RELOAD_LINE=""
if has "$ONLY" meridian; then
  before=$(grep -c 'reload: reloaded:' "$RUN/meridian.log")
  rss_before=$(( $(rss_kb meridian VmRSS) / 1024 ))
  taskset -c "$CLIENT_CPU" "$LOAD" send "$HOST:$MERIDIAN_PORT" "$RUN/stream.txt" "$QPS" 6 >"$RUN/raw/reload.txt" 2>&1 &
  CLIENT_PID=$!
  for at in 2 4; do sleep 2; srv_alive meridian && kill -HUP "${SRV_PID[meridian]}"; done
  wait "$CLIENT_PID"; CLIENT_PID=""
  for _ in $(seq 1 50); do [ "$(grep -c 'reload: reloaded:' "$RUN/meridian.log")" -ge $((before + 2)) ] && break; sleep 0.1; done
  RELOAD_LINE="$(( $(grep -c 'reload: reloaded:' "$RUN/meridian.log") - before )) reloads during 6 s at $QPS qps (RSS $rss_before MB before them): $(cat "$RUN/raw/reload.txt")"
  log "$RELOAD_LINE"
fi

# --- report ------------------------------------------------------------------------------------------
med() { awk -v m="mode=$1" -v s="server=$2" -v k="$3" '$1==m && $2==s { for (i=4;i<=NF;i++) { split($i,a,"="); if (a[1]==k) print a[2] } }' "$RESULTS" | median; }
all() { awk -v s="server=$1" -v m="mode=$2" -v k="$3" '$2==s && $1==m { for (i=4;i<=NF;i++) { split($i,a,"="); if (a[1]==k) print a[2] } }' "$RESULTS"; }
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v=="nan" || v=="") printf "%s", "-"; else printf f, v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a!="nan" && b!="nan" && a+0>0 && b+0>0) printf "%.3f", a/b; else print "-" }'; }

echo
echo "DNS with ECS from many client networks, zone $ZONE, names: $NAMES (in turn), same run"
echo "database: $DB_PKG $DB_VERSION in the GeoIP2 layout ($(du -m "$DB" | cut -f1) MB), read by every server"
echo "stream: $STREAM_LEN queries, $STREAM_ECS with ECS, from $(awk '/ distinct / {t+=$1} END {print t+0}' "$RUN/stream.log") distinct /24 and /56 networks, $PLAIN % without ECS"
echo "server on CPU $SERVER_CPU (one worker thread), ecs-load on CPU $CLIENT_CPU; median of $REPEAT runs x ${DUR} s"
echo "meridian: $TABLES_LINE"
echo
printf '%-16s %10s %8s %9s %10s | %10s %9s | %6s %7s\n' server "cpu%@$((QPS / 1000))k" "user%" "qps@max" "qps/core" "start_s" "rss_MB" lost noerr%
for s in $ONLY; do
  printf '%-16s %10s %8s %9s %10s | %10s %9s | %6s %7s\n' "$s" \
    "$(fmt "$(med rate "$s" srv_cpu_pct)" %.1f)" "$(fmt "$(med rate "$s" user_cpu_pct)" %.1f)" "$(fmt "$(med max "$s" qps)" %.0f)" "$(fmt "$(med max "$s" qps_per_core)" %.0f)" \
    "${START_S[$s]}" "$(( $(rss_kb "$s" VmRSS) / 1024 ))" \
    "$(all "$s" rate lost | awk '{t+=$1} END {print t+0}')" "$(fmt "$(all "$s" rate noerror_pct | sort -g | head -1)" %.2f)"
done
echo
echo "cpu%@: server CPU at a fixed $QPS qps (lost and noerr% are of these runs: every query, the lowest run);"
echo "user%: its user-space part (the rest is the kernel's: system calls, the UDP stack, wakeups);"
echo "qps/core: answered queries / server CPU seconds, offered $MAX_QPS qps; start_s: start to first answer"
echo "(database load and tables included); rss_MB: resident memory after the runs (for meridian, after the reloads too)."
echo "differential (meridian's tables against meridian-lookup, the whole stream): $DIFF_LINE"
[ -z "$RELOAD_LINE" ] || echo "meridian, SIGHUP at 2 s and 4 s: $RELOAD_LINE"
echo
echo "ratios (same run)"
for a in meridian-lookup gdnsd; do
  has "$ONLY" "$a" && has "$ONLY" meridian || continue
  printf '  meridian / %-16s cpu%%@%dk %s   user%% %s   qps/core %s\n' "$a" "$((QPS / 1000))" \
    "$(ratio "$(med rate meridian srv_cpu_pct)" "$(med rate "$a" srv_cpu_pct)")" \
    "$(ratio "$(med rate meridian user_cpu_pct)" "$(med rate "$a" user_cpu_pct)")" \
    "$(ratio "$(med max meridian qps_per_core)" "$(med max "$a" qps_per_core)")"
done
for s in $ONLY; do
  q="$(med rate "$s" qps)"
  awk -v q="$q" -v w="$QPS" 'BEGIN { exit !(q == "nan" || q < 0.98 * w) }' && echo "WARNING: $s got $q qps at the fixed rate, not $QPS: its cpu% is not at the fixed rate."
done
grep -h -E ' (WARN|ERROR) ' "$RUN"/meridian*.log 2>/dev/null | head -5 | sed 's/^/WARNING: meridian log: /'
BENCH_OK=1
if has "$ONLY" meridian && has "$ONLY" gdnsd; then
  echo "ecs cpu ratio meridian/gdnsd: $(ratio "$(med rate meridian srv_cpu_pct)" "$(med rate gdnsd srv_cpu_pct)")"
fi
