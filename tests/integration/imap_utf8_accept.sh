#!/bin/bash
# imap_utf8_accept.sh — mailbox names and RFC 6855 UTF8=ACCEPT.  Neither test server offers
# UTF8=ACCEPT, so the fault proxy adds it to the capability list, as a server that
# advertises it would: mailret sends ENABLE UTF8=ACCEPT, the real server does not confirm
# it (no ENABLED naming it), and mailret keeps sending modified UTF-7 names — it switches
# to UTF-8 only on the server's word.  Ingest finds the mail of "Sager æøå" both ways, and
# the wire grammar checker passes every command.
# servers: dovecot cyrus
source "$(dirname "$0")/ingest_lib.sh"
TOOLS="$MAILRET_SOURCE_DIR/tests/tools"

new_user utf8
gen_corpus 6 utf8-accept-1
python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" <<'PY'
import imaplib, ssl, sys
host, port, ca, user, pwf = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
typ, data = m.create('"Sager &AOYA+ADl-"')
assert typ == "OK", data
m.select("INBOX", readonly=True)
typ, data = m.uid("COPY", "1:4", '"Sager &AOYA+ADl-"')
assert typ == "OK", data
m.logout()
PY
write_config "[mailboxes]" "mailbox = Sager æøå"

run() {  # run NAME [faultproxy args...]: ingest through a recording proxy
    local name="$1"
    shift
    rm -f "$T/proxy.port"
    python3 "$TOOLS/faultproxy.py" --target-port "$IMAPS_PORT" --target-host "$HOST" \
        --tls-cert "$SERVER_DIR/tls/server.crt" --tls-key "$SERVER_DIR/tls/server.key" \
        --record-client "$T/$name.c2s" --lifetime 300 --port-file "$T/proxy.port" "$@" \
        > /dev/null 2> "$T/proxy.err" &
    local px=$!
    for _ in $(seq 1 300); do [ -s "$T/proxy.port" ] && break; sleep 0.1; done
    [ -s "$T/proxy.port" ] || fail "proxy did not start: $(cat "$T/proxy.err")"
    sed -i "s/^port = .*/port = $(cat "$T/proxy.port")/" "$T/mailret.conf"
    rm -rf "$T/state/ingest-state.sqlite"
    mailret ingest --json > "$T/$name.json" 2> "$T/$name.log" || { kill "$px"; fail "$name: ingest: $(tail -3 "$T/$name.log")"; }
    kill "$px" 2>/dev/null || true
    wait "$px" 2>/dev/null || true
    [ "$(json_field "$T/$name.json" "[x for x in j['mailboxes'] if x['mailbox'] == 'Sager æøå'][0]['fetched']")" = 4 ] ||
        fail "$name: Sager æøå not ingested"
    python3 "$TOOLS/imap_grammar.py" --expect EXAMINE "$T/$name.c2s" > "$T/$name.grammar" ||
        { cat "$T/$name.grammar" >&2; fail "$name: wire grammar"; }
}

run plain
! grep -qa 'ENABLE' "$T/plain.c2s" || fail "ENABLE sent to a server without UTF8=ACCEPT"
grep -qaF 'EXAMINE "Sager &AOYA+ADl-"' "$T/plain.c2s" || fail "plain: name not in modified UTF-7"

# The capability list as a server offering UTF8=ACCEPT would send it.
run offered --replace 'IMAP4rev1 ' 'IMAP4rev1 UTF8=ACCEPT ' --replace 'IMAP4REV1 ' 'IMAP4REV1 UTF8=ACCEPT '
grep -qa 'ENABLE UTF8=ACCEPT' "$T/offered.c2s" || fail "ENABLE UTF8=ACCEPT not sent when offered"
grep -qaF 'EXAMINE "Sager &AOYA+ADl-"' "$T/offered.c2s" || fail "UTF-8 name sent without the server's ENABLED"
! grep -qa 'Sager æøå' "$T/offered.c2s" || fail "raw UTF-8 name on the wire"
echo "PASS imap_utf8_accept"
