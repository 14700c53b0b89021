#!/bin/bash
# wire_grammar.sh — every byte mailret writes to a real IMAP server follows the RFC 3501
# grammar.  A TLS-ending logging proxy (tests/tools/wireproxy.py) sits between mailret and
# the server, over IMAPS and over STARTTLS; mailret runs every command that talks IMAP —
# purge (dry run and real, with its ingest), ingest again, check, restore by APPEND (twice
# into one mailbox: CREATE, then CREATE refused and LIST) — on mailboxes whose names need
# quoting, escaping and modified UTF-7; then an independent checker
# (tests/tools/imap_grammar.py, its own self-test in tests/standalone) parses each
# connection's client bytes and must find every expected command and no deviation.
# servers: dovecot cyrus
source "$(dirname "$0")/purge_lib.sh"
TOOLS="$MAILRET_SOURCE_DIR/tests/tools"

setup wire 30 wire-grammar-1
# Mailbox names as funds write them: blanks, quotes, a backslash, '&', Danish letters.
# Cyrus refuses '"' and '\' in a name: there, parentheses and brackets need the quoting.
BOX2='Sager "2026" \ sti'
BOX3='Sager æøå/R&D'
RESTORE_BOX='Gendannet ø "x"'
RESTORE_WIRE='Gendannet &APg- \"x\"'
if [ "$SERVER_KIND" = cyrus ]; then
    BOX2='Sager (2026) [x] ~'
    RESTORE_BOX='Gendannet ø (x)'
    RESTORE_WIRE='Gendannet &APg- (x)'
fi
python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" "$BOX2" "$BOX3" <<'PY'
import imaplib, ssl, sys
host, port, ca, user, pwf = sys.argv[1:6]
def mutf7(s):  # RFC 3501 5.1.3, for the test's own setup (Python has no codec for it)
    import base64
    out, run = [], []
    def flush():
        if run:
            b = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(b).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()
    for ch in s:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)
def q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
m.select("INBOX")
for box in sys.argv[6:]:
    typ, data = m.create(q(mutf7(box)))
    assert typ == "OK", (box, data)
    typ, data = m.uid("COPY", "1:8", q(mutf7(box)))
    assert typ == "OK", (box, data)
m.logout()
PY

proxy() {  # proxy NAME MODE PORT: a logging proxy; its port in $T/NAME.port
    python3 "$TOOLS/wireproxy.py" --mode "$2" --target-port "$3" --target-host "$HOST" \
        --cert "$SERVER_DIR/tls/server.crt" --key "$SERVER_DIR/tls/server.key" \
        --ca "$CA_FILE" --log-dir "$T/wire-$1" --port-file "$T/$1.port" --lifetime 850 \
        > /dev/null 2> "$T/$1.err" &
    echo $! >> "$T/proxy.pids"
    for _ in $(seq 1 300); do [ -s "$T/$1.port" ] && return 0; sleep 0.1; done
    fail "proxy $1 did not start: $(cat "$T/$1.err")"
}
stop_proxies() {
    local p
    [ -f "$T/proxy.pids" ] || return 0
    while read -r p; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done < "$T/proxy.pids"
    rm -f "$T/proxy.pids"
}
trap 'stop_proxies; [ -n "${KEEP_T:-}" ] || rm -rf "$T"' EXIT

proxy imaps imaps "$IMAPS_PORT"
proxy starttls starttls "$IMAP_PORT"

boxes=("[mailboxes]" "mailbox = $BOX2" "mailbox = $BOX3")
write_config "$(cat "$T/imaps.port")" "${boxes[@]}"
mailret purge --dry-run > "$T/dry.out" 2> "$T/dry.log" || fail "dry run: $(tail -3 "$T/dry.log")"
mailret purge > "$T/purge.out" 2> "$T/purge.log" || fail "purge: $(tail -3 "$T/purge.log")"
grep -q "expunged" "$T/purge.out" || { cat "$T/purge.out"; fail "purge expunged nothing"; }
mailret ingest > "$T/ingest.out" 2> "$T/ingest.log" || fail "ingest: $(tail -3 "$T/ingest.log")"
mailret check > "$T/check.out" 2> "$T/check.log" || fail "check: $(tail -3 "$T/check.log")"
for i in 1 2; do
    mailret restore --reason "wire test" --it-key "$T/it.key" --it-passphrase-file "$T/it.pass" \
        --imap-mailbox "$RESTORE_BOX" > "$T/restore$i.out" 2> "$T/restore$i.log" ||
        fail "restore $i: $(tail -3 "$T/restore$i.log")"
done

write_config "$(cat "$T/starttls.port")" "${boxes[@]}" "[imap]" "tls = starttls"
mailret ingest > "$T/ingest2.out" 2> "$T/ingest2.log" || fail "ingest over STARTTLS: $(tail -3 "$T/ingest2.log")"
# Without UIDPLUS (Dovecot's second instance, which does not offer it): purge's
# --allow-plain-expunge path, with UID SEARCH DELETED and a plain EXPUNGE.
more_expect=()
if [ "$SERVER_KIND" = dovecot ]; then
    proxy noplus imaps "$NOPLUS_PORT"
    write_config "$(cat "$T/noplus.port")" "[mailboxes]" "mailbox = $RESTORE_BOX"
    mailret purge --allow-plain-expunge > "$T/plain.out" 2> "$T/plain.log" ||
        fail "purge without UIDPLUS: $(tail -3 "$T/plain.log")"
    grep -q "expunged" "$T/plain.out" || { cat "$T/plain.out"; fail "plain EXPUNGE purge expunged nothing"; }
    more_expect=(--expect EXPUNGE)
fi

# A mailbox the server does not have: one line naming it once, not once per layer.
write_config "$(cat "$T/imaps.port")" "[mailboxes]" "mailbox = Findes ikke"
if mailret ingest > "$T/missing.out" 2> "$T/missing.log"; then fail "ingest of a missing mailbox succeeded"; fi
grep -q "mailbox Findes ikke: IMAP EXAMINE refused" "$T/missing.log" || fail "no error naming the mailbox: $(cat "$T/missing.log")"
if grep "mailbox Findes ikke:.*mailbox Findes ikke:" "$T/missing.log" >&2; then fail "a line names the mailbox twice"; fi
stop_proxies

ls "$T"/wire-imaps/conn-*.c2s "$T"/wire-starttls/conn-*.c2s > /dev/null || fail "no connection logged"
python3 "$TOOLS/imap_grammar.py" --expect CAPABILITY --expect STARTTLS --expect LOGIN \
    --expect EXAMINE --expect SELECT --expect "UID SEARCH" --expect "UID FETCH" \
    --expect "UID STORE" --expect "UID EXPUNGE" --expect APPEND --expect CREATE --expect LIST \
    --expect LOGOUT "${more_expect[@]}" "$T"/wire-*/conn-*.c2s > "$T/grammar.out" ||
    { cat "$T/grammar.out" >&2; fail "mailret wrote something the IMAP grammar does not allow"; }
cat "$T/grammar.out"
# The names reached the server as the mailboxes they name (modified UTF-7 on the wire).
grep -q 'Sager &AOYA+ADl-/R&-D' "$T"/wire-imaps/conn-*.c2s || fail "no modified UTF-7 name on the wire"
grep -qF "$RESTORE_WIRE" "$T"/wire-imaps/conn-*.c2s || fail "restore mailbox not in modified UTF-7"
# Each mailbox has its own archive directory, named reversibly.
[ -d "$T/archive/Sager%20%C3%A6%C3%B8%C3%A5%2FR%26D" ] || { ls "$T/archive" >&2; fail "archive directory name"; }
