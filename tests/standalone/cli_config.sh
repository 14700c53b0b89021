#!/bin/bash
# `mailret config check` reports each problem as FILE:LINE: message at the line that set
# the key, exits 0 for a sound configuration and 1 otherwise; inline comments ('#' or ';'
# after a value) and quoted values are refused at their line instead of becoming part of
# the value.  `mailret config show` prints the effective values, defaults marked, in a form
# that loads back to the same values.
set -euo pipefail
bin=${MAILRET_BIN:?MAILRET_BIN not set}
fail() { echo "FAIL: $*" >&2; exit 1; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
conf=$T/mailret.conf
printf 'secret\n' >"$T/imap.password"
chmod 0600 "$T/imap.password"
mkdir -m 0700 "$T/state" "$T/vault"
mkdir -m 0750 "$T/archive"
printf 'x\n' >"$T/it.pem"
chmod 0644 "$T/it.pem"
for k in pseudonym manifest; do printf 'k\n' >"$T/state/$k.key"; chmod 0600 "$T/state/$k.key"; done

# Lines: 1 [imap] 2 host 3 user 4 password_file 5 (blank) 6 [mailboxes] 7 mailbox
#        8 [archive] 9 dir 10 [keys] 11 vault_dir 12 it_cert 13 [state] 14 dir 15.. extra
write() {  # $1 = user line, rest = extra lines appended
    local user=$1
    shift
    {
        printf '[imap]\nhost = imap.example.org\n%s\npassword_file = imap.password\n\n' "$user"
        printf '[mailboxes]\nmailbox = INBOX\n[archive]\ndir = archive\n'
        printf '[keys]\nvault_dir = vault\nit_cert = it.pem\n[state]\ndir = state\n'
        for l in "$@"; do printf '%s\n' "$l"; done
    } >"$conf"
}
check() {  # $1 = want exit, $2 = want text ('' = none) -> checks stderr
    local want_rc=$1 want=$2 rc
    set +e
    "$bin" -c "$conf" config check >"$T/out" 2>"$T/err"; rc=$?
    set -e
    [ $rc -eq "$want_rc" ] || fail "config check exited $rc, want $want_rc: $(cat "$T/err")"
    if [ -n "$want" ]; then
        grep -qxF -- "$want" "$T/err" || fail "want '$want', got: $(cat "$T/err")"
    fi
}

write 'user = mailret'
check 0 ''
[ ! -s "$T/err" ] || fail "clean config produced messages: $(cat "$T/err")"
grep -qx "$conf: OK" "$T/out" || fail "no OK line: $(cat "$T/out")"

# Inline comments and quotes: refused at their line, whatever libinih would do.
for bad in 'user = mailret # svc' 'user = mailret ; svc' 'user = mailret	#svc' \
           'user = "mailret"' "user = 'mailret'" 'user = mailret"'; do
    write "$bad"
    set +e; "$bin" -c "$conf" config check >/dev/null 2>"$T/err"; rc=$?; set -e
    [ $rc -eq 1 ] || fail "'$bad' accepted (exit $rc)"
    grep -qE "^$conf:3: (comment after a value|quoted value)" "$T/err" \
        || fail "'$bad': $(cat "$T/err")"
    # and every other command refuses it the same way
    set +e; "$bin" -c "$conf" config show >/dev/null 2>&1; rc=$?; set -e
    [ $rc -eq 1 ] || fail "config show accepted '$bad'"
done
# '#' and ';' inside a value without a blank before them are part of it.
write 'user = mail#ret;x'
check 0 ''
"$bin" -c "$conf" config show | grep -qx 'user = mail#ret;x' || fail "value with # changed"

# Files and modes, each at the line that names them.
write 'user = mailret'
chmod 0644 "$T/imap.password"
check 1 "$conf:4: password_file: $T/imap.password has mode 0644; a secret must not be readable by group or others (chmod 0600)"
chmod 0600 "$T/imap.password"
chmod 0755 "$T/vault"
check 1 "$conf:11: vault_dir: $T/vault has mode 0755; must not allow any access by group or others (chmod 0700)"
chmod 0700 "$T/vault"
chmod 0604 "$T/state/manifest.key"
check 1 "$conf:1: [keys] manifest_key_file: $T/state/manifest.key has mode 0604; a secret must not be readable by group or others (chmod 0600)"
chmod 0600 "$T/state/manifest.key"
write 'user = mailret' '[imap]' 'ca_file = /nonexistent/ca.pem'
check 1 "$conf:16: ca_file: /nonexistent/ca.pem: No such file or directory"
write 'user = mailret' '[members]' 'backend = exec' 'command = import-mail --x'
check 0 "$conf:17: warning: command: 'import-mail' is not an absolute path; /bin/sh looks it up in the service's PATH"
write 'user = mailret' '[members]' 'backend = exec' "command = $T/it.pem"
check 1 "$conf:17: command: $T/it.pem is not an executable file"
write 'user = mailret' '[retention]' 'timezone = Europe/Atlantis'
check 1 ''
grep -q "^$conf:16: timezone: " "$T/err" || fail "bad zone: $(cat "$T/err")"
# Two problems: both reported, exit 1.
write 'user = mailret'
chmod 0644 "$T/imap.password"
chmod 0750 "$T/state"
check 1 ''
[ "$(grep -c "^$conf:[0-9]*: " "$T/err")" -eq 2 ] || fail "want 2 findings: $(cat "$T/err")"
chmod 0600 "$T/imap.password"
chmod 0700 "$T/state"
# What init and init-host create is a warning, not an error.
rm "$T/state/pseudonym.key"
rmdir "$T/archive"
check 0 "$conf:1: warning: [keys] pseudonym_key_file: $T/state/pseudonym.key does not exist yet (\`mailret keys init-host\` creates it)"
grep -qxF "$conf:9: warning: dir: $T/archive does not exist yet (\`mailret init\` creates it)" "$T/err" \
    || fail "archive warning: $(cat "$T/err")"

# show: defaults included and marked, paths resolved, and it loads back to itself.
write 'user = mailret' '[archive]' 'volume_size = 16M'
"$bin" -c "$conf" config show >"$T/show1"
grep -qx "host = imap.example.org" "$T/show1" || fail "show: host"
grep -B1 -x "port = 993" "$T/show1" | grep -qx "# default" || fail "show: port default"
grep -qx "volume_size = 16M" "$T/show1" || fail "show: volume_size"
grep -B1 -x "volume_size = 16M" "$T/show1" | grep -qx "# default" && fail "set key marked default"
grep -qx "password_file = $T/imap.password" "$T/show1" || fail "show: path not resolved"
grep -qx "timezone = Europe/Copenhagen" "$T/show1" || fail "show: timezone"
grep -q "secret" "$T/show1" && fail "show printed the password"
cp "$T/show1" "$T/again.conf"
"$bin" -c "$T/again.conf" config show | tail -n +2 >"$T/show2"
tail -n +2 "$T/show1" | sed 's/^# default$//' | grep -v '^$' >"$T/a"
sed 's/^# default$//' "$T/show2" | grep -v '^$' >"$T/b"
diff "$T/a" "$T/b" >/dev/null || fail "show does not load back: $(diff "$T/a" "$T/b")"

set +e; "$bin" -c "$conf" config bogus >/dev/null 2>&1; rc=$?; set -e
[ $rc -eq 2 ] || fail "unknown subcommand exited $rc"
echo "cli_config: ok"
