# scripts/bench-lib.sh — helpers shared by scripts/bench and scripts/bench-* (sourced).
#
# Results protocol (docs/BENCHMARKS.md): every benchmark appends one JSON object per
# figure to "$BENCH_RESULTS" (scripts/bench sets it per benchmark; standalone runs default
# to DIR/results.jsonl), through bl_result:
#   {"bench":"backup","figure":"backup throughput","unit":"MB/s","ours":12.3,
#    "peer":4.5,"peer_name":"borg 1.2.4","higher_is_better":true,
#    "target":">= 2x peer","pass":true,"note":"..."}
# "ours" or "peer" may be null (not measured); "pass" is true/false, or null when there is
# no target or a number is missing.  Numbers are plain JSON numbers.
[ -n "${BASH_SOURCE[1]:-}" ] || { echo "bench-lib.sh: sourced helper"; exit 0; }

BL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bl_log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
bl_die() { printf '%s: %s\n' "${BL_NAME:-bench}" "$*" >&2; exit 1; }

# bl_find_mailret: sets MAILRET_BIN (environment, else build/release, build-bench, any
# build*/cli/mailret) or returns 1.
bl_find_mailret() {
    local c
    if [ -n "${MAILRET_BIN:-}" ] && [ -x "$MAILRET_BIN" ]; then
        return 0
    fi
    for c in "$BL_ROOT/build/release/cli/mailret" "$BL_ROOT/build-bench/cli/mailret" \
             "$BL_ROOT"/build*/cli/mailret; do
        if [ -x "$c" ]; then
            MAILRET_BIN=$c
            export MAILRET_BIN
            return 0
        fi
    done
    return 1
}

# bl_implemented COMMAND: 0 if `mailret COMMAND` is implemented (its --help does not say
# "Not implemented yet").
bl_implemented() {
    ! "$MAILRET_BIN" "$1" --help 2>&1 | grep -qi 'not implemented'
}

# bl_run NAME CMD...: run CMD (no shell; wrap pipelines in bash -c), measuring wall time
# and the peak RSS of the largest process in its tree.  Sets BL_SECONDS, BL_RSS_KB,
# BL_STATUS; output goes to $BL_WORK/NAME.log.  Returns CMD's status.
bl_run() {
    local name=$1 res
    shift
    res=$(python3 - "$BL_WORK/$name.log" "$@" <<'PY'
import os, subprocess, sys, time
log = open(sys.argv[1], "wb")
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT)
_, status, ru = os.wait4(p.pid, 0)
wall = time.monotonic() - t0
# ru_maxrss of the waited child covers it; its own children are in RUSAGE_CHILDREN.
import resource
rss = max(ru.ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
code = os.waitstatus_to_exitcode(status)
print("%.3f %d %d" % (wall, rss, code))
PY
    )
    read -r BL_SECONDS BL_RSS_KB BL_STATUS <<<"$res"
    return "$BL_STATUS"
}

# bl_bytes PATH...: total size in bytes of the regular files under PATH.
bl_bytes() {
    find "$@" -type f -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {printf "%.0f\n", s}'
}

# bl_div A B [DIGITS]: A/B, or "null" when either is empty/null or B is 0.
bl_div() {
    python3 -c '
import sys
a, b, d = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    a, b = float(a), float(b)
    print(round(a / b, d) if b else "null")
except ValueError:
    print("null")' "$1" "$2" "${3:-2}"
}

# bl_stats "T1 T2 ...": "MEDIAN MIN MAX" of the numbers given (empty when none).  Figures
# are medians of several runs: one run on a shared machine moves by tens of per cent.
bl_stats() {
    python3 -c '
import statistics, sys
v = [float(x) for x in sys.argv[1].split()]
if v:
    print("%.3f %.3f %.3f" % (statistics.median(v), min(v), max(v)))' "$1"
}

# bl_order ROUND NAME...: the NAMEs rotated by ROUND, so that no tool always runs first
# (and pays for a cold cache or a busy neighbour) or always right after another.
bl_order() {
    local r=$1
    shift
    local n=$# i
    local a=("$@")
    for ((i = 0; i < n; i++)); do
        printf '%s\n' "${a[$(( (i + r) % n ))]}"
    done
}

# bl_result KEY=VALUE...: append one figure to $BENCH_RESULTS.  Keys: bench figure unit
# ours peer peer_name higher_is_better(true/false) target note, and one of:
#   min_ratio=R   pass if ours/peer >= R   (throughput: ours must be R times the peer's)
#   max_ratio=R   pass if ours/peer <= R   (size/time: at most R times the peer's)
#   max=V         pass if ours <= V        (an absolute limit, e.g. RSS)
# Empty or "null" numbers are written as null.
bl_result() {
    : "${BENCH_RESULTS:?BENCH_RESULTS not set}"
    python3 - "$@" >>"$BENCH_RESULTS" <<'PY'
import json, sys
kv = dict(a.split("=", 1) for a in sys.argv[1:])
def num(k):
    v = kv.get(k, "")
    try:
        return float(v) if v not in ("", "null", "n/a") else None
    except ValueError:
        return None
ours, peer = num("ours"), num("peer")
ratio = round(ours / peer, 3) if ours is not None and peer not in (None, 0.0) else None
ok = None
if "min_ratio" in kv and ratio is not None:
    ok = ratio >= float(kv["min_ratio"])
elif "max_ratio" in kv and ratio is not None:
    ok = ratio <= float(kv["max_ratio"])
elif "max" in kv and ours is not None:
    ok = ours <= float(kv["max"])
row = {
    "bench": kv.get("bench", ""), "figure": kv.get("figure", ""), "unit": kv.get("unit", ""),
    "ours": ours, "peer": peer, "peer_name": kv.get("peer_name") or None, "ratio": ratio,
    "higher_is_better": kv.get("higher_is_better", "true") == "true",
    "target": kv.get("target") or None, "pass": ok, "note": kv.get("note") or None,
}
print(json.dumps(row, ensure_ascii=False))
PY
}

# bl_corpus COUNT DIR: a generated corpus in DIR (DIR/Maildir, DIR/members.csv,
# DIR/truth.jsonl), reused if DIR already holds one of that size.
bl_corpus() {
    local count=$1 dir=$2
    if [ -f "$dir/.count" ] && [ "$(cat "$dir/.count")" = "$count" ]; then
        return 0
    fi
    rm -rf "$dir"
    bl_log "generating a corpus of $count messages"
    python3 "$BL_ROOT/scripts/gen-corpus" --count "$count" --seed bench --out "$dir" \
        --months 6 --quiet
    echo "$count" > "$dir/.count"
}

# bl_mailret_config FILE DIR [WORKERS [ARCHIVE_LINES [KEYS_LINES]]]: a configuration for
# offline work (backup --from-maildir, restore, verify): IMAP settings are placeholders,
# everything else under DIR; ARCHIVE_LINES and KEYS_LINES (newline-separated) are added
# to [archive] and [keys] (the object store, IT's own vault and pinned keys).
bl_mailret_config() {
    local file=$1 dir=$2 workers=${3:-0} archive=${4:-} keys=${5:-}
    cat > "$file" <<EOF
[imap]
host = localhost
user = bench
password_env = MAILRET_BENCH_IMAP_PASSWORD
[mailboxes]
mailbox = INBOX
[members]
own_domains = akasse.example
[archive]
dir = $dir/archive
workers = $workers
$archive
[keys]
vault_dir = $dir/vault
it_cert = $dir/it.crt
$keys
[state]
dir = $dir/state
[log]
level = warn
EOF
}

# bl_keys DIR CONF: IT key pair (passphrase in DIR/it.pass) and host keys for CONF.
bl_keys() {
    local dir=$1 conf=$2
    mkdir -p "$dir/it" "$dir/state" "$dir/vault"
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/it.pass"
    chmod 600 "$dir/it.pass"
    "$MAILRET_BIN" -q -c "$conf" keys init-it --key "$dir/it/it.key" --cert "$dir/it/it.crt" \
        --passphrase-file "$dir/it.pass" >"$dir/keys.log" 2>&1 || return 1
    "$MAILRET_BIN" -q -c "$conf" keys init-host --it-cert "$dir/it/it.crt" \
        >>"$dir/keys.log" 2>&1 || return 1
}

bl_machine_json() {
    python3 - <<'PY'
import json, os, platform
model = ""
try:
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            model = l.split(":", 1)[1].strip(); break
except OSError:
    pass
mem = 0
try:
    for l in open("/proc/meminfo"):
        if l.startswith("MemTotal"):
            mem = int(l.split()[1]) // 1024; break
except OSError:
    pass
print(json.dumps({"cpus": os.cpu_count(), "cpu_model": model, "mem_mb": mem,
                  "kernel": platform.release(), "python": platform.python_version()}))
PY
}
