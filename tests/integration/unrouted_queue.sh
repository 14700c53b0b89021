#!/bin/bash
# unrouted_queue.sh — `mailret unrouted` against the real Dovecot:
#  - list shows every unrouted message of the corpus (as its truth says) with id,
#    mailbox, date, age and size, and no address, subject or CPR number;
#  - show prints the header lines of the message whose bytes are stored, equal to what
#    Python's email package reads from those bytes;
#  - assign delivers the stored bytes to a member (and case) with rule "manual" and marks
#    the entry handled; a second assign, an unknown member and a case of another member
#    are refused with exit 1 and nothing changed; done marks handled, twice is harmless;
#  - both are in the audit log, which carries no identifier and still verifies;
#  - check (table, --json, --nagios perfdata) warns above unrouted_warn_count, and not
#    below it;
#  - with the maildir sink the queue is recorded without the bytes, and assign fetches
#    the message from IMAP again into the member's Maildir, byte for byte;
#  - a member database from before rule "manual" is migrated in place.
source "$(dirname "$0")/purge_lib.sh"

setup unrouted 120 unrouted-queue-1
# [members] lines go into the existing section.
members_conf() {
    python3 - "$T/mailret.conf" "$@" <<'PY'
import sys
path, extra = sys.argv[1], sys.argv[2:]
lines = open(path).read().split("\n")
i = lines.index("[members]")
open(path, "w").write("\n".join(lines[:i + 1] + extra + lines[i + 1:]))
PY
}
mailret members import "$T/corpus/members.csv" > /dev/null 2>&1 || fail "members import"
mailret ingest > /dev/null 2> "$T/ingest.log" || fail "ingest: $(tail -3 "$T/ingest.log")"
want_none="$(grep -c '"rule": "none"' "$T/corpus/truth.jsonl")"
[ "$want_none" -ge 4 ] || fail "corpus has only $want_none unrouted messages"
DB="$T/state/members.sqlite"

# Identifiers planted in the corpus, for the leak checks.
python3 - "$T/corpus/truth.jsonl" > "$T/needles" <<'PY'
import json, sys
for l in open(sys.argv[1], encoding="utf-8"):
    for i in json.loads(l).get("identifiers", []):
        v = i.get("value")
        if isinstance(v, str) and len(v) >= 6 and i.get("kind") in ("email", "cpr", "phone", "name"):
            print(v)
PY
[ -s "$T/needles" ] || fail "no identifiers in the corpus truth"
no_leak() { ! grep -qFf "$T/needles" "$1" || fail "an identifier in $2"; }

# ---- list ------------------------------------------------------------------------------
mailret unrouted list > "$T/list.txt" 2> "$T/list.err" || fail "list: $(cat "$T/list.err")"
[ "$(tail -1 "$T/list.txt")" = "$want_none message(s) waiting" ] || fail "list: $(tail -1 "$T/list.txt")"
no_leak "$T/list.txt" "unrouted list"
mailret unrouted list --json > "$T/list.json" || fail "list --json"
python3 - "$T/list.json" "$DB" "$T/corpus/truth.jsonl" <<'PY' || fail "list --json differs from the database"
import json, sqlite3, sys
j = json.load(open(sys.argv[1]))
db = sqlite3.connect(sys.argv[2])
rows = {r[0]: r[1:] for r in db.execute("SELECT id, sha256, size, source_uid FROM unrouted")}
truth = {t.get("imap_sha256") or t["sha256"] for t in map(json.loads, open(sys.argv[3]))
         if t["route"]["rule"] == "none"}
assert j["count"] == len(j["messages"]) == len(rows) == len(truth), (j["count"], len(rows))
for m in j["messages"]:
    sha, size, uid = rows[m["id"]]
    assert (m["sha256"], m["size"], m["uid"]) == (sha, size, uid), m
    assert m["mailbox"] == "INBOX" and m["handled"] == "" and m["bytes_stored"] is True
    assert sha in truth
    assert 0 <= m["age_seconds"] < 3600, m
PY
ids=($(python3 -c 'import json,sys; print(" ".join(str(m["id"]) for m in json.load(open(sys.argv[1]))["messages"]))' "$T/list.json"))

# ---- show ------------------------------------------------------------------------------
id1=${ids[0]}
mailret unrouted show "$id1" > "$T/show.txt" 2> "$T/show.err" || fail "show: $(cat "$T/show.err")"
grep -q "^status    waiting$" "$T/show.txt" || fail "show: not waiting"
python3 - "$T/show.txt" "$DB" "$id1" <<'PY' || fail "show's header lines differ from the message"
import email, email.policy, sqlite3, sys
shown = open(sys.argv[1], encoding="utf-8", errors="replace").read()
raw = sqlite3.connect(sys.argv[2]).execute("SELECT raw FROM unrouted WHERE id=?",
                                           (int(sys.argv[3]),)).fetchone()[0]
msg = email.message_from_bytes(raw, policy=email.policy.compat32)
seen = 0
for name in ("From", "Subject", "Date"):
    v = msg.get(name)
    if v is None:
        continue
    v = " ".join(str(v).split())
    line = [l for l in shown.split("\n") if l.lower().startswith("  %s:" % name.lower())]
    assert line, (name, shown)
    assert " ".join(line[0].split(":", 1)[1].split()) == v, (name, line[0], v)
    seen += 1
assert seen >= 2, shown
PY
mailret unrouted show "$id1" --json > "$T/show.json" || fail "show --json"
no_leak "$T/show.json" "show --json"
set +e; mailret unrouted show 999999 > /dev/null 2> "$T/nosuch.err"; rc=$?; set -e
[ "$rc" = 1 ] && grep -q "no unrouted message with id 999999" "$T/nosuch.err" || fail "show of a missing id: $rc"

# ---- assign ----------------------------------------------------------------------------
read -r m1 c1 m2 c2 <<< "$(python3 - "$T/corpus/members.csv" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1], encoding="utf-8")) if r["cases"]]
print(rows[0]["member_id"], rows[0]["cases"].split(";")[0], rows[1]["member_id"],
      rows[1]["cases"].split(";")[0])
PY
)"
docs_before=$(sqlite3 "$DB" "SELECT count(*) FROM documents")
set +e; mailret unrouted assign "$id1" --member NO-SUCH-MEMBER > /dev/null 2> "$T/a0.err"; rc=$?; set -e
[ "$rc" = 1 ] && grep -q "not in the registry" "$T/a0.err" || fail "unknown member: $rc $(cat "$T/a0.err")"
set +e; mailret unrouted assign "$id1" --member "$m1" --case "$c2" > /dev/null 2> "$T/a1.err"; rc=$?; set -e
[ "$rc" = 1 ] && grep -q "belongs to member" "$T/a1.err" || fail "other member's case: $rc $(cat "$T/a1.err")"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM documents")" = "$docs_before" ] || fail "a refused assign stored"
mailret unrouted assign "$id1" --member "$m1" --case "$c1" > "$T/a2.out" 2> "$T/a2.err" ||
    fail "assign: $(cat "$T/a2.err")"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM documents d JOIN unrouted u ON d.sha256 = u.sha256
     AND d.raw = u.raw WHERE u.id = $id1 AND d.member_id = '$m1' AND d.case_id = '$c1'
     AND d.rule = 'manual'")" = 1 ] || fail "assigned message not stored for $m1 with rule manual"
[ "$(sqlite3 "$DB" "SELECT handled > 0 FROM unrouted WHERE id = $id1")" = 1 ] || fail "not handled"
set +e; mailret unrouted assign "$id1" --member "$m1" --json > "$T/a3.json" 2> /dev/null; rc=$?; set -e
[ "$rc" = 1 ] || fail "second assign: exit $rc"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["error"] and "already handled" in j["message"], j' "$T/a3.json" ||
    fail "second assign --json: $(cat "$T/a3.json")"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM documents")" = $((docs_before + 1)) ] || fail "documents after assign"

# ---- done ------------------------------------------------------------------------------
id2=${ids[1]}
mailret unrouted done "$id2" > "$T/d1.out" || fail "done"
grep -q "marked handled" "$T/d1.out" || fail "done: $(cat "$T/d1.out")"
mailret unrouted done "$id2" --json > "$T/d2.json" || fail "done twice"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["status"] == "already handled"' "$T/d2.json" ||
    fail "done twice: $(cat "$T/d2.json")"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM documents")" = $((docs_before + 1)) ] || fail "done delivered"
mailret unrouted list --json > "$T/list2.json"
[ "$(json_field "$T/list2.json" 'j["count"]')" = $((want_none - 2)) ] || fail "list after assign and done"
mailret unrouted list --all --json > "$T/list3.json"
[ "$(json_field "$T/list3.json" 'j["count"]')" = "$want_none" ] || fail "list --all"

# Audit: both events, no identifier, chain intact.
grep -q '"event":"unrouted.assign","id":"'"$id1"'"' "$T/state/audit.log" || fail "assign not audited"
grep -q '"event":"unrouted.done","id":"'"$id2"'"' "$T/state/audit.log" || fail "done not audited"
no_leak "$T/state/audit.log" "the audit log"
grep -q "$m1" "$T/state/audit.log" && fail "member id in the audit log"
mailret audit verify > /dev/null 2>&1 || fail "audit chain broken"
no_leak "$T/ingest.log" "ingest's log"

# ---- check warns above the configured count ---------------------------------------------
waiting=$((want_none - 2))
sed -i "s/^unrouted_warn_count = .*/unrouted_warn_count = $((waiting - 1))/; s/^unrouted_warn_days = .*/unrouted_warn_days = 0/" "$T/mailret.conf"
grep -qx "unrouted_warn_count = $((waiting - 1))" "$T/mailret.conf" || fail "no threshold in the config"
set +e; mailret check --offline --json > "$T/c1.json" 2> /dev/null; set -e
[ "$(json_field "$T/c1.json" 'j["unrouted"]["status"]')" = BACKLOG ] || fail "no backlog warning: $(json_field "$T/c1.json" 'j["unrouted"]')"
[ "$(json_field "$T/c1.json" 'j["unrouted"]["waiting"]')" = "$waiting" ] || fail "check's waiting count"
set +e; mailret check --offline --nagios > "$T/c1.nag" 2> /dev/null; set -e
grep -q " unrouted=$waiting;$((waiting - 1));;0 " "$T/c1.nag" || fail "perfdata: $(cat "$T/c1.nag")"
grep -q "unrouted queue BACKLOG" "$T/c1.nag" || fail "nagios summary: $(cat "$T/c1.nag")"
sed -i "s/^unrouted_warn_count = .*/unrouted_warn_count = $waiting/" "$T/mailret.conf"
set +e; mailret check --offline --json > "$T/c2.json" 2> /dev/null; set -e
[ "$(json_field "$T/c2.json" 'j["unrouted"]["status"]')" = ok ] || fail "warning at the threshold"
set +e; mailret check --offline > "$T/c2.txt" 2> /dev/null; set -e
grep -q "^unrouted queue: ok, $waiting waiting" "$T/c2.txt" || fail "check table: $(grep unrouted "$T/c2.txt")"
# Age: the queue's entries were queued just now; an entry queued 10 days ago warns.
sqlite3 "$DB" "UPDATE unrouted SET ingested = ingested - 10 * 86400 WHERE id = ${ids[2]}"
sed -i "s/^unrouted_warn_days = .*/unrouted_warn_days = 9/" "$T/mailret.conf"
set +e; mailret check --offline --json > "$T/c3.json" 2> /dev/null; set -e
[ "$(json_field "$T/c3.json" '(j["unrouted"]["status"], j["unrouted"]["oldest_days"])')" = "('BACKLOG', 10)" ] ||
    fail "age warning: $(json_field "$T/c3.json" 'j["unrouted"]')"

# ---- maildir sink: queued without bytes, assign fetches from IMAP ------------------------
rm -rf "$T/state/members.sqlite"* "$T/state/ingest-state.sqlite"*
members_conf "backend = maildir" "maildir = $T/md"
mailret members import "$T/corpus/members.csv" > /dev/null 2>&1 || fail "members import (maildir)"
mailret ingest > /dev/null 2> "$T/ingest2.log" || fail "ingest (maildir): $(tail -3 "$T/ingest2.log")"
[ "$(sqlite3 "$DB" "SELECT count(*), sum(length(raw)) FROM unrouted")" = "$want_none|0" ] ||
    fail "maildir sink: queue $(sqlite3 "$DB" "SELECT count(*), sum(length(raw)) FROM unrouted")"
id=$(sqlite3 "$DB" "SELECT min(id) FROM unrouted")
sha=$(sqlite3 "$DB" "SELECT sha256 FROM unrouted WHERE id = $id")
mailret unrouted show "$id" > "$T/show2.txt" 2> "$T/show2.err" || fail "show (maildir)"
grep -q "^header$" "$T/show2.txt" || fail "show (maildir) fetched no header: $(cat "$T/show2.err")"
mailret unrouted assign "$id" --member "$m2" > /dev/null 2> "$T/a4.err" || fail "assign (maildir): $(cat "$T/a4.err")"
got=$(find "$T/md/$m2/new" -type f -exec sha256sum {} + | awk '{print $1}' | grep -c "^$sha$")
[ "$got" = 1 ] || fail "assigned message not in $m2's Maildir byte for byte"
grep -q '"event":"unrouted.assign","id":"'"$id"'","sink":"maildir"' "$T/state/audit.log" || fail "maildir assign not audited"

# ---- exec sink: the command gets the assigned message with MAILRET_RULE=manual ----------
rm -rf "$T/state/members.sqlite"* "$T/state/ingest-state.sqlite"* "$T/state/exec-sink.sqlite"*
mkdir -p "$T/exec"
sed -i "s#^backend = maildir#backend = exec#; s#^maildir = .*#command = cat > $T/exec/\$MAILRET_UID-\$MAILRET_RULE-\$MAILRET_MEMBER#" "$T/mailret.conf"
mailret members import "$T/corpus/members.csv" > /dev/null 2>&1 || fail "members import (exec)"
mailret ingest > /dev/null 2> "$T/ingest3.log" || fail "ingest (exec): $(tail -3 "$T/ingest3.log")"
id=$(sqlite3 "$DB" "SELECT min(id) FROM unrouted")
read -r uid sha <<< "$(sqlite3 -separator ' ' "$DB" "SELECT source_uid, sha256 FROM unrouted WHERE id = $id")"
[ -f "$T/exec/$uid-none-" ] || fail "exec sink: the unrouted delivery is not there"
mailret unrouted assign "$id" --member "$m2" > /dev/null 2> "$T/a5.err" || fail "assign (exec): $(cat "$T/a5.err")"
[ -f "$T/exec/$uid-manual-$m2" ] || fail "exec sink: assign did not run the command with rule manual: $(ls "$T/exec" | grep "^$uid-")"
[ "$(sha256sum < "$T/exec/$uid-manual-$m2" | cut -d' ' -f1)" = "$sha" ] || fail "exec sink: assigned bytes differ"
sed -i "s#^backend = exec#backend = maildir#; s#^command = .*#maildir = $T/md#" "$T/mailret.conf"

# ---- a member database from before rule "manual" --------------------------------------
python3 - "$T/old.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript("""
CREATE TABLE schema_version(version INTEGER NOT NULL); INSERT INTO schema_version VALUES(1);
CREATE TABLE members(member_id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '');
CREATE TABLE documents(id INTEGER PRIMARY KEY, member_id TEXT NOT NULL, case_id TEXT,
  rule TEXT NOT NULL CHECK(rule IN ('case','sender','cpr')), message_id TEXT,
  sha256 TEXT NOT NULL, received INTEGER NOT NULL, source_account TEXT NOT NULL,
  source_mailbox TEXT NOT NULL, source_uidvalidity INTEGER NOT NULL,
  source_uid INTEGER NOT NULL, size INTEGER NOT NULL, ingested INTEGER NOT NULL,
  raw BLOB NOT NULL,
  UNIQUE(source_account, source_mailbox, source_uidvalidity, source_uid, sha256));
INSERT INTO documents VALUES(1,'M','C','case',NULL,'00',0,'a','INBOX',1,1,1,0,x'41');
""")
db.commit()
PY
sed -i "s#^backend = maildir#database = $T/old.sqlite#; /^maildir = /d" "$T/mailret.conf"
mailret unrouted list > /dev/null 2> "$T/old.err" || fail "old database: $(cat "$T/old.err")"
python3 - "$T/old.sqlite" <<'PY' || fail "old database not migrated"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
assert db.execute("SELECT version FROM schema_version").fetchone()[0] == 2
db.execute("INSERT INTO documents VALUES(2,'M',NULL,'manual',NULL,'01',0,'a','INBOX',1,2,1,0,x'42')")
try:
    db.execute("INSERT INTO documents VALUES(3,'M',NULL,'bogus',NULL,'02',0,'a','INBOX',1,3,1,0,x'43')")
    sys.exit("the CHECK constraint is gone")
except sqlite3.IntegrityError:
    pass
assert db.execute("SELECT raw FROM documents WHERE id = 1").fetchone()[0] == b"A"
PY

echo "PASS unrouted_queue"
