# offline_lib.sh — sourced by standalone tests (not a test itself).  Gives a temporary
# directory $T (the working directory, removed on exit), fail, and M (mailret on
# $T/mailret.conf); offline_host makes IT's key pair as IT would (it.key, it.crt, the
# passphrase in it.pass) and a host that never reaches an IMAP server: archive, vault and
# state under $T, IT's certificate handed over into host/, host keys made.
[ -n "${BASH_SOURCE[1]:-}" ] || { echo "offline_lib.sh: helper, nothing to test"; exit 0; }
set -euo pipefail
: "${MAILRET_BIN:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/$(basename "$0" .sh).XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
umask 077
fail() { echo "FAIL: $*" >&2; exit 1; }
M() { "$MAILRET_BIN" -c "$T/mailret.conf" "$@"; }

# offline_config [LINE...]: (re)writes mailret.conf; each LINE is appended, and the lines
# of the array OFFLINE_IMAP (if set) go into [imap] in place of the unreachable host.
offline_config() {
  local l
  {
    echo "[imap]"
    if [ -n "${OFFLINE_IMAP+x}" ]; then
      for l in "${OFFLINE_IMAP[@]}"; do echo "$l"; done
    else
      echo "host = imap.invalid"
    fi
    cat <<CONF
user = mailret
password_file = $T/imap.password
[mailboxes]
mailbox = INBOX
[archive]
dir = $T/archive
[keys]
vault_dir = $T/vault
it_cert = $T/host/it.crt
[state]
dir = $T/state
[audit]
log = $T/state/audit.log
CONF
    for l in "$@"; do echo "$l"; done
  } > mailret.conf
}

# offline_host [LINE...]: IT's key pair, offline_config LINE..., and the host keys
# (init-host's output in $T/init.out).
offline_host() {
  printf 'it passphrase 123\n' > it.pass
  "$MAILRET_BIN" keys init-it --key it.key --cert it.crt --passphrase-file it.pass >/dev/null
  mkdir -p state host
  printf 'x\n' > imap.password
  offline_config "$@"
  M keys init-host --it-cert it.crt > init.out
}

# manifest_drop_locator MANIFEST SIGNING_KEY: make MANIFEST one from before locators: its
# "locator" member removed and the manifest re-signed with the host's Ed25519 key by stock
# openssl, as the host would have signed it.
manifest_drop_locator() {
    python3 - "$1" "$2" <<'PY'
import re, subprocess, sys
p, key = sys.argv[1:]
s = open(p).read()
body = s[:s.rindex(',"ed25519_signature":"')]
body = re.sub(r',"locator":\{[^}]*\}', '', body)
open('tbs', 'wb').write((body + '}').encode())
sig = subprocess.run(['openssl', 'pkeyutl', '-sign', '-rawin', '-inkey', key, '-in', 'tbs'],
                     capture_output=True, check=True).stdout
open(p, 'w').write(body + ',"ed25519_signature":"%s"}\n' % sig.hex())
PY
}
