# server_lib.sh — sourced by the *_lib.sh helpers of the shell tests that need the private
# Dovecot (not a test itself: it exits 0 when run alone).  Loads the server's connection
# facts, makes a scratch directory $T (removed on exit), and offers a fresh user with
# generated mail.
[ -n "${BASH_SOURCE[1]:-}" ] || { echo "server_lib.sh: helper, nothing to test"; exit 0; }
set -euo pipefail

: "${MAILRET_BIN:?}" "${MAILRET_SOURCE_DIR:?}" "${MAILRET_TEST_IMAP_DIR:?}"
ENV_FILE="$MAILRET_TEST_IMAP_DIR/env"
[ -r "$ENV_FILE" ] || { echo "test server not running ($ENV_FILE missing)" >&2; exit 1; }
# shellcheck disable=SC1090
. "$ENV_FILE"
SERVER_SCRIPT="$MAILRET_SOURCE_DIR/scripts/imap-test-server"

fail() { echo "FAIL: $*" >&2; exit 1; }

# The caller names the scratch directory's prefix in TEST_PREFIX (default "mailret-test").
T="$(mktemp -d "${TMPDIR:-/tmp}/${TEST_PREFIX:-mailret-test}.XXXXXX")"
trap 'rm -rf "$T"' EXIT

# new_user PREFIX: a user with a random name and password; sets USER_NAME, USER_PW,
# USER_MAILDIR; the password is also in $T/password (0600, for password_file).
new_user() {
    USER_NAME="$1$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    USER_PW="$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    printf '%s\n' "$USER_PW" | "$SERVER_SCRIPT" add-user --dir "$MAILRET_TEST_IMAP_DIR" \
        "$USER_NAME" - >/dev/null
    USER_MAILDIR="${MAIL_ROOT//%u/$USER_NAME}"
    printf '%s' "$USER_PW" > "$T/password"
    chmod 600 "$T/password"
}

# The tests' clock.  Every date a test uses is derived from the clock its processes see
# (the real one, or a fixed one that scripts/test-dates sets for the whole run with
# libfaketime), never written into the test, so that no month boundary, DST change or year
# end can turn a test red on its own.
#
# month_start_epoch [MONTHS_BACK]: 00:00 on the 1st of the current month (minus MONTHS_BACK
# months) in Europe/Copenhagen, as epoch seconds: the purge's default cutoff.
month_start_epoch() {
    python3 - "${1:-0}" <<'PY'
import datetime, sys, zoneinfo
z = zoneinfo.ZoneInfo("Europe/Copenhagen")
n = datetime.datetime.now(z)
m = n.year * 12 + (n.month - 1) - int(sys.argv[1])
print(int(datetime.datetime(m // 12, m % 12 + 1, 1, tzinfo=z).timestamp()))
PY
}
# epoch_iso EPOCH: the same instant as mailret takes it on the command line (UTC).
epoch_iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# gen_corpus COUNT SEED [MONTHS]: generated mail straight into the user's INBOX, internal
# dates spread over the MONTHS (default 3) months before today (00:00 UTC: never in the
# future, where a server would not keep them as dates); truth in $T/corpus.
gen_corpus() {
    python3 "$MAILRET_SOURCE_DIR/scripts/gen-corpus" --count "$1" --seed "$2" \
        --months "${3:-3}" --end "$(date -u +%F)" --out "$T/corpus" \
        --maildir-into "$USER_MAILDIR" --quiet
}

# append_recent N: N small messages appended to the user's INBOX, dated now (given, not left
# to the server: a Maildir server takes the file's time), so that there is mail newer than
# any cutoff up to now, even on the 1st.
append_recent() {
    python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" "$1" <<'PY'
import imaplib, ssl, sys, time
host, port, ca, user, pwf, n = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
for i in range(int(n)):
    typ, _ = m.append("INBOX", None, imaplib.Time2Internaldate(time.time()),
                      b"From: post@akasse.example\r\nTo: post@akasse.example\r\n"
                      b"Subject: recent %d\r\nMessage-ID: <recent-%d@akasse.example>\r\n\r\n"
                      b"New this month.\r\n" % (i, i))
    assert typ == "OK", typ
m.logout()
PY
}
