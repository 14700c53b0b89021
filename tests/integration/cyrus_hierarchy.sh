#!/bin/bash
# cyrus_hierarchy.sh — mailbox names on a server whose hierarchy separator is '.' and whose
# personal folders live under "INBOX." (Cyrus as installed before 3.0; this test starts
# its own such instance with scripts/cyrus-test-server --dot-hierarchy).  '/' in a
# configured name is the hierarchy separator and goes out as the server's ('.'), found
# by LIST "" ""; a name written with the server's separator ("INBOX.Sager") is used as
# written, and a name outside the personal namespace's prefix gets it, as NAMESPACE says
# ("Projekt/2026" is "INBOX.Projekt.2026" here, and "Projekt/2026" on Dovecot).  Ingest
# and a purge dry run find exactly the messages of each mailbox, and
# every command still passes the wire grammar check.
source "$(dirname "$0")/ingest_lib.sh"
TOOLS="$MAILRET_SOURCE_DIR/tests/tools"
CYR="$T/cyrus-dot"
chmod 711 "$T"   # Cyrus, run as root, drops to the mail user, which must reach CYR

"$MAILRET_SOURCE_DIR/scripts/cyrus-test-server" start --dir "$CYR" --dot-hierarchy > /dev/null ||
    fail "could not start Cyrus with '.' as separator"
trap '"$MAILRET_SOURCE_DIR/scripts/cyrus-test-server" stop --dir "$CYR" > /dev/null 2>&1; [ -n "${PX:-}" ] && kill "$PX" 2>/dev/null; rm -rf "$T"' EXIT
# shellcheck disable=SC1090
. "$CYR/env"
SERVER_DIR="$CYR"
SERVER_SCRIPT="$MAILRET_SOURCE_DIR/scripts/cyrus-test-server"
SERVER_KIND=cyrus

new_user hier
gen_corpus 12 cyrus-hierarchy-1
# Three folders below the INBOX, as the server names them: 5, 3 and 2 messages.
python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" <<'PY'
import imaplib, ssl, sys
host, port, ca, user, pwf = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
typ, data = m.list('""', '""')
assert b'"."' in data[0], data          # the separator this test is about
typ, data = m.namespace()
assert data[0].startswith(b'(("INBOX." "."))'), data   # and the personal prefix
for box, uids in (('"INBOX.Sager"', "1:5"), ('"INBOX.Sager.&AOY-r 2026"', "6:8"),
                  ('"INBOX.Projekt.2026"', "9:10")):
    typ, data = m.create(box)
    assert typ == "OK", (box, data)
    m.select("INBOX", readonly=True)
    typ, data = m.uid("COPY", uids, box)
    assert typ == "OK", (box, data)
m.logout()
PY

python3 "$TOOLS/wireproxy.py" --mode imaps --target-port "$IMAPS_PORT" --target-host "$HOST" \
    --cert "$CYR/tls/server.crt" --key "$CYR/tls/server.key" --ca "$CA_FILE" \
    --log-dir "$T/wire" --port-file "$T/proxy.port" --lifetime 600 > /dev/null 2> "$T/proxy.err" &
PX=$!
for _ in $(seq 1 300); do [ -s "$T/proxy.port" ] && break; sleep 0.1; done
[ -s "$T/proxy.port" ] || fail "proxy did not start: $(cat "$T/proxy.err")"
write_config "[mailboxes]" "mailbox = INBOX.Sager" "mailbox = INBOX/Sager/ær 2026" \
    "mailbox = Projekt/2026"
sed -i "s/^port = .*/port = $(cat "$T/proxy.port")/" "$T/mailret.conf"

mailret ingest --json > "$T/run.json" 2> "$T/run.log" || fail "ingest: $(tail -3 "$T/run.log")"
count() { json_field "$T/run.json" "[x for x in j['mailboxes'] if x['mailbox'] == '$1'][0]['fetched']"; }
[ "$(count INBOX)" = 12 ] || fail "INBOX: $(count INBOX) fetched"
[ "$(count INBOX.Sager)" = 5 ] || fail "INBOX.Sager: $(count INBOX.Sager) fetched"
[ "$(count 'INBOX/Sager/ær 2026')" = 3 ] || fail "INBOX/Sager/ær 2026: $(count 'INBOX/Sager/ær 2026') fetched"
[ "$(count Projekt/2026)" = 2 ] || fail "Projekt/2026: $(count Projekt/2026) fetched"
kill "$PX" 2>/dev/null || true
wait "$PX" 2>/dev/null || true
PX=""
python3 "$TOOLS/imap_grammar.py" --expect LIST --expect NAMESPACE --expect EXAMINE --expect "UID FETCH" \
    "$T"/wire/conn-*.c2s > "$T/grammar.out" || { cat "$T/grammar.out" >&2; fail "wire grammar"; }
grep -qF 'EXAMINE "INBOX.Sager.&AOY-r 2026"' "$T"/wire/conn-*.c2s || fail "'/' not sent as '.'"
grep -qE 'EXAMINE "?INBOX[.]Projekt[.]2026"?' "$T"/wire/conn-*.c2s || fail "personal prefix not added"
echo "cyrus_hierarchy: ok"
