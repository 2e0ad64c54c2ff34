#!/usr/bin/env bash
# bench/zone-load.sh [RECORDS]
#
# How long a large zone takes to load and how much memory it takes: Meridian against Knot DNS
# and NSD. Generates one zone of RECORDS records (a realistic mix: mostly A and AAAA, some MX,
# TXT, CNAME and NS delegations with glue), then starts each server on it in turn, pinned to
# CPU 1, and measures the time from starting the process until it answers a query for the last
# name of the zone file, the CPU time it spent until then, and its memory once loaded: VmRSS
# (resident now) and VmHWM (the peak) from /proc, summed over the process tree, and Pss
# (shared pages split between the processes sharing them, which matters for NSD's forked
# server). Medians of REPEAT starts, interleaved; one table with the ratios Meridian / anchor.
# See bench/README.md.
#
# Arguments:
#   RECORDS           records in the zone, 1000..10000000 (default 1000000)
# Environment (all optional):
#   REPEAT=3          starts per server; the table shows medians
#   ONLY="meridian knot nsd"   servers
#   TIMEOUT=180       seconds a server may take to answer before the run fails
#   SETTLE=2          seconds between the first answer and reading the memory figures
#   SERVER_CPU=1      the CPU the servers run on (dig, polling, is not pinned)
#   SKIP_BUILD=1      use the existing target/release/meridian, don't run cargo
#   KEEP=1            keep the temp dir (the zone, configs, logs, runs.txt)
#   ports, all in 15420-15429: MERIDIAN_PORT=15420 KNOT_PORT=15421 NSD_PORT=15422
#
# Safety: loopback only; every wait is bounded by TIMEOUT; only the PIDs this script started are
# ever signalled.
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_args 1 "$@"

RECORDS="${1:-1000000}"
REPEAT="${REPEAT:-3}"
ONLY="${ONLY:-meridian knot nsd}"
TIMEOUT="${TIMEOUT:-180}"
SETTLE="${SETTLE:-2}"
SERVER_CPU="${SERVER_CPU:-1}"
MERIDIAN_PORT="${MERIDIAN_PORT:-15420}"
KNOT_PORT="${KNOT_PORT:-15421}"
NSD_PORT="${NSD_PORT:-15422}"
ZONE=load.test

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_uint "$RECORDS" && [ "$RECORDS" -ge 1000 ] && [ "$RECORDS" -le 10000000 ] || die "RECORDS must be 1000..10000000 (got '$RECORDS')"
is_uint "$REPEAT" && [ "$REPEAT" -ge 1 ] && [ "$REPEAT" -le 20 ] || die "REPEAT must be 1..20"
is_uint "$TIMEOUT" && [ "$TIMEOUT" -ge 1 ] && [ "$TIMEOUT" -le 600 ] || die "TIMEOUT must be 1..600"
is_uint "$SETTLE" && [ "$SETTLE" -le 60 ] || die "SETTLE must be 0..60"
is_uint "$SERVER_CPU" && [ -d "/sys/devices/system/cpu/cpu$SERVER_CPU" ] || die "SERVER_CPU: no CPU $SERVER_CPU"
for s in $ONLY; do case "$s" in meridian|knot|nsd) ;; *) die "ONLY: unknown server '$s' (meridian, knot, nsd)" ;; esac; done
has() { [[ " $1 " == *" $2 "* ]]; }

need dig bind9-dnsutils
need taskset util-linux
need ss iproute2
has "$ONLY" knot && need knotd knot
has "$ONLY" nsd && need nsd nsd
need_done
check_ports 15420 15429 "$MERIDIAN_PORT" "$KNOT_PORT" "$NSD_PORT"
CLK_TCK="$(getconf CLK_TCK)"
if has "$ONLY" meridian; then
  [ -n "${SKIP_BUILD:-}" ] || log "building Meridian: cargo build --release"
  bench_binary
fi

bench_rundir zone-load
mkdir -p "$RUN/zones"

# --- the zone ----------------------------------------------------------------------------------
# Host j (h<j>) always has an A record; every 2nd also an AAAA, every 20th a TXT, every 25th an
# MX; every 50th has a CNAME alias (www<j>), every 100th a delegation (d<j>: two NS and their
# glue). The last record is `last A 192.0.2.99`, the name the servers are asked for.
log "writing a zone of $RECORDS records"
awk -v n="$RECORDS" -v zone="$ZONE" '
  function emit(line,    f) { print line; count++; split(line, f, " "); types[f[2]]++ }
  BEGIN {
    print "$ORIGIN " zone "."
    print "$TTL 3600"
    emit("@ SOA ns1 hostmaster 2024010101 3600 600 604800 60")
    emit("@ NS ns1"); emit("@ NS ns2")
    emit("ns1 A 192.0.2.1"); emit("ns2 A 192.0.2.2")
    for (j = 0; count < n - 1; j++) {
      a = sprintf("10.%d.%d.%d", int(j / 65536) % 256, int(j / 256) % 256, j % 256)
      emit(sprintf("h%d A %s", j, a))
      if (count < n - 1 && j % 2 == 0) emit(sprintf("h%d AAAA 2001:db8::%x:%x", j, int(j / 65536), j % 65536))
      if (count < n - 1 && j % 20 == 0) emit(sprintf("h%d TXT \"v=spf1 ip4:%s -all\"", j, a))
      if (count < n - 1 && j % 25 == 0) emit(sprintf("h%d MX 10 h%d", j, j))
      if (count < n - 1 && j % 50 == 0) emit(sprintf("www%d CNAME h%d", j, j))
      if (count < n - 5 && j % 100 == 0) {
        emit(sprintf("d%d NS ns1.d%d", j, j)); emit(sprintf("d%d NS ns2.d%d", j, j))
        emit(sprintf("ns1.d%d A 198.51.100.%d", j, j % 250 + 1)); emit(sprintf("ns2.d%d A 198.51.100.%d", j, j % 250 + 2))
      }
    }
    emit("last A 192.0.2.99")
    mix = ""
    split("A AAAA TXT MX CNAME NS SOA", order, " ")
    for (i = 1; i <= 7; i++) mix = mix sprintf(" %s=%d", order[i], types[order[i]])
    print count mix > "/dev/stderr"
  }' >"$RUN/zones/$ZONE.zone" 2>"$RUN/zone-mix.txt" || die "writing the zone failed"
read -r RECORDS_WRITTEN MIX <"$RUN/zone-mix.txt"
[ "$RECORDS_WRITTEN" = "$RECORDS" ] || die "the zone has $RECORDS_WRITTEN records, not $RECORDS"
ZONE_MB=$(du -m "$RUN/zones/$ZONE.zone" | cut -f1)
log "zone $ZONE.: $RECORDS_WRITTEN records ($MIX), $ZONE_MB MB"

# --- the servers -------------------------------------------------------------------------------
mkdir -p "$RUN/meridian"
cat >"$RUN/meridian/meridian.toml" <<EOF
# Written by bench/zone-load.sh: the zone, nothing else.
[dns]
listen = ["127.0.0.1:$MERIDIAN_PORT"]
zones = "$RUN/zones"
workers = 1
EOF
knot_conf "$RUN/knot" "$KNOT_PORT" "$RUN/zones" "$ZONE"
nsd_conf "$RUN/nsd" "$NSD_PORT" "$RUN/zones" "$ZONE"

port_of() { case "$1" in meridian) echo "$MERIDIAN_PORT" ;; knot) echo "$KNOT_PORT" ;; nsd) echo "$NSD_PORT" ;; esac; }
start() {
  case "$1" in
    meridian) srv_start meridian "$SERVER_CPU" env TOKIO_WORKER_THREADS=1 "$BIN" serve --config "$RUN/meridian/meridian.toml" ;;
    knot) srv_start knot "$SERVER_CPU" knotd -c "$RUN/knot/knot.conf" ;;
    nsd) srv_start nsd "$SERVER_CPU" nsd -d -c "$RUN/nsd/nsd.conf" ;;
  esac
}
# mem NAME FIELD : FIELD (VmRSS, VmHWM from status; Pss from smaps_rollup) in kB, summed over the tree
mem() {
  local p f=/status; [ "$2" = Pss ] && f=/smaps_rollup
  for p in $(srv_tree "$1"); do awk -v k="$2:" '$1==k {print $2}' "/proc/$p$f" 2>/dev/null; done | awk '{t+=$1} END {print t+0}'
}

RESULTS="$RUN/runs.txt"; : >"$RESULTS"
# one_start SERVER R : start, poll until the last name answers, read the figures, stop
one_start() {
  local s="$1" r="$2" t0 t1 load cpu
  t0=$(date +%s.%N)
  start "$s"
  wait_answer "$s" "$(port_of "$s")" "last.$ZONE" "$TIMEOUT" '192\.0\.2\.99' || die "$s did not load the zone (run $r)"
  t1=$(date +%s.%N)
  cpu=$(srv_ticks "$s")
  sleep "$SETTLE"
  load=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
  line="server=$s run=$r load_s=$load cpu_s=$(awk -v t="$cpu" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", t / hz}') rss_mb=$(( $(mem "$s" VmRSS) / 1024 )) hwm_mb=$(( $(mem "$s" VmHWM) / 1024 )) pss_mb=$(( $(mem "$s" Pss) / 1024 )) procs=$(srv_tree "$s" | wc -l)"
  echo "$line" >>"$RESULTS"
  log "$line"
  srv_stop "$s"
}

log "measuring: $(wc -w <<<"$ONLY") server(s) x $REPEAT starts"
for r in $(seq 1 "$REPEAT"); do
  for s in $ONLY; do one_start "$s" "$r"; sleep 1; done
done

# --- report ----------------------------------------------------------------------------------------
med() { awk -v s="server=$1" -v k="$2" '$1==s { for (i=3;i<=NF;i++) { split($i,a,"="); if (a[1]==k) print a[2] } }' "$RESULTS" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a!="nan" && b!="nan" && a+0>0 && b+0>0) printf "%.3f", a/b; else print "n/a" }'; }

echo
echo "Zone load: $ZONE. with $RECORDS_WRITTEN records ($MIX), $ZONE_MB MB of master file"
echo "each server on CPU $SERVER_CPU; time from starting the process until it answers last.$ZONE A; memory $SETTLE s later"
echo "median of $REPEAT starts; host: $(nproc) CPUs, $(uname -r)$(has "$ONLY" knot && knotd -V 2>/dev/null | sed 's/^knotd (Knot DNS), version /; knot /')$(has "$ONLY" nsd && nsd -v 2>&1 | sed -n '1s/^NSD version /; nsd /p')"
echo
printf '%-10s %8s %8s %8s %8s %8s %6s\n' server load_s cpu_s rss_MB hwm_MB pss_MB procs
for s in $ONLY; do
  printf '%-10s %8s %8s %8s %8s %8s %6s\n' "$s" "$(med "$s" load_s)" "$(med "$s" cpu_s)" "$(med "$s" rss_mb)" \
    "$(med "$s" hwm_mb)" "$(med "$s" pss_mb)" "$(med "$s" procs)"
done
echo
echo "load_s: start to first answer for the zone's last name (polled every 50 ms with dig); cpu_s: the"
echo "server's CPU time until then; rss/hwm: VmRSS now / VmHWM (peak), summed over the processes; pss:"
echo "proportional set size (pages shared between NSD's processes counted once)."
if has "$ONLY" meridian; then
  echo
  echo "ratios, Meridian / anchor (lower is better)"
  printf '  %-8s %-8s %7s %9s %s\n' anchor figure ratio target verdict
  for a in knot nsd; do
    has "$ONLY" "$a" || continue
    for f in load_s cpu_s rss_mb hwm_mb pss_mb; do
      r=$(ratio "$(med meridian "$f")" "$(med "$a" "$f")")
      tgt=""; v=""
      if [ "$a" = knot ] && has "load_s rss_mb hwm_mb" "$f"; then
        tgt="<= 1.00"; v=$(awk -v r="$r" 'BEGIN { if (r != "n/a") print (r + 0 <= 1 ? "met" : "MISSED") }')
      fi
      printf '  %-8s %-8s %7s %9s %s\n' "$a" "$f" "$r" "$tgt" "$v"
    done
  done
fi
echo "Per-run lines: stderr above$([ -n "${KEEP:-}" ] && echo ", and $RESULTS")."
BENCH_OK=1
