#!/usr/bin/env bash
# Side-by-side load comparison: mock-eop serve against the peers kit's reference servers under the
# same load clients (../shared/peers, "Benchmarking your own server"). Run it on a quiet machine;
# it takes about 11 minutes with the defaults. Reports medians and the ratios the issue asks for:
#   plain:    mock-eop msgs/s / smtp-sink msgs/s   (smtp-source, 20 sessions, 1 KB, new connection
#             per message; target >= 1)
#   tls:      mock-eop sessions/s / aiosmtpd sessions/s   (starttls_load.py, 20 sessions, 1 KB,
#             full handshakes, RSA-2048 kit certificate for both; target >= 5, but check the
#             client CPU column: the Python client tops out near 1,100-1,300 sessions/s)
#   tls-rust: the same STARTTLS sessions driven by the Rust client (benches/bin/starttls_load.rs,
#             pinned to the client CPU like the kit's clients), aiosmtpd and mock-eop interleaved,
#             once with the kit's RSA-2048 server.crt and once with its ECDSA P-256 server-ec.crt
#             (aiosmtpd's "aiosmtpd-ec" set-up); medians, min-max, server and client CPU per
#             session, and the ratios (benches/compare/bench_tls_rust.sh does one run)
#
# usage: benches/compare/run.sh [plain] [tls] [tls-rust]     (default: plain tls-rust)
# environment:
#   PEERS=/path/to/peers      the kit (default: ../shared/peers next to the project, /work/shared/peers)
#   MOCK=path                 mock-eop binary (default: builds target/release/mock-eop)
#   CLIENT=path               starttls-load binary for tls-rust (default: builds target/release/starttls-load)
#   PORT=2600                 port for mock-eop
#   N_PLAIN=20000 N_TLS=5000 N_RUST=10000 REPS=3 SESSIONS=20 SIZE=1000
#   RUST_CERTS="rsa ec"       server certificates for tls-rust; TLSMAX=1.2 for TLS 1.2 only
#   PEERS_RESULTS=dir         where the CSVs go (default: a fresh folder per run under $PEERS_HOME)
#   MOCK_LOG=warn             RUST_LOG for mock-eop (its one-line-per-session log is info; records
#                             are kept either way)
#   SMOKE=1                   plumbing check only: mock-eop alone, tiny counts, no quiet wait
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PEERS=${PEERS:-}
if [[ -z $PEERS ]]; then
  for p in "$ROOT/../shared/peers" /work/shared/peers; do [[ -f $p/bench_plain.sh ]] && { PEERS=$p; break; }; done
fi
[[ -n $PEERS && -f $PEERS/bench_plain.sh ]] || { echo "peers kit not found; set PEERS=/path/to/peers" >&2; exit 2; }
PORT=${PORT:-2600}
REPS=${REPS:-3}; SESSIONS=${SESSIONS:-20}; SIZE=${SIZE:-1000}
N_PLAIN=${N_PLAIN:-20000}; N_TLS=${N_TLS:-5000}; N_RUST=${N_RUST:-10000}
RUST_CERTS=${RUST_CERTS:-rsa ec}
STAGES=("$@"); ((${#STAGES[@]})) || STAGES=(plain tls-rust)
if [[ ${SMOKE:-0} == 1 ]]; then
  REPS=1; N_PLAIN=${N_PLAIN_SMOKE:-300}; N_TLS=${N_TLS_SMOKE:-100}; N_RUST=${N_RUST_SMOKE:-200}
  export QUIET_WAIT=0 MAX_TRIES=1
fi
if [[ -z ${MOCK:-} ]]; then
  (cd "$ROOT" && cargo build --release --locked -p mock-eop)
  MOCK=$ROOT/target/release/mock-eop
fi
[[ -x $MOCK ]] || { echo "not executable: $MOCK" >&2; exit 2; }
MOCK=$(realpath "$MOCK")
if [[ " ${STAGES[*]} " == *" tls-rust "* && -z ${CLIENT:-} ]]; then
  (cd "$ROOT" && cargo build --release --locked -p benches --bin starttls-load)
  CLIENT=$ROOT/target/release/starttls-load
fi
CFG=$ROOT/benches/compare/eop-bench.toml
W=${PEERS_HOME:-${TMPDIR:-/tmp}/hybridlab-peers}
export PEERS_RESULTS=${PEERS_RESULTS:-$W/results/mock-eop-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$PEERS_RESULTS"
export CUSTOM_NAME=mock-eop CUSTOM_PORT=$PORT
# Same RSA-2048 certificate as aiosmtpd, from the kit's CA (bench_tls.sh verifies the chain with it);
# client certificates from the kit's CA are attributed (eop-bench.toml). $PEERS_CERTS is set by the kit.
export CUSTOM_CMD="env RUST_LOG=${MOCK_LOG:-warn} $MOCK serve --listen 127.0.0.1:$PORT --config $CFG"' --cert "$PEERS_CERTS/server.crt" --key "$PEERS_CERTS/server.key" --client-ca "$PEERS_CERTS/ca.crt" --seed 1'
if [[ ${SMOKE:-0} == 1 ]]; then bash "$PEERS/gen_certs.sh" >/dev/null; else bash "$PEERS/setup.sh" >/dev/null; fi
echo "results: $PEERS_RESULTS"
for stage in "${STAGES[@]}"; do
  case $stage in
    plain)
      if [[ ${SMOKE:-0} != 1 ]]; then
        bash "$PEERS/bench_plain.sh" sink "$SESSIONS" "$SIZE" "$N_PLAIN" "$REPS"
        bash "$PEERS/bench_plain.sh" aiosmtpd "$SESSIONS" "$SIZE" "$N_PLAIN" "$REPS"
      fi
      bash "$PEERS/bench_plain.sh" custom "$SESSIONS" "$SIZE" "$N_PLAIN" "$REPS" ;;
    tls)
      if [[ ${SMOKE:-0} != 1 ]]; then
        bash "$PEERS/bench_tls.sh" aiosmtpd "$SESSIONS" "$SIZE" "$N_TLS" "$REPS"
      fi
      bash "$PEERS/bench_tls.sh" custom "$SESSIONS" "$SIZE" "$N_TLS" "$REPS" ;;
    tls-rust)
      [[ -x $CLIENT ]] || { echo "not executable: $CLIENT" >&2; exit 2; }
      CLIENT=$(realpath "$CLIENT")
      export PEERS MOCK CLIENT PORT
      servers=(aiosmtpd mock-eop); [[ ${SMOKE:-0} == 1 ]] && servers=(mock-eop)
      # Repetitions interleaved across servers and certificates, as the kit's run_all.sh does.
      for ((rep = 1; rep <= REPS; rep++)); do
        for cert in $RUST_CERTS; do
          for server in "${servers[@]}"; do
            START_REP=$rep bash "$ROOT/benches/compare/bench_tls_rust.sh" "$server" "$cert" \
              "$SESSIONS" "$SIZE" "$N_RUST" 1
          done
        done
      done ;;
    *) echo "unknown stage $stage (plain, tls, tls-rust)" >&2; exit 2 ;;
  esac
done
python3 "$PEERS/summarize.py" --results "$PEERS_RESULTS" || true
python3 - "$PEERS_RESULTS" <<'PY'
import csv, statistics, sys, os
res = sys.argv[1]
def med(path, key, value, where):
    if not os.path.exists(path):
        return {}
    out = {}
    for row in csv.DictReader(open(path)):
        if not where(row):
            continue
        try:
            out.setdefault(row[key], []).append(float(row[value]))
        except ValueError:
            pass
    return {k: statistics.median(v) for k, v in out.items()}
plain = med(f"{res}/plain.csv", "server", "msgs_per_s", lambda r: r["reuse"] == "0")
tls = med(f"{res}/tls.csv", "server", "sessions_per_s", lambda r: r["mode"] == "starttls")
print("\n== ratios (medians, same run) ==")
for name, table, ref, target in (("plain msgs/s", plain, "sink", 1.0), ("STARTTLS sessions/s", tls, "aiosmtpd", 5.0)):
    m = table.get("mock-eop")
    r = table.get(ref)
    if m is None:
        continue
    line = f"{name}: mock-eop {m:,.0f}"
    if r:
        line += f" / {ref} {r:,.0f} = {m / r:.2f}x (target >= {target:g}x)"
    print(line)
path = f"{res}/tls_rust.csv"
if os.path.exists(path):
    rows = list(csv.DictReader(open(path)))
    def num(r, k):
        try:
            return float(r[k])
        except (ValueError, KeyError):
            return None
    groups = {}
    for r in rows:
        groups.setdefault((r["cert"], r["tls"], r["server"]), []).append(r)
    print("\n== STARTTLS with the Rust client (starttls-load; medians, min-max) ==")
    print("| cert | TLS | server | n | sessions/s | min-max | server CPU us/session | client CPU us/session | client CPU % of wall | handshake p50/p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    med_of = {}
    for (cert, tls, server), rs in sorted(groups.items()):
        rate = [x for x in (num(r, "sessions_per_s") for r in rs) if x is not None]
        scpu = [x for x in (num(r, "server_us_per_session") for r in rs) if x is not None]
        ccpu = [x for x in (num(r, "client_us_per_session") for r in rs) if x is not None]
        share = [num(r, "client_cpu_s") / num(r, "wall_s") * 100 for r in rs
                 if num(r, "client_cpu_s") is not None and num(r, "wall_s")]
        hs50 = [x for x in (num(r, "hs_ms_p50") for r in rs) if x is not None]
        hs99 = [x for x in (num(r, "hs_ms_p99") for r in rs) if x is not None]
        m = lambda v: statistics.median(v) if v else float("nan")
        med_of[(cert, tls, server)] = (m(rate), m(scpu))
        print(f"| {cert} | {tls} | {server} | {len(rs)} | **{m(rate):,.0f}** | {min(rate, default=0):,.0f}-{max(rate, default=0):,.0f} "
              f"| {m(scpu):,.0f} | {m(ccpu):,.0f} | {m(share):.0f} | {m(hs50):.2f} / {m(hs99):.2f} |")
    print()
    for (cert, tls, server), (rate, scpu) in sorted(med_of.items()):
        if server != "mock-eop" or (cert, tls, "aiosmtpd") not in med_of:
            continue
        arate, ascpu = med_of[(cert, tls, "aiosmtpd")]
        print(f"STARTTLS {cert} TLS {tls} (Rust client): sessions/s mock-eop {rate:,.0f} / aiosmtpd {arate:,.0f} "
              f"= {rate / arate:.2f}x (target >= 5x); server CPU per session aiosmtpd {ascpu:,.0f} us / "
              f"mock-eop {scpu:,.0f} us = {ascpu / scpu:.2f}x")
PY
