#!/bin/bash
# ingest_auth.sh — logging in the ways [imap] auth offers, against the real Dovecot:
#  - xoauth2 and oauthbearer with a JWT from token_command (Dovecot's passdb oauth2
#    validates it locally): the corpus is ingested and routed; the command runs once per
#    connection; an expired token, a wrong signature and a token for another user are each
#    refused with one line naming the cause and a non-zero exit, for both mechanisms; a
#    failing token_command likewise;
#  - plain with SASL-IR, and (through a TLS-ending proxy that hides SASL-IR) without it;
#    the wire bytes are exactly RFC 3501/4959: "TAG AUTHENTICATE MECH[ response]" CRLF;
#  - STARTTLS stripped by an attacker: nothing of the token reaches the wire;
#  - no token in any file mailret wrote, nor in its output.
source "$(dirname "$0")/ingest_lib.sh"

new_user oauth
gen_corpus 40 ingest-auth-1
KEY_FILE="$OAUTH2_KEY_FILE"
JWT="$MAILRET_SOURCE_DIR/tests/tools/jwt_hs256.py"

proxy_pid=""
stop_proxy() { [ -z "$proxy_pid" ] || { kill "$proxy_pid" 2>/dev/null || true; wait "$proxy_pid" 2>/dev/null || true; }; proxy_pid=""; }
trap 'stop_proxy; rm -rf "$T"' EXIT

# token_script ARGS...: $T/tok.sh prints a fresh token made with ARGS, counts its runs in
# $T/runs and keeps every token it printed in $T/tokens (to search for them later).
token_script() {
    cat > "$T/tok.sh" <<EOF
#!/bin/sh
echo run >> "$T/runs"
tok=\$(python3 "$JWT" --key-file "$KEY_FILE" $*) || exit 1
echo "\$tok" >> "$T/tokens"
echo "\$tok"
EOF
    chmod 700 "$T/tok.sh"
}

# auth_config AUTH PORT SECRET-LINE: the configuration for the current user.
auth_config() {
    {
        echo "[imap]"
        echo "host = $HOST"
        echo "port = $2"
        echo "ca_file = $CA_FILE"
        echo "user = $USER_NAME"
        echo "auth = $1"
        echo "$3"
        echo "[mailboxes]"
        echo "mailbox = INBOX"
        echo "[members]"
        echo "own_domains = akasse.example"
        echo "[archive]"
        echo "dir = $T/archive"
        echo "[keys]"
        echo "vault_dir = $T/vault"
        echo "it_cert = $T/it.crt"
        echo "[state]"
        echo "dir = $T/state"
        echo "[log]"
        echo "file = $T/mailret.log"
        echo "level = debug"
    } > "$T/mailret.conf"
}

logins() {  # logins METHOD: Dovecot's successful logins of this user by METHOD
    grep -c "Login: user=<$USER_NAME>, method=$1," "$LOG" || true
}

# refused AUTH WHAT ARGS...: a token made with ARGS is refused with one line matching WHAT.
refused() {
    local auth="$1" what="$2"
    shift 2
    token_script "$@"
    auth_config "$auth" "$IMAPS_PORT" "token_command = $T/tok.sh"
    set +e
    mailret ingest > "$T/out" 2> "$T/err"
    rc=$?
    set -e
    [ "$rc" != 0 ] || fail "$auth $*: a bad token was accepted"
    [ "$(wc -l < "$T/err")" = 1 ] || fail "$auth $*: not one line: $(cat "$T/err")"
    grep -qE "$what" "$T/err" || fail "$auth $*: cause not named: $(cat "$T/err")"
    echo "$auth $*: $(cat "$T/err")"
}

# --- OAuth: good tokens ingest ------------------------------------------------------------
token_script --sub "$USER_NAME"
auth_config xoauth2 "$IMAPS_PORT" "token_command = $T/tok.sh"
mailret members import "$T/corpus/members.csv" > /dev/null 2>&1 || fail "import"
mailret ingest > "$T/x1.out" 2> "$T/x1.err" || fail "xoauth2 ingest: $(cat "$T/x1.err")"
check_routing "$T/mailret.log" || fail "xoauth2 ingest did not route the corpus"
[ "$(logins XOAUTH2)" = 1 ] || fail "Dovecot saw $(logins XOAUTH2) XOAUTH2 logins, want 1"

auth_config oauthbearer "$IMAPS_PORT" "token_command = $T/tok.sh"
mailret ingest > "$T/o1.out" 2> "$T/o1.err" || fail "oauthbearer ingest: $(cat "$T/o1.err")"
[ "$(logins OAUTHBEARER)" = 1 ] || fail "no OAUTHBEARER login"
# STARTTLS too, and a second connection in the same way: one token per connection.
auth_config oauthbearer "$IMAP_PORT" "token_command = $T/tok.sh
tls = starttls"
mailret ingest > "$T/o2.out" 2> "$T/o2.err" || fail "oauthbearer over STARTTLS: $(cat "$T/o2.err")"
[ "$(logins OAUTHBEARER)" = 2 ] || fail "no OAUTHBEARER login over STARTTLS"
[ "$(wc -l < "$T/runs")" = 3 ] || fail "token_command ran $(wc -l < "$T/runs") times for 3 connections"
[ "$(sort -u "$T/tokens" | wc -l)" = 3 ] || fail "connections did not each get a fresh token"
# Nothing routed twice by the later runs.
check_routing "$T/mailret.log" > /dev/null || fail "re-runs changed the routing"

# --- OAuth: bad tokens are refused, one line each ----------------------------------------
for auth in xoauth2 oauthbearer; do
    if [ "$auth" = xoauth2 ]; then cause="token rejected: 401"; else cause="token rejected: invalid_token"; fi
    refused "$auth" "$cause" --sub "$USER_NAME" --exp-in -600
    refused "$auth" "$cause" --sub "$USER_NAME" --wrong-key
    refused "$auth" "$cause" --sub "someone-else"
done
# The server did log those attempts as failures (so the test hit the OAuth passdb).
grep -q "user=<$USER_NAME>, method=OAUTHBEARER" "$LOG" || fail "no OAUTHBEARER attempts in the server log"

# A token command that fails, or prints nothing.
printf '#!/bin/sh\necho "curl: (6) Could not resolve host" >&2\nexit 6\n' > "$T/bad.sh"
chmod 700 "$T/bad.sh"
auth_config xoauth2 "$IMAPS_PORT" "token_command = $T/bad.sh"
set +e; mailret ingest > "$T/out" 2> "$T/err"; rc=$?; set -e
[ "$rc" != 0 ] || fail "a failing token_command was ignored"
grep -q "^mailret ingest: .*token_command bad.sh failed (exit status 6)" "$T/err" ||
    fail "failing token_command: $(cat "$T/err")"
printf '#!/bin/sh\nexit 0\n' > "$T/bad.sh"
set +e; mailret ingest > "$T/out" 2> "$T/err"; rc=$?; set -e
[ "$rc" != 0 ] && [ "$(wc -l < "$T/err")" = 1 ] && grep -q "printed nothing" "$T/err" ||
    fail "empty token: $(cat "$T/err")"

# --- PLAIN, with and without SASL-IR, and the bytes on the wire --------------------------
auth_config plain "$IMAPS_PORT" "password_file = $T/password"
mailret ingest > /dev/null 2> "$T/p1.err" || fail "plain: $(cat "$T/p1.err")"
[ "$(logins PLAIN)" = 1 ] || fail "no PLAIN login"

# start_proxy TARGET-PORT ARGS...: a TLS-ending proxy that records what mailret sends.
start_proxy() {
    local target="$1"
    shift
    stop_proxy
    rm -f "$T/proxy.port" "$T/wire"
    python3 "$MAILRET_SOURCE_DIR/tests/tools/faultproxy.py" --target-port "$target" \
        --record-client "$T/wire" --lifetime 120 --port-file "$T/proxy.port" "$@" > /dev/null &
    proxy_pid=$!
    for _ in $(seq 300); do [ -s "$T/proxy.port" ] && break; sleep 0.1; done
    [ -s "$T/proxy.port" ] || fail "proxy did not start"
}
TLSDIR="$(dirname "$CA_FILE")"
tls_proxy() { start_proxy "$IMAPS_PORT" --tls-cert "$TLSDIR/server.crt" --tls-key "$TLSDIR/server.key" "$@"; }

# wire_auth_line: the AUTHENTICATE command line mailret sent, exactly (CRLF shown as \r\n).
wire_lines() { python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); [print(repr(l)) for l in d.split(b"\n")]' "$T/wire"; }

# With SASL-IR (Dovecot advertises it): the response rides on the command line.
tls_proxy
auth_config plain "$(cat "$T/proxy.port")" "password_file = $T/password"
mailret ingest > /dev/null 2> "$T/p2.err" || fail "plain via proxy: $(cat "$T/p2.err")"
python3 - "$T/wire" "$USER_NAME" "$USER_PW" <<'PY' || fail "PLAIN with SASL-IR: wrong bytes on the wire"
import base64, re, sys
wire = open(sys.argv[1], "rb").read()
want = base64.b64encode(b"\0" + sys.argv[2].encode() + b"\0" + sys.argv[3].encode())
lines = wire.split(b"\r\n")
auth = [l for l in lines if b"AUTHENTICATE" in l]
assert len(auth) == 1, auth
assert re.fullmatch(rb"\d+ AUTHENTICATE PLAIN " + re.escape(want), auth[0]), auth[0]
PY

# Without SASL-IR: the proxy hides it; mailret must wait for the "+" and answer then.
tls_proxy --replace "SASL-IR " ""
auth_config plain "$(cat "$T/proxy.port")" "password_file = $T/password"
mailret ingest > /dev/null 2> "$T/p3.err" || fail "plain without SASL-IR: $(cat "$T/p3.err")"
python3 - "$T/wire" "$USER_NAME" "$USER_PW" <<'PY' || fail "PLAIN without SASL-IR: wrong bytes on the wire"
import base64, re, sys
wire = open(sys.argv[1], "rb").read()
want = base64.b64encode(b"\0" + sys.argv[2].encode() + b"\0" + sys.argv[3].encode())
lines = wire.split(b"\r\n")
i = [n for n, l in enumerate(lines) if b"AUTHENTICATE" in l]
assert len(i) == 1, lines
assert re.fullmatch(rb"\d+ AUTHENTICATE PLAIN", lines[i[0]]), lines[i[0]]
assert lines[i[0] + 1] == want, lines[i[0] + 1]
PY
[ "$(logins PLAIN)" = 3 ] || fail "PLAIN logins: $(logins PLAIN), want 3"
# A wrong password with PLAIN: one line, the cause.
printf 'wrong-password' > "$T/wrongpw"; chmod 600 "$T/wrongpw"
auth_config plain "$IMAPS_PORT" "password_file = $T/wrongpw"
set +e; mailret ingest > "$T/out" 2> "$T/err"; rc=$?; set -e
[ "$rc" != 0 ] && [ "$(wc -l < "$T/err")" = 1 ] && grep -q "wrong user name or password" "$T/err" ||
    fail "wrong PLAIN password: $(cat "$T/err")"

# A server that repeats the credential in its refusal does not get it into mailret's error.
tls_proxy --replace "Authentication failed." "Authentication failed for wrong-password."
auth_config plain "$(cat "$T/proxy.port")" "password_file = $T/wrongpw"
set +e; mailret ingest > "$T/out" 2> "$T/err"; rc=$?; set -e
[ "$rc" != 0 ] && [ "$(wc -l < "$T/err")" = 1 ] && grep -q "withheld" "$T/err" ||
    fail "echoed password: $(cat "$T/err")"
! grep -q "wrong-password" "$T/err" "$T/mailret.log" || fail "the echoed password reached mailret's output"

# XOAUTH2 on the wire: one line, the token only inside the base64 response.
token_script --sub "$USER_NAME"
tls_proxy
auth_config xoauth2 "$(cat "$T/proxy.port")" "token_command = $T/tok.sh"
mailret ingest > /dev/null 2> "$T/x2.err" || fail "xoauth2 via proxy: $(cat "$T/x2.err")"
python3 - "$T/wire" "$USER_NAME" "$(tail -1 "$T/tokens")" <<'PY' || fail "XOAUTH2: wrong bytes on the wire"
import base64, re, sys
wire = open(sys.argv[1], "rb").read()
want = base64.b64encode(b"user=" + sys.argv[2].encode() + b"\x01auth=Bearer " +
                        sys.argv[3].encode() + b"\x01\x01")
auth = [l for l in wire.split(b"\r\n") if b"AUTHENTICATE" in l]
assert len(auth) == 1 and re.fullmatch(rb"\d+ AUTHENTICATE XOAUTH2 " + re.escape(want), auth[0]), auth
assert sys.argv[3].encode() not in wire     # never in the clear, even inside TLS
PY

# --- STARTTLS stripped: the token never reaches the wire --------------------------------
start_proxy "$IMAP_PORT" --replace STARTTLS STARTTLZ
auth_config oauthbearer "$(cat "$T/proxy.port")" "token_command = $T/tok.sh
tls = starttls"
set +e; mailret ingest > "$T/out" 2> "$T/err"; rc=$?; set -e
[ "$rc" != 0 ] && grep -q "does not offer STARTTLS" "$T/err" || fail "stripped STARTTLS: $(cat "$T/err")"
! grep -q "AUTHENTICATE\|LOGIN" "$T/wire" || fail "a login was sent without TLS: $(cat "$T/wire")"
stop_proxy

# --- no token anywhere mailret wrote -----------------------------------------------------
[ "$(wc -l < "$T/tokens")" -ge 8 ] || fail "too few tokens recorded to search for"
while read -r tok; do
    # the whole token, or a piece of it (the signature)
    for piece in "$tok" "${tok##*.}"; do
        if grep -rlF --exclude=tokens --exclude=tok.sh --exclude=wire "$piece" "$T"; then
            fail "a token was written to the file(s) above"
        fi
    done
done < "$T/tokens"
echo "ingest_auth: ok"
