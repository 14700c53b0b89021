#!/bin/bash
# ingest_uidvalidity.sh — a mailbox deleted and created again under the same name (a new
# UIDVALIDITY) is noticed and re-read, and SHA-256 deduplication keeps every message
# stored once: the second run reports the change, fetches the messages again and stores
# nothing new; a third run fetches nothing.  The mailbox is one level down in the
# hierarchy and has a Danish name, as the funds' shared folders do.
# servers: dovecot cyrus
source "$(dirname "$0")/ingest_lib.sh"

BOX='Sager æøå/2026'
new_user uv
gen_corpus 30 ingest-uidvalidity-1
write_config "[mailboxes]" "mailbox = $BOX"

# recreate: (re)create BOX and copy the INBOX into it; prints its UIDVALIDITY.
recreate() {
    python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" "$1" <<'PY'
import imaplib, re, ssl, sys, time
host, port, ca, user, pwf, delete = sys.argv[1:]
box = '"Sager &AOYA+ADl-/2026"'   # 'Sager æøå/2026' in modified UTF-7
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
if delete == "1":
    typ, data = m.delete(box)
    assert typ == "OK", data
    time.sleep(1.1)   # a server may derive UIDVALIDITY from the clock
typ, data = m.create(box)
assert typ == "OK", data
m.select("INBOX", readonly=True)
typ, data = m.uid("COPY", "1:*", box)
assert typ == "OK", data
typ, data = m.status(box, "(UIDVALIDITY MESSAGES)")
assert typ == "OK", data
uv = re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1)
n = re.search(rb"MESSAGES (\d+)", data[0]).group(1)
m.logout()
print(uv.decode(), n.decode())
PY
}

read -r uv1 n1 < <(recreate 0)
[ "$n1" = 30 ] || fail "setup: $n1 messages in the mailbox"
field() { json_field "$1" "[x for x in j['mailboxes'] if x['mailbox'] == '$BOX'][0]$2"; }
stored() { sqlite3 "$T/state/members.sqlite" "SELECT (SELECT count(*) FROM documents) + (SELECT count(*) FROM unrouted)"; }

mailret ingest --json > "$T/run1.json" 2> "$T/run1.log" || fail "ingest 1: $(tail -3 "$T/run1.log")"
[ "$(field "$T/run1.json" "['fetched']")" = 30 ] || fail "first run fetched $(field "$T/run1.json" "['fetched']")"
[ "$(field "$T/run1.json" "['uidvalidity']")" = "$uv1" ] || fail "UIDVALIDITY not reported"
n_stored="$(stored)"
[ "$n_stored" -gt 0 ] || fail "nothing stored"

read -r uv2 n2 < <(recreate 1)
[ "$uv2" != "$uv1" ] || fail "the server kept UIDVALIDITY $uv1 for the new mailbox"
[ "$n2" = 30 ] || fail "setup: $n2 messages after re-creating"

mailret ingest --json > "$T/run2.json" 2> "$T/run2.log" || fail "ingest 2: $(tail -3 "$T/run2.log")"
[ "$(field "$T/run2.json" "['uidvalidity_changed']")" = True ] || { cat "$T/run2.json"; fail "change not reported"; }
[ "$(field "$T/run2.json" "['uidvalidity']")" = "$uv2" ] || fail "new UIDVALIDITY not reported"
[ "$(field "$T/run2.json" "['fetched']")" = 30 ] || fail "the re-created mailbox was not re-read"
[ "$(stored)" = "$n_stored" ] || fail "re-reading stored messages twice: $(stored) rows, was $n_stored"

mailret ingest --json > "$T/run3.json" 2> "$T/run3.log" || fail "ingest 3: $(tail -3 "$T/run3.log")"
[ "$(field "$T/run3.json" "['fetched']")" = 0 ] || fail "third run fetched mail"
[ "$(field "$T/run3.json" "['uidvalidity_changed']")" = False ] || fail "third run saw a change"
echo "ingest_uidvalidity: ok ($SERVER_KIND, UIDVALIDITY $uv1 -> $uv2)"
