#!/bin/bash
# STARTTLS receive benchmark with the Rust load client (benches/bin/starttls_load.rs), which is
# not the bottleneck: same session shape as the kit's starttls_load.py (EHLO, STARTTLS, full
# handshake without resumption, EHLO, MAIL, RCPT, DATA SIZE bytes, QUIT), same server set-up as the
# kit's bench_tls.sh (server pinned to SERVER_CPU, client to CLIENT_CPU, quiet wait, contamination
# retry). Called by run.sh (stage tls-rust); it sources the kit's lib.sh.
#
# usage: bench_tls_rust.sh SERVER CERT [CONCURRENCY] [SIZE] [COUNT] [REPS]
#   SERVER  aiosmtpd   the kit's aiosmtpd_server.py --tls on 127.0.0.1:$PORT_AIO_TLS
#           mock-eop   $MOCK serve (eop-bench.toml) on 127.0.0.1:$PORT
#   CERT    rsa        the kit's server.crt (RSA-2048) for both
#           ec         the kit's server-ec.crt (ECDSA P-256) for both
# environment (set by run.sh): PEERS, MOCK, CLIENT, PORT, MOCK_LOG; TLSMAX=1.3|1.2; CLIENT_CERT=1
#   (present the kit's client.crt); PIN, QUIET_WAIT, QUIET_PCT, MAX_TRIES, CONTAM_MAX, START_REP,
#   SERVER_TIMEOUT as in the kit; CSV (default $RESULTS/tls_rust.csv); CLIENT_MAX_S=240.
#
# Server CPU is the server process's user+system time over the client's run (from /proc/PID/stat),
# so start-up (Python imports, key loading) is not counted; the kit's bench_tls.sh divides the
# whole process's time(1) figure instead. Client CPU is the client's own figure over its run.
set -uo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$SELF/../.." && pwd)
HERE=${PEERS:?set PEERS to the kit folder}
. "$HERE/lib.sh"

SERVER=${1:-}; CERT=${2:-}
CONC=${3:-20}; SIZE=${4:-1000}; COUNT=${5:-20000}; REPS=${6:-3}
TLSMAX=${TLSMAX:-1.3}
: "${CLIENT:?set CLIENT to the starttls-load binary}"
case $CERT in
  rsa) CRT=$CERTS/server.crt; KEY=$CERTS/server.key ;;
  ec)  CRT=$CERTS/server-ec.crt; KEY=$CERTS/server-ec.key ;;
  *)   usage; exit 2 ;;
esac
case $SERVER in
  aiosmtpd) SPORT=$PORT_AIO_TLS; ensure_venv || exit 1 ;;
  mock-eop) : "${MOCK:?set MOCK to the mock-eop binary}"; SPORT=${PORT:-2600} ;;
  *)        usage; exit 2 ;;
esac
ensure_certs || exit 1
CSV=${CSV:-$RESULTS/tls_rust.csv}
SRV_OUT=$LOGS/tls-rust-$SERVER-$CERT.out
CLIENT_ARGS=(--port "$SPORT" --count "$COUNT" --concurrency "$CONC" --size "$SIZE"
             --tls-max "$TLSMAX" --max-seconds "${CLIENT_MAX_S:-240}" --cafile "$CERTS/ca.crt")
[[ ${CLIENT_CERT:-0} == 1 ]] && CLIENT_ARGS+=(--cert "$CERTS/client.crt" --key "$CERTS/client.key")
[[ -f $CSV ]] || echo "server,cert,tls,concurrency,size,rep,sessions_ok,sessions_failed,wall_s,sessions_per_s,hs_ms_p50,hs_ms_p99,sess_ms_p50,sess_ms_p99,server_cpu_s,server_us_per_session,server_maxrss_kb,client_cpu_s,client_us_per_session,other_cpu_s,bg_before_pct" > "$CSV"

j() { python3 -c "import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print('NA' if v is None else v)" "$1" "$2"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo NA; }
# The server process: time(1) -> timeout -> server (bash and env exec into it).
server_pid() { local t; t=$(pgrep -P "$SRV_TPID" | head -1); [[ -n $t ]] && pgrep -P "$t" | head -1; }
on_exit() { stop_timed; return 0; }
trap on_exit EXIT
trap 'exit 130' INT TERM

MAX_TRIES=${MAX_TRIES:-3}; CONTAM_MAX=${CONTAM_MAX:-0.4}
rep=${START_REP:-1}; last=$((rep + REPS - 1)); attempt=1
while (( rep <= last )); do
  tag="tlsrust_${SERVER}_${CERT}_t${TLSMAX}_c${CONC}_l${SIZE}_r${rep}"
  STIME=$RAW/$tag.server.time; OUTJ=$RAW/$tag.json
  rm -f "$STIME" "$OUTJ"
  case $SERVER in
    aiosmtpd) start_timed "$STIME" "$SPORT" "$PY" "$HERE/aiosmtpd_server.py" --port "$SPORT" --tls \
                --cert "$CRT" --key "$KEY" --max-seconds 590 || exit 1 ;;
    mock-eop) start_timed "$STIME" "$SPORT" env RUST_LOG="${MOCK_LOG:-warn}" "$MOCK" serve \
                --listen "127.0.0.1:$SPORT" --config "$SELF/eop-bench.toml" --cert "$CRT" --key "$KEY" \
                --client-ca "$CERTS/ca.crt" --seed 1 || exit 1 ;;
  esac
  spid=$(server_pid)
  [[ -n $spid ]] || { echo "cannot find the server process" >&2; exit 1; }
  sleep 0.3
  bg=$(wait_quiet)
  s0=$(ticks "$spid"); c0=$(cpustat); t0=$(now)
  "${C_PIN[@]}" timeout --foreground $(( ${CLIENT_MAX_S:-240} + 60 )) "$CLIENT" "${CLIENT_ARGS[@]}" \
    --label "$tag" > "$OUTJ"
  crc=$?
  s1=$(ticks "$spid"); c1=$(cpustat); t2=$(now)
  stop_timed
  srss=$(time_rss "$STIME")
  if [[ $crc != 0 || ! -s $OUTJ ]]; then
    echo "load client failed (exit $crc); no row written for $tag" >&2
    exit 1
  fi
  ok=$(j "$OUTJ" sessions_ok); failed=$(j "$OUTJ" sessions_failed); wall=$(j "$OUTJ" wall_s)
  ccpu=$(j "$OUTJ" client_cpu_s)
  [[ $failed != 0 ]] && echo "failed sessions: $failed; first errors: $(j "$OUTJ" errors)" >&2
  [[ $(j "$OUTJ" timed_out) == True ]] && echo "client stopped at CLIENT_MAX_S before all sessions ran" >&2
  window=$(calc "$t2 - $t0")
  busy_s=$(calc "($c1 - $c0) / $HZ")
  scpu=NA; ups=NA; cups=NA; other=NA
  if [[ $s0 != NA && $s1 != NA ]]; then
    scpu=$(calc "($s1 - $s0) / $HZ")
    ups=$(printf '%.0f' "$(calc "$scpu * 1000000 / ($ok + 0.000001)")")
    if [[ $ccpu != NA ]]; then
      other=$(printf '%.2f' "$(calc "$busy_s - $scpu - $ccpu")")
      cups=$(printf '%.0f' "$(calc "$ccpu * 1000000 / ($ok + 0.000001)")")
    fi
    scpu=$(printf '%.2f' "$scpu")
  fi
  row="$SERVER,$CERT,$TLSMAX,$CONC,$SIZE,$rep,$ok,$failed,$wall,$(j "$OUTJ" sessions_per_s),$(j "$OUTJ" handshake_ms_p50),$(j "$OUTJ" handshake_ms_p99),$(j "$OUTJ" session_ms_p50),$(j "$OUTJ" session_ms_p99),$scpu,$ups,$srss,$ccpu,$cups,$other,$bg"
  sleep 1
  if [[ $other != NA ]] && (( $(calc "$other / $window > $CONTAM_MAX") )) && (( attempt < MAX_TRIES )); then
    echo "$row,$attempt" >> "$RESULTS/tls_rust_rejected.csv"
    echo "  ^ contaminated (other CPU $other s over $(printf '%.1f' "$window") s), retry $attempt" >&2
    attempt=$((attempt + 1)); sleep 5; continue
  fi
  echo "$row" | tee -a "$CSV"
  rep=$((rep + 1)); attempt=1
done
