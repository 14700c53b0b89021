#!/bin/bash
# archive_nul.sh — a message holding a NUL byte, restored by APPEND.  A plain IMAP literal
# cannot carry NUL.  Where the server offers BINARY with LITERAL+ (Dovecot and Cyrus both
# do) it goes as a literal8 and arrives whole, and the wire grammar checker passes what
# was sent.  Where it does not (the fault proxy hides BINARY, as a server without it would
# be) that message gets a one-line error naming the cause and nothing of it is sent, the
# other messages are restored, the summary counts it and the exit status is 1.
# servers: dovecot cyrus
source "$(dirname "$0")/purge_lib.sh"
TOOLS="$MAILRET_SOURCE_DIR/tests/tools"

new_user nul
write_config
setup_keys
# Three messages, the second with a NUL byte in its body.
md="$T/src"
mkdir -p "$md/cur" "$md/new" "$md/tmp"
for i in 1 2 3; do
    printf 'From: post@akasse.example\r\nTo: post@akasse.example\r\nSubject: nul %s\r\nMessage-ID: <nul-%s@akasse.example>\r\n\r\nline one\r\n' "$i" "$i" > "$md/cur/$i.host:2,S"
    [ "$i" != 2 ] || printf 'a NUL \000 here\r\n' >> "$md/cur/$i.host:2,S"
    printf 'end\r\n' >> "$md/cur/$i.host:2,S"
    touch -d "@$(( $(month_start_epoch 1) + i * 3600 ))" "$md/cur/$i.host:2,S"
done
[ "$(tr -cd '\000' < "$md/cur/2.host:2,S" | wc -c)" = 1 ] || fail "test message has no NUL"
mailret backup --from-maildir "$md" --mailbox INBOX --all > "$T/backup.out" 2>&1 ||
    fail "backup: $(cat "$T/backup.out")"

PX=""
trap '[ -z "$PX" ] || kill "$PX" 2>/dev/null || true; rm -rf "$T"' EXIT
start_proxy() {  # start_proxy TOOL ARGS...: its port into the configuration
    rm -f "$T/proxy.port"
    python3 "$@" --port-file "$T/proxy.port" --lifetime 600 > /dev/null 2> "$T/proxy.err" &
    PX=$!
    for _ in $(seq 1 300); do [ -s "$T/proxy.port" ] && break; sleep 0.1; done
    [ -s "$T/proxy.port" ] || fail "proxy did not start: $(cat "$T/proxy.err")"
    sed -i "s/^port = .*/port = $(cat "$T/proxy.port")/" "$T/mailret.conf"
}
stop_proxy() { kill "$PX" 2>/dev/null || true; wait "$PX" 2>/dev/null || true; PX=""; }
restore_into() {  # restore_into MAILBOX: exit status in $rc
    rc=0
    mailret restore --it-key "$T/it.key" --it-passphrase-file "$T/it.pass" --reason "nul test" \
        --imap-mailbox "$1" > "$T/$1.out" 2> "$T/$1.err" || rc=$?
}
server_count() {  # server_count MAILBOX
    python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" "$1" <<'PY'
import imaplib, ssl, sys
host, port, ca, user, pwf, box = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
typ, data = m.select(box, readonly=True)
print(int(data[0]) if typ == "OK" else -1)
PY
}

# 1. A server without BINARY: one line for the NUL message, the others restored.
start_proxy "$TOOLS/faultproxy.py" --target-port "$IMAPS_PORT" --target-host "$HOST" \
    --tls-cert "$SERVER_DIR/tls/server.crt" --tls-key "$SERVER_DIR/tls/server.key" \
    --replace BINARY BINARZ --record-client "$T/plain.c2s"
restore_into Plain
stop_proxy
[ "$rc" = 1 ] || { cat "$T/Plain.out" "$T/Plain.err"; fail "restore without BINARY: exit $rc"; }
[ "$(server_count Plain)" = 2 ] || fail "without BINARY: $(server_count Plain) messages restored"
[ "$(grep -c 'NUL byte' "$T/Plain.err")" = 1 ] || { cat "$T/Plain.err"; fail "no one-line NUL error"; }
grep 'NUL byte' "$T/Plain.err" | grep -q 'message 2 ' || { cat "$T/Plain.err"; fail "NUL error names another message"; }
grep -q 'restored 2 messages.*1 refused' "$T/Plain.out" || { cat "$T/Plain.out"; fail "summary"; }
! grep -qa '~{' "$T/plain.c2s" || fail "literal8 sent to a server without BINARY"
[ "$(tr -cd '\000' < "$T/plain.c2s" | wc -c)" = 0 ] || fail "a NUL byte went to a server without BINARY"

# 2. The server as it is (BINARY): all three arrive, the NUL message whole.
start_proxy "$TOOLS/wireproxy.py" --mode imaps --target-port "$IMAPS_PORT" --target-host "$HOST" \
    --cert "$SERVER_DIR/tls/server.crt" --key "$SERVER_DIR/tls/server.key" --ca "$CA_FILE" \
    --log-dir "$T/wire"
restore_into Restored
stop_proxy
[ "$rc" = 0 ] || { cat "$T/Restored.out" "$T/Restored.err"; fail "restore with BINARY: exit $rc"; }
[ "$(server_count Restored)" = 3 ] || fail "with BINARY: $(server_count Restored) messages restored"
python3 "$TOOLS/imap_grammar.py" --expect APPEND "$T"/wire/conn-*.c2s > "$T/grammar.out" ||
    { cat "$T/grammar.out" >&2; fail "wire grammar"; }
grep -qa 'APPEND "Restored" (\\Seen) "[ 0-9][0-9]-[A-Z][a-z][a-z]-[0-9]\{4\} [0-9:]\{8\} [-+][0-9]\{4\}" ~{[0-9]*+}' \
    "$T"/wire/conn-*.c2s || fail "no literal8 APPEND on the wire"
size=$(stat -c %s "$md/cur/2.host:2,S")
python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" "$size" <<'PY' || fail "NUL message size on the server"
import imaplib, re, ssl, sys
host, port, ca, user, pwf, size = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
m.select("Restored", readonly=True)
typ, data = m.fetch("1:*", "(RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
sizes = {}
for item in data:
    if isinstance(item, tuple):
        sizes[item[1].decode().strip()] = int(re.search(rb"RFC822\.SIZE (\d+)", item[0]).group(1))
assert sizes.get("Subject: nul 2") == int(size), (sizes, size)
PY
echo "PASS archive_nul (no BINARY: refused on one line, the rest restored; BINARY: literal8)"
