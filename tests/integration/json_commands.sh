#!/bin/bash
# json_commands.sh — `--json` on every command that `mailret --help` lists, against the
# real Dovecot: each once succeeding and once failing, stdout parsed with Python's json.
# A success is one object without "error" and exit 0 (check: 0 or 1, its verdict); a
# failure is one object with a stable "error" code and a one-line "message", and a
# non-zero exit.  No command is left out: the list comes from `mailret --help`.
source "$(dirname "$0")/purge_lib.sh"

setup jsoncmd 30 json-commands-1
cp "$T/mailret.conf" "$T/good.conf"
MISSING="$T/no-such.conf"
ok=()

# json_ok NAME CMD...: run, expect exit 0 (or $EXPECT_RC) and one object without "error".
json_ok() {
    local name=$1; shift
    set +e; "$@" > "$T/$name.out" 2> "$T/$name.err"; local rc=$?; set -e
    python3 - "$T/$name.out" "$rc" "${EXPECT_RC:-0}" <<'PY' || fail "$name: success case: rc $rc: $(cat "$T/$name.out" "$T/$name.err" | head -20)"
import json, sys
text = open(sys.argv[1]).read()
obj = json.loads(text)                  # exactly one JSON document, nothing else
assert isinstance(obj, dict), obj
assert "error" not in obj, obj
assert str(sys.argv[2]) in sys.argv[3].split(","), ("exit", sys.argv[2])
PY
    ok+=("$name")
}
# json_fail NAME CMD...: expect a non-zero exit and one object with error and message.
json_fail() {
    local name=$1; shift
    set +e; "$@" > "$T/$name.fout" 2> "$T/$name.ferr"; local rc=$?; set -e
    [ "$rc" != 0 ] || fail "$name: failure case exited 0"
    python3 - "$T/$name.fout" <<'PY' || fail "$name: failure case: $(cat "$T/$name.fout" "$T/$name.ferr" | head -20)"
import json, sys
obj = json.loads(open(sys.argv[1]).read())
assert isinstance(obj, dict), obj
assert obj["error"] and isinstance(obj["error"], str) and obj["error"] != "unknown", obj
assert obj["message"] and "\n" not in obj["message"], obj
PY
}
M() { "$MAILRET_BIN" -c "$T/mailret.conf" "$@"; }
bad() { "$MAILRET_BIN" -c "$MISSING" "$@"; }
R=(--it-key "$T/it.key" --it-passphrase-file "$T/it.pass" --reason "ticket 1")
printf 'anna@example.dk\n' > "$T/erase.in"

json_ok members M members import --json "$T/corpus/members.csv"
json_fail members M members import --json "$T/no-such.csv"
json_ok ingest M ingest --json
json_fail ingest bad ingest --json
json_ok purge M purge --json
json_fail purge bad purge --json
json_ok backup M backup --all --json
json_fail backup bad backup --all --json
batch=$(basename "$(dirname "$(find "$T/archive" -name manifest.json | head -1)")")
json_ok verify M verify --json all
json_fail verify M verify --json no-such-batch
json_ok restore M restore --list --json "${R[@]}"
json_fail restore M restore --list --json "${R[@]}" --message-id "<none@example.invalid>"
# The outside address with the most messages in the corpus (its truth): the access
# request's person, with mail in the purged batches.
person=$(python3 -c '
import collections, json, sys
c = collections.Counter()
for l in open(sys.argv[1], encoding="utf-8"):
    c.update({i["value"].lower() for i in json.loads(l).get("identifiers", [])
              if i.get("kind") == "email" and "akasse.example" not in i["value"]})
print(c.most_common(1)[0][0])' "$T/corpus/truth.jsonl")
printf '%s\n' "$person" > "$T/person.in"
json_ok access-request M access-request --json "${R[@]}" --mbox "$T/ar.mbox" < "$T/person.in"
json_fail access-request M access-request --json "${R[@]}" --mbox "$T/ar-none.mbox" \
    < "$T/erase.in"
json_ok locate M locate --json --add all --it-key "$T/it.key" --it-passphrase-file "$T/it.pass"
json_fail locate M locate --json --add no-such-batch --it-key "$T/it.key" \
    --it-passphrase-file "$T/it.pass"
json_ok status M status --json
json_fail status bad status --json
EXPECT_RC=0,1 json_ok check M check --offline --json
json_fail check bad check --json
json_ok expire M expire --dry-run --json
json_fail expire bad expire --json
json_ok hold M hold --json "$batch" --reason "ticket 2"
json_fail hold M hold --json no-such-batch --reason "ticket 2"
json_ok erase M erase --email --json < "$T/erase.in"
json_fail erase bad erase --json --email < "$T/erase.in"
json_ok config M config check --json
json_fail config bad config check --json
json_ok keys M keys list --json
json_fail keys M keys --json no-such-subcommand
json_ok unrouted M unrouted list --json
json_fail unrouted M unrouted show 999999 --json
json_ok audit M audit verify --json
json_fail audit bad audit verify --json
# init: into directories of its own, for a user that exists everywhere.
sed -e "s#$T/archive#$T/i/archive#; s#$T/vault#$T/i/vault#; s#^dir = $T/state#dir = $T/i/state#" \
    "$T/good.conf" > "$T/init.conf"
user=$(id -un); [ "$(id -u)" = 0 ] && user=nobody
json_ok init "$MAILRET_BIN" -c "$T/init.conf" init --json --user "$user"
json_fail init bad init --json

# The generic wrapper's shape: the text output, line by line.
python3 - "$T/audit.out" <<'PY' || fail "audit --json: $(cat "$T/audit.out")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["command"] == "audit" and j["status"] == "ok" and j["exit"] == 0
assert any("chain intact" in l for l in j["output"]), j
PY
python3 - "$T/members.fout" <<'PY' || fail "members failure: $(cat "$T/members.fout")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["status"] == "failed" and j["exit"] == 1 and "no-such.csv" in j["message"], j
PY
# A usage mistake is a JSON failure too, for a command with its own report and without.
json_fail usage_native M ingest --json --no-such-option
json_fail usage_wrapped M verify --json --no-such-option
[ "$(json_field "$T/usage_native.fout" 'j["error"]')" = usage ] || fail "native usage error code"

# Every command in `mailret --help` was covered.
cmds=$("$MAILRET_BIN" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF && $1 != "Commands:" {print $1}')
for c in $cmds; do
    printf '%s\n' "${ok[@]}" | grep -qx "$c" || fail "command $c has no --json test"
done
echo "PASS json_commands ($(echo $cmds | wc -w) commands)"
