#!/bin/bash
# ingest_cli_sinks.sh — the CLI with the other sinks and bad input:
#  - `members import` of a file with bad rows: exit 1, FILE:LINE per bad row, no values;
#  - backend = maildir: every casework message in its member's Maildir, byte for byte,
#    unrouted ones in _unrouted, nothing else; a re-run adds nothing;
#  - backend = exec: the command gets each message on stdin with MAILRET_MEMBER/CASE;
#    a failing command makes ingest exit 1 and the next run delivers the rest once.
source "$(dirname "$0")/ingest_lib.sh"

new_user sinks
gen_corpus 150 ingest-sinks-1

# Bad registry rows.
write_config
printf 'member_id,cpr,name,emails,cases\nM1,010190-1234,A,a@example.dk,\nM2,999999-0000,B,b@example.dk,\nM3,,C,not-an-address,\n' > "$T/bad.csv"
if mailret members import "$T/bad.csv" > /dev/null 2> "$T/bad.err"; then fail "bad CSV accepted"; fi
grep -q "bad.csv:3: invalid CPR" "$T/bad.err" || fail "no FILE:LINE for the bad CPR: $(cat "$T/bad.err")"
grep -q "bad.csv:4: invalid e-mail" "$T/bad.err" || fail "no FILE:LINE for the bad address"
! grep -q "999999\|not-an-address" "$T/bad.err" || fail "a value leaked into the error"

# Maildir sink.
write_config "backend = maildir" "maildir = $T/md"
mailret members import "$T/corpus/members.csv" > /dev/null 2>&1 || fail "import"
mailret ingest --json > "$T/md1.json" 2> "$T/md1.log" || fail "ingest (maildir): $(tail -3 "$T/md1.log")"
python3 - "$T/corpus/truth.jsonl" "$T/md" <<'PY' || fail "Maildir sink content differs from truth"
import collections, glob, hashlib, json, os, sys
truth = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
got = collections.Counter()
for path in glob.glob(os.path.join(sys.argv[2], "*", "new", "*")):
    who = path.split(os.sep)[-3]
    got[(who, hashlib.sha256(open(path, "rb").read()).hexdigest())] += 1
want = collections.Counter()
for t in truth:
    r, sha = t["route"], t.get("imap_sha256") or t["sha256"]
    if r["rule"] in ("case", "sender", "cpr"):
        want[(r["member"], sha)] += 1
    elif r["rule"] == "none":
        want[("_unrouted", sha)] += 1
if got != want:
    print("maildir mismatch:", len(got - want), "unexpected,", len(want - got), "missing")
    sys.exit(1)
PY
mailret ingest > /dev/null 2>&1 || fail "second ingest (maildir)"
[ "$(find "$T/md" -type f | wc -l)" = "$(grep -cE '"rule": "(case|sender|cpr|none)"' "$T/corpus/truth.jsonl")" ] ||
    fail "re-run changed the Maildirs"

# Exec sink: fails while $T/refuse exists, for messages routed by CPR.
rm -rf "$T/state"
mkdir -p "$T/exec"
write_config "backend = exec" \
    "command = if [ -e $T/refuse ] && [ \"\$MAILRET_RULE\" = cpr ]; then exit 7; fi; cat > $T/exec/\$MAILRET_UID-\$MAILRET_RULE-\$MAILRET_MEMBER-\$MAILRET_CASE"
mailret members import "$T/corpus/members.csv" > /dev/null 2>&1 || fail "import"
touch "$T/refuse"
if mailret ingest > /dev/null 2> "$T/ex1.log"; then fail "ingest succeeded although messages were refused"; fi
grep -q "not delivered" "$T/ex1.log" || fail "no 'not delivered' message"
n_cpr="$(grep -c '"rule": "cpr"' "$T/corpus/truth.jsonl")"
[ "$(ls "$T/exec" | grep -c -- '-cpr-' || true)" = 0 ] || fail "refused messages were delivered"
rm "$T/refuse"
mailret ingest > /dev/null 2> "$T/ex2.log" || fail "ingest after the command recovered: $(tail -2 "$T/ex2.log")"
[ "$(ls "$T/exec" | grep -c -- '-cpr-')" = "$n_cpr" ] || fail "CPR-routed messages not delivered on retry"
[ "$(ls "$T/exec" | wc -l)" = "$(grep -cE '"rule": "(case|sender|cpr|none)"' "$T/corpus/truth.jsonl")" ] ||
    fail "exec sink delivered a wrong number of messages"
python3 - "$T/corpus/truth.jsonl" "$T/exec" <<'PY' || fail "exec sink got wrong bytes or routing"
import hashlib, json, os, sys
want = {}
for l in open(sys.argv[1], encoding="utf-8"):
    t = json.loads(l); r = t["route"]
    if r["rule"] in ("case", "sender", "cpr", "none"):
        want[t.get("imap_sha256") or t["sha256"]] = (r["rule"], r["member"] or "", r["case"] or "")
for name in os.listdir(sys.argv[2]):
    uid, rule, member, case = name.split("-", 3)
    sha = hashlib.sha256(open(os.path.join(sys.argv[2], name), "rb").read()).hexdigest()
    assert want.pop(sha) == (rule, member, case), name
assert not want
PY
echo "PASS ingest_cli_sinks"
