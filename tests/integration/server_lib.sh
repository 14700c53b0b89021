# server_lib.sh — sourced by the *_lib.sh helpers of the shell tests that need a private
# test server (not a test itself: it exits 0 when run alone).  Loads the server's
# connection facts, makes a scratch directory $T (removed on exit), and offers a fresh
# user with generated mail.  MAILRET_TEST_SERVER chooses the server: dovecot (default,
# scripts/imap-test-server in $MAILRET_TEST_IMAP_DIR) or cyrus (scripts/cyrus-test-server
# in $MAILRET_TEST_CYRUS_DIR).  A test that runs on both says so in a line
# "# servers: dovecot cyrus" (tests/CMakeLists.txt registers a _cyrus variant).
[ -n "${BASH_SOURCE[1]:-}" ] || { echo "server_lib.sh: helper, nothing to test"; exit 0; }
set -euo pipefail

: "${MAILRET_BIN:?}" "${MAILRET_SOURCE_DIR:?}"
SERVER_KIND="${MAILRET_TEST_SERVER:-dovecot}"
case "$SERVER_KIND" in
    dovecot) : "${MAILRET_TEST_IMAP_DIR:?}"; SERVER_DIR="$MAILRET_TEST_IMAP_DIR"
             SERVER_SCRIPT="$MAILRET_SOURCE_DIR/scripts/imap-test-server" ;;
    cyrus)   : "${MAILRET_TEST_CYRUS_DIR:?}"; SERVER_DIR="$MAILRET_TEST_CYRUS_DIR"
             SERVER_SCRIPT="$MAILRET_SOURCE_DIR/scripts/cyrus-test-server" ;;
    *) echo "MAILRET_TEST_SERVER must be dovecot or cyrus" >&2; exit 1 ;;
esac
ENV_FILE="$SERVER_DIR/env"
[ -r "$ENV_FILE" ] || { echo "test server not running ($ENV_FILE missing)" >&2; exit 1; }
# shellcheck disable=SC1090
. "$ENV_FILE"

fail() { echo "FAIL: $*" >&2; exit 1; }

# The caller names the scratch directory's prefix in TEST_PREFIX (default "mailret-test").
T="$(mktemp -d "${TMPDIR:-/tmp}/${TEST_PREFIX:-mailret-test}.XXXXXX")"
trap 'rm -rf "$T"' EXIT

# new_user PREFIX: a user with a random name and password; sets USER_NAME, USER_PW,
# USER_MAILDIR; the password is also in $T/password (0600, for password_file).
new_user() {
    USER_NAME="$1$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    USER_PW="$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    printf '%s\n' "$USER_PW" | "$SERVER_SCRIPT" add-user --dir "$SERVER_DIR" \
        "$USER_NAME" - >/dev/null
    USER_MAILDIR=""   # Dovecot only: mail can be written straight into it
    [ "$SERVER_KIND" != dovecot ] || USER_MAILDIR="${MAIL_ROOT//%u/$USER_NAME}"
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
# On Cyrus (no Maildir to write into) the generated Maildir is uploaded by APPEND with each
# file's flags and its mtime as INTERNALDATE, as Dovecot reads them from a Maildir.
gen_corpus() {
    local md="$USER_MAILDIR"
    if [ -z "$md" ]; then
        # A fresh one per call: only this call's messages are uploaded.
        md="$(mktemp -d "$T/gen-maildir.XXXXXX")"
        mkdir -p "$md/cur" "$md/new" "$md/tmp"
    fi
    python3 "$MAILRET_SOURCE_DIR/scripts/gen-corpus" --count "$1" --seed "$2" \
        --months "${3:-3}" --end "$(date -u +%F)" --out "$T/corpus" \
        --maildir-into "$md" --quiet
    [ -n "$USER_MAILDIR" ] || upload_maildir "$md" INBOX
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

# upload_maildir MAILDIR MAILBOX: APPEND every message of a Maildir, oldest first.
upload_maildir() {
    python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" "$1" "$2" <<'PY'
import imaplib, os, ssl, sys
host, port, ca, user, pwf, md, box = sys.argv[1:]
letters = {"S": "\\Seen", "R": "\\Answered", "F": "\\Flagged", "T": "\\Deleted", "D": "\\Draft"}
files = []
for sub in ("cur", "new"):
    for name in os.listdir(os.path.join(md, sub)):
        path = os.path.join(md, sub, name)
        files.append((os.stat(path).st_mtime, name, path))
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
for mtime, name, path in sorted(files):
    info = name.split(":2,", 1)[1] if ":2," in name else ""
    flags = " ".join(letters[c] for c in info if c in letters)
    data = open(path, "rb").read()
    typ, resp = m.append(box, "(%s)" % flags, imaplib.Time2Internaldate(mtime), data)
    assert typ == "OK", resp
m.logout()
PY
}

# imap_flags MAILBOX: "sha256 flags" per message, sorted, as the server reports them.
imap_flags() {
    python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" "${1:-INBOX}" <<'PY'
import hashlib, imaplib, re, ssl, sys
host, port, ca, user, pwf, box = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
m.select(box, readonly=True)
typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
rows = []
for item in data:
    if isinstance(item, tuple):
        flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode().split()
        rows.append("%s %s" % (hashlib.sha256(item[1]).hexdigest(),
                               ",".join(sorted(f for f in flags if f != "\\Recent"))))
m.logout()
print("\n".join(sorted(rows)))
PY
}
