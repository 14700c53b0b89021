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

# gen_corpus COUNT SEED [MONTHS]: generated mail straight into the user's INBOX, internal
# dates spread over MONTHS (default 3) months up to 2026-11-20; truth in $T/corpus.
gen_corpus() {
    python3 "$MAILRET_SOURCE_DIR/scripts/gen-corpus" --count "$1" --seed "$2" \
        --months "${3:-3}" --out "$T/corpus" --maildir-into "$USER_MAILDIR" --quiet
}
