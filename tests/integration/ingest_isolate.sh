#!/bin/bash
# ingest_isolate.sh — one message the member system refuses, or one mailbox that cannot be
# opened, never stops the others (real Dovecot, three configured mailboxes: Missing (does
# not exist), INBOX, Sager):
#  - exec sink refusing one INBOX message: every other message of INBOX and Sager is
#    delivered; the refusal is in the state by UID with its reason and first-failure time;
#    the position moves past it; the next run retries only it (nothing delivered twice);
#    once the sink accepts it, it is delivered and the refusal is gone;
#  - SQLite sink with a trigger that RAISEs for one document and one that silently IGNOREs
#    another: each is a refusal of that document only (its savepoint), the rest of the
#    batch is stored; without the triggers the next run stores both.
# Exit status is non-zero while anything failed, 0 once everything is delivered.
source "$(dirname "$0")/ingest_lib.sh"

new_user isolate
python3 "$MAILRET_SOURCE_DIR/scripts/gen-corpus" --count 60 --seed ingest-isolate-1 \
    --months 2 --end 2026-10-01 --out "$T/corpus" --maildir-into "$USER_MAILDIR" --quiet
python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" <<'PY'
import imaplib, ssl, sys
host, port, ca, user, pwf = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
typ, _ = m.create("Sager")
assert typ == "OK", typ
m.logout()
PY
python3 "$MAILRET_SOURCE_DIR/scripts/gen-corpus" --count 20 --seed ingest-isolate-2 \
    --months 2 --end 2026-10-01 --out "$T/corpus2" --maildir-into "$USER_MAILDIR/.Sager" --quiet

deliverable() { grep -cE '"rule": "(case|sender|cpr|none)"' "$1"; }
want_inbox=$(deliverable "$T/corpus/truth.jsonl")
want_sager=$(deliverable "$T/corpus2/truth.jsonl")
[ "$want_inbox" -gt 10 ] && [ "$want_sager" -gt 3 ] || fail "corpus too small"

mailboxes() {
    sed -i -e '/^mailbox = /d' "$T/mailret.conf"
    for mb in "$@"; do sed -i -e "/^\[mailboxes\]/a mailbox = $mb" "$T/mailret.conf"; done
}
sq() { python3 -c "import sqlite3,sys; print('\n'.join('|'.join(map(str,r)) for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])))" "$@"; }

# ---- exec sink refusing one message ------------------------------------------------------
mkdir -p "$T/exec"
cat > "$T/sink.sh" <<EOF
#!/bin/sh
# Refuses the first INBOX message from UID 5 on that it is offered, for as long as
# $T/refuse exists.
if [ -e "$T/refuse" ] && [ "\$MAILRET_MAILBOX" = INBOX ]; then
    if [ ! -s "$T/refuse-uid" ] && [ "\$MAILRET_UID" -ge 5 ]; then echo "\$MAILRET_UID" > "$T/refuse-uid"; fi
    if [ "\$MAILRET_UID" = "\$(cat "$T/refuse-uid")" ]; then cat > /dev/null; exit 1; fi
fi
[ ! -e "$T/exec/\$MAILRET_MAILBOX-\$MAILRET_UID" ] || { echo twice >> "$T/twice"; }
cat > "$T/exec/\$MAILRET_MAILBOX-\$MAILRET_UID"
EOF
chmod 755 "$T/sink.sh"
write_config "backend = exec" "command = $T/sink.sh"
mailboxes Sager INBOX Missing     # inserted in reverse: Missing, INBOX, Sager
touch "$T/refuse"

if mailret ingest --json > "$T/e1.json" 2> "$T/e1.log"; then fail "ingest exit 0 with a refusal and a missing mailbox"; fi
ruid=$(cat "$T/refuse-uid")
[ -n "$ruid" ] || fail "the sink was never offered an INBOX message"
[ "$(ls "$T/exec" | grep -c '^Sager-')" = "$want_sager" ] || fail "Sager not fully ingested beside the failures"
[ "$(ls "$T/exec" | grep -c '^INBOX-')" = $((want_inbox - 1)) ] || fail "INBOX: not every other message delivered ($(ls "$T/exec" | grep -c '^INBOX-') of $((want_inbox - 1)))"
[ ! -e "$T/exec/INBOX-$ruid" ] || fail "refused message counted as delivered"
[ "$(json_field "$T/e1.json" '[m["status"] for m in j["mailboxes"] if m["mailbox"]=="Missing"][0]')" != ok ] || fail "missing mailbox reported ok"
[ "$(json_field "$T/e1.json" '[m["errors"] for m in j["mailboxes"] if m["mailbox"]=="INBOX"][0]')" = 1 ] || fail "INBOX errors != 1"
st="$T/state/ingest-state.sqlite"
[ "$(sq "$st" "SELECT uid, rule <> '', attempts FROM refused")" = "$ruid|1|1" ] || { sq "$st" "SELECT * FROM refused"; fail "refusal not recorded by UID"; }
grep -q "exited with status 1" <<< "$(sq "$st" "SELECT reason FROM refused")" || fail "refusal reason missing"
first=$(sq "$st" "SELECT first_failed FROM refused")
maxuid=$(python3 -c "
import imaplib, ssl, sys
m = imaplib.IMAP4_SSL('$HOST', $IMAPS_PORT, ssl_context=ssl.create_default_context(cafile='$CA_FILE'))
m.login('$USER_NAME', open('$T/password').read().strip()); m.select('INBOX', readonly=True)
print(max(int(u) for u in m.uid('SEARCH', None, 'ALL')[1][0].split()))")
[ "$(sq "$st" "SELECT last_uid FROM mailbox_state WHERE mailbox='INBOX'")" = "$maxuid" ] || fail "position did not move past the refused UID"

sleep 1
if mailret ingest > /dev/null 2> "$T/e2.log"; then fail "second ingest exit 0 while still refused"; fi
grep -q "retrying 1 message" "$T/e2.log" || fail "refusal not retried"
[ ! -e "$T/twice" ] || fail "a message was delivered twice"
[ "$(sq "$st" "SELECT attempts, first_failed FROM refused")" = "2|$first" ] || fail "retry not counted or first failure moved"

rm "$T/refuse"
mailboxes Sager INBOX
mailret ingest > /dev/null 2> "$T/e3.log" || fail "ingest after the sink accepts: $(tail -3 "$T/e3.log")"
[ -e "$T/exec/INBOX-$ruid" ] || fail "refused message not delivered once accepted"
[ "$(ls "$T/exec" | grep -c '^INBOX-')" = "$want_inbox" ] || fail "INBOX incomplete after retry"
[ "$(sq "$st" "SELECT count(*) FROM refused")" = 0 ] || fail "refusal row left after delivery"
[ ! -e "$T/twice" ] || fail "a message was delivered twice"

# ---- SQLite sink: a trigger refuses one document, another silently ignores one ----------
rm -rf "$T/state" "$T/exec"
write_config
mailboxes Sager INBOX Missing
mailret members import "$T/corpus/members.csv" > /dev/null 2> "$T/import.log" || fail "import: $(cat "$T/import.log")"
read -r sha_abort sha_ignore < <(python3 - "$T/corpus/truth.jsonl" <<'PY'
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
docs = [t.get("imap_sha256") or t["sha256"] for t in docs if t["route"]["rule"] in ("case", "sender", "cpr")]
print(docs[len(docs) // 2], docs[len(docs) // 2 + 1])
PY
)
python3 - "$T/state/members.sqlite" "$sha_abort" "$sha_ignore" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript("""
CREATE TRIGGER test_refuse BEFORE INSERT ON documents WHEN NEW.sha256 = '%s'
BEGIN SELECT RAISE(ABORT, 'document refused by the test trigger'); END;
CREATE TRIGGER test_ignore BEFORE INSERT ON documents WHEN NEW.sha256 = '%s'
BEGIN SELECT RAISE(IGNORE); END;
""" % (sys.argv[2], sys.argv[3]))
db.commit()
PY
want_docs=$(grep -cE '"rule": "(case|sender|cpr)"' "$T/corpus/truth.jsonl")
if mailret ingest > /dev/null 2> "$T/s1.log"; then fail "sqlite ingest exit 0 with refusals"; fi
mdb="$T/state/members.sqlite"
[ "$(sq "$mdb" "SELECT count(*) FROM documents WHERE source_mailbox='INBOX'")" = $((want_docs - 2)) ] ||
    fail "SQLite sink: INBOX stored $(sq "$mdb" "SELECT count(*) FROM documents WHERE source_mailbox='INBOX'") of $((want_docs - 2)) (one refusal rolled back others?)"
[ "$(sq "$mdb" "SELECT count(*) FROM documents WHERE sha256 IN ('$sha_abort','$sha_ignore')")" = 0 ] || fail "refused documents stored"
[ "$(sq "$mdb" "SELECT (SELECT count(*) FROM documents WHERE source_mailbox='Sager') + (SELECT count(*) FROM unrouted WHERE source_mailbox='Sager')")" = "$want_sager" ] || fail "Sager not stored beside the refusals"
[ "$(sq "$st" "SELECT count(*) FROM refused WHERE mailbox='INBOX'")" = 2 ] || fail "SQLite refusals not recorded (RAISE(IGNORE) taken as a duplicate?)"
grep -q "refused by the test trigger" <<< "$(sq "$st" "SELECT reason FROM refused")" || fail "trigger's reason not recorded"
grep -q "did not store" <<< "$(sq "$st" "SELECT reason FROM refused")" || fail "ignored document not recorded as refused"

python3 -c "import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.executescript('DROP TRIGGER test_refuse; DROP TRIGGER test_ignore;')" "$mdb"
mailboxes Sager INBOX
mailret ingest > /dev/null 2> "$T/s2.log" || fail "sqlite ingest after dropping the triggers: $(tail -3 "$T/s2.log")"
[ "$(sq "$mdb" "SELECT count(*) FROM documents WHERE source_mailbox='INBOX'")" = "$want_docs" ] || fail "refused documents not stored on retry"
[ "$(sq "$mdb" "SELECT count(*) FROM (SELECT sha256 FROM documents GROUP BY sha256, source_mailbox HAVING count(*) > 1)")" = 0 ] || fail "a document stored twice"
[ "$(sq "$st" "SELECT count(*) FROM refused")" = 0 ] || fail "refusals left after delivery"
echo "PASS ingest_isolate (exec refused UID $ruid, SQLite refused 2, Missing beside INBOX and Sager)"
