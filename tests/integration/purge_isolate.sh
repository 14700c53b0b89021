#!/bin/bash
# purge_isolate.sh — nothing blocks the monthly deletion but what must stay (real Dovecot,
# explicit dates and --cutoff, so the result does not depend on today):
#  - a mailbox that cannot be opened (Missing) configured before INBOX: INBOX is purged;
#  - the exec sink refuses one old casework message: purge archives and expunges every
#    other old message and keeps exactly that one, listed by UID and reason in the report,
#    --json and the audit log; --dry-run says the same beforehand (from the ingest state);
#  - a message over [imap] max_message_size is archived and purged (the limit is ingest's);
#  - a purge that fails (server without UIDPLUS) is kept per mailbox and audited, and check
#    says why old mail is still there: "purge failed: <error>", then "held back since DATE"
#    (a warning, a violation after held_back_days: the refusal's age is set in the state);
#  - once the sink accepts it, the next purge delivers, archives and expunges it;
#  - after every step: server ∪ verified archive == original (SHA-256); the held message
#    never left the server before it was in the member system and in a verified archive.
source "$(dirname "$0")/purge_lib.sh"

new_user isolate
python3 "$MAILRET_SOURCE_DIR/scripts/gen-corpus" --count 80 --seed purge-isolate-1 --months 3 \
    --end 2026-10-20 --out "$T/corpus" --maildir-into "$USER_MAILDIR" --quiet
python3 "$MAILRET_SOURCE_DIR/scripts/gen-corpus" --count 1 --seed purge-isolate-big --months 1 \
    --end 2026-09-10 --large-message 1 --out "$T/corpus-big" --maildir-into "$USER_MAILDIR" --quiet
CUTOFF=2026-10-01
cut=$(python3 -c "
import datetime, zoneinfo
print(int(datetime.datetime(2026, 10, 1, tzinfo=zoneinfo.ZoneInfo('Europe/Copenhagen')).timestamp()))")
total=82
mkdir -p "$T/exec"
cat > "$T/sink.sh" <<EOF
#!/bin/sh
# Refuses the message whose SHA-256 is in $T/refuse, while that file exists.
if [ -e "$T/refuse" ] && [ "\$MAILRET_SHA256" = "\$(cat "$T/refuse")" ]; then cat > /dev/null; exit 3; fi
cat > "$T/exec/\$MAILRET_SHA256"
EOF
chmod 755 "$T/sink.sh"
conf() {
    write_config "${1:-$IMAPS_PORT}" "[members]" "backend = exec" "command = $T/sink.sh" \
        "[imap]" "max_message_size = 64K" "${@:2}"
}
conf "$IMAPS_PORT"
sed -i -e '/^\[mailboxes\]/a mailbox = Missing' "$T/mailret.conf"
setup_keys
server_shas > "$T/original.sha"
[ "$(wc -l < "$T/original.sha")" -eq "$total" ] || fail "corpus: $(wc -l < "$T/original.sha") of $total"
old=$(server_older "$cut")
[ "$old" -gt 30 ] && [ "$old" -lt "$total" ] || fail "corpus: $old of $total older than the cutoff"
big_sha=$(python3 -c "import json,sys; print([json.loads(l) for l in open(sys.argv[1])][-1]['imap_sha256'])" "$T/corpus-big/truth.jsonl")
[ "$(python3 -c "import json,sys; print([json.loads(l) for l in open(sys.argv[1])][-1]['imap_size'] > 65536)" "$T/corpus-big/truth.jsonl")" = True ] || fail "large message not large"
# The refused one: an old casework message.
refused_sha=$(python3 - "$T/corpus/truth.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[1], encoding="utf-8"):
    t = json.loads(l)
    if t["route"]["rule"] in ("case", "sender", "cpr") and t["internaldate"] < "2026-09-01":
        print(t["imap_sha256"]); break
PY
)
[ -n "$refused_sha" ] || fail "no old casework message in the corpus"
echo "$refused_sha" > "$T/refuse"
on_server() { grep -qx "$1" <<< "$(server_shas)"; }
uid_of() {
    python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" "$1" <<'PY'
import hashlib, imaplib, ssl, sys
host, port, ca, user, pwf, want = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip()); m.select("INBOX", readonly=True)
for uid in m.uid("SEARCH", None, "ALL")[1][0].split():
    data = m.uid("FETCH", uid, "(BODY.PEEK[])")[1]
    if hashlib.sha256(data[0][1]).hexdigest() == want:
        print(int(uid)); break
PY
}
ruid=$(uid_of "$refused_sha")
[ -n "$ruid" ] || fail "refused message not found on the server"

# ---- 1. a server without UIDPLUS: the purge fails, is recorded and audited ---------------
conf "$NOPLUS_PORT"
if mailret purge --cutoff "$CUTOFF" > "$T/p0.out" 2> "$T/p0.log"; then fail "purge without UIDPLUS exit 0"; fi
[ "$(server_shas | wc -l)" -eq "$total" ] || fail "failed purge deleted something"
grep -q '"event":"purge.failed"' "$T/state/audit.log" || fail "failed purge not audited"
grep '"event":"purge.failed"' "$T/state/audit.log" | grep -q UIDPLUS || fail "audit does not say why the purge failed"
conf "$IMAPS_PORT"
set +e; mailret check --at 2026-10-10 --json > "$T/c0.json" 2> "$T/c0.log"; rc=$?; set -e
[ "$rc" = 2 ] || fail "check after a failed purge: exit $rc"
[ "$(json_field "$T/c0.json" 'j["mailboxes"][0]["status"]')" = "NOT PURGED" ] || fail "check status after failed purge"
json_field "$T/c0.json" 'j["mailboxes"][0]["detail"]' | grep -q "purge failed: .*UIDPLUS" || { cat "$T/c0.json"; fail "check does not say the purge failed and why"; }
[ "$(json_field "$T/c0.json" 'j["mailboxes"][0]["last_purge"]["status"]')" = failed ] || fail "last purge result not shown"
[ "$(json_field "$T/c0.json" 'j["mailboxes"][0]["held"]')" = 1 ] || fail "check does not count the refused message as held back"
mailret check --offline > "$T/c0o.out" 2> "$T/c0o.log" || true
grep -q "last purge .*: failed: .*UIDPLUS" "$T/c0o.out" || { cat "$T/c0o.out"; fail "check --offline does not show the last purge's failure"; }

# ---- 2. dry run: tells what would be held back, from the ingest state --------------------
# A message with an old date arrives after that ingest: the dry run counts it as not yet
# ingested (the real run ingests it first and then purges it).
python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" <<'PY'
import imaplib, ssl, sys
host, port, ca, user, pwf = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
msg = (b"From: Late Sender <late.sender@example.net>\r\nTo: post@akasse.example\r\n"
       b"Subject: sent in August, delivered now\r\nMessage-ID: <late-1@example.net>\r\n"
       b"Date: Sat, 01 Aug 2026 10:00:00 +0200\r\n\r\nhello\r\n")
typ, _ = m.append("INBOX", None, imaplib.Time2Internaldate(1785571200), msg)
assert typ == "OK", typ
m.logout()
PY
server_shas > "$T/original.sha"
total=$((total + 1))
old=$((old + 1))
[ "$(wc -l < "$T/original.sha")" -eq "$total" ] || fail "appended message not on the server"
sed -i -e '/^\[mailboxes\]/a mailbox = Missing' "$T/mailret.conf"
set +e; mailret purge --dry-run --cutoff "$CUTOFF" --json > "$T/dry.json" 2> "$T/dry.log"; set -e
ib='[m for m in j["mailboxes"] if m["mailbox"]=="INBOX"][0]'
[ "$(json_field "$T/dry.json" "[(h['uid'], h['why']) for h in $ib['held']]")" = "[($ruid, 'not-delivered')]" ] ||
    { cat "$T/dry.json"; fail "dry run does not say what would be held back"; }
[ "$(json_field "$T/dry.json" "$ib['selected']")" = $((old - 1)) ] || fail "dry run plan: $(json_field "$T/dry.json" "$ib['selected']") of $((old - 1))"
[ "$(json_field "$T/dry.json" "$ib['pending_ingest']")" = 1 ] || fail "dry run does not count the message not yet ingested"
[ "$(server_shas | wc -l)" -eq "$total" ] || fail "dry run deleted something"

# ---- 3. the real purge: Missing fails, INBOX is purged around the refused message --------
set +e; mailret purge --cutoff "$CUTOFF" --json > "$T/p1.json" 2> "$T/p1.log"; rc=$?; set -e
[ "$rc" = 1 ] || fail "purge with a failing mailbox and a refusal: exit $rc"
[ "$(json_field "$T/p1.json" '[m["status"] for m in j["mailboxes"] if m["mailbox"]=="Missing"][0]')" != ok ] || fail "Missing reported ok"
[ "$(json_field "$T/p1.json" "$ib['status']")" = ok ] || fail "INBOX not purged beside Missing: $(json_field "$T/p1.json" "$ib['error']")"
[ "$(json_field "$T/p1.json" "[(h['uid'], h['why'], h['rule'] != '') for h in $ib['held']]")" = "[($ruid, 'not-delivered', True)]" ] ||
    { cat "$T/p1.json"; fail "held-back list"; }
json_field "$T/p1.json" "$ib['held'][0]['reason']" | grep -q "status 3" || fail "held-back reason"
[ "$(json_field "$T/p1.json" "$ib['expunged']")" = $((old - 1)) ] || fail "expunged $(json_field "$T/p1.json" "$ib['expunged']") of $((old - 1))"
[ "$(server_older "$cut")" = 1 ] || fail "old messages other than the held one remain"
on_server "$refused_sha" || fail "the refused message left the server"
[ ! -e "$T/exec/$refused_sha" ] || fail "refused message in the member system"
! on_server "$big_sha" || fail "the oversized message was not purged"
check_invariant "after the purge around the refusal"
grep -qx "$big_sha" "$T/now-archive.sha" || fail "the oversized message is not in the archive"
grep '"event":"purge.held"' "$T/state/audit.log" | grep -q "\"$ruid:not-delivered\"" || fail "held-back UID not audited"
grep '"event":"purge.failed"' "$T/state/audit.log" | grep -q Missing || fail "Missing's failure not audited"
grep -q "mailbox Missing: .*Missing" "$T/p1.log" || fail "the error does not name the mailbox"
! grep -q "mailbox Missing: mailbox Missing" "$T/p1.log" "$T/state/audit.log" || fail "error prefix repeated"

# ---- 4. check: held back since DATE is a warning, then a violation -----------------------
sed -i -e '/^mailbox = Missing/d' "$T/mailret.conf"
# first_failed DAYS: the refusal is that many days old as of the check's --at 2026-10-10.
first_failed() {
    python3 -c "
import datetime, sqlite3, sys
at = int(datetime.datetime(2026, 10, 10, tzinfo=datetime.timezone.utc).timestamp())
db = sqlite3.connect(sys.argv[1])
db.execute('UPDATE refused SET first_failed = ?', (at - int(sys.argv[2]) * 86400,))
db.commit()" "$T/state/ingest-state.sqlite" "$1"
}
first_failed 20
set +e; mailret check --at 2026-10-10 --json > "$T/c1.json" 2> "$T/c1.log"; rc=$?; set -e
[ "$rc" = 1 ] || { cat "$T/c1.json"; fail "check with a held-back message: exit $rc (want warning)"; }
[ "$(json_field "$T/c1.json" 'j["mailboxes"][0]["status"]')" = "HELD BACK" ] || fail "check status"
json_field "$T/c1.json" 'j["mailboxes"][0]["detail"]' | grep -q "not delivered to the member system since" || fail "check does not say why"
[ "$(json_field "$T/c1.json" 'j["mailboxes"][0]["last_purge"]["held"]')" = 1 ] || fail "last purge result"
json_field "$T/c1.json" 'j["mailboxes"][0]["held_since"]' | grep -q "^2026-09-20" || fail "held_since is not the first refusal"
first_failed 40
set +e; mailret check --at 2026-10-10 > "$T/c2.out" 2> "$T/c2.log"; rc=$?; set -e
[ "$rc" = 2 ] || fail "held back past held_back_days (30): exit $rc (want violation)"
grep -q "HELD BACK" "$T/c2.out" || fail "check table does not say HELD BACK"
conf "$IMAPS_PORT" "[retention]" "held_back_days = 60"
set +e; mailret check --at 2026-10-10 > "$T/c3.out" 2> "$T/c3.log"; rc=$?; set -e
[ "$rc" = 1 ] || fail "held_back_days = 60: exit $rc (want warning)"
conf "$IMAPS_PORT"

# ---- 5. the sink accepts it: the next purge delivers, archives and expunges it -----------
rm "$T/refuse"
mailret purge --cutoff "$CUTOFF" --json > "$T/p2.json" 2> "$T/p2.log" || fail "purge after the sink accepts: $(tail -3 "$T/p2.log")"
[ -e "$T/exec/$refused_sha" ] || fail "held message not delivered to the member system"
[ "$(sha256sum < "$T/exec/$refused_sha" | cut -d' ' -f1)" = "$refused_sha" ] || fail "member system got other bytes"
! on_server "$refused_sha" || fail "held message still on the server"
[ "$(server_older "$cut")" = 0 ] || fail "old messages remain"
[ "$(server_shas | wc -l)" -eq $((total - old)) ] || fail "newer messages were touched"
check_invariant "after the held message went"
grep -qx "$refused_sha" "$T/now-archive.sha" || fail "held message not in the archive"
mailret check --at 2026-10-10 > "$T/c4.out" 2> "$T/c4.log" || { cat "$T/c4.out"; fail "check after all went"; }
mailret audit verify > /dev/null || fail "audit chain"
echo "PASS purge_isolate ($((old - 1)) purged around UID $ruid, then it; oversized archived)"
