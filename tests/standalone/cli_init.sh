#!/bin/bash
# `mailret init` makes the directories a configuration names, owned by the service user
# with private modes, says what it did one line per change, and changes nothing on a second
# run; it refuses symbolic links, system directories and unknown users with one line.
# Then `keys init-host` runs as the service user against a root-owned certificate
# directory that already holds IT's certificate (it must not try to write there), and
# refuses a different certificate there without creating any key.
# The ownership parts need root (CI runs as root); as another user they are skipped.
set -euo pipefail
bin=${MAILRET_BIN:?MAILRET_BIN not set}
fail() { echo "FAIL: $*" >&2; exit 1; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
chmod 0755 "$T"
mkdir -p "$T/etc"
printf 'secret\n' >"$T/etc/imap.password"
chmod 0600 "$T/etc/imap.password"

write_conf() {  # $1 = state dir
    cat >"$T/etc/mailret.conf" <<EOF
[imap]
host = imap.example.org
user = mailret
password_file = imap.password

[mailboxes]
mailbox = INBOX

[archive]
dir = $T/srv/mailret/archive

[keys]
vault_dir = $T/srv/mailret/vault
it_cert = $T/etc/it-restore.pem

[state]
dir = $1

[log]
file = $T/log/mailret/mailret.log
EOF
}
write_conf "$T/state"
export MAILRET_CONFIG=$T/etc/mailret.conf

if [ "$(id -u)" -ne 0 ]; then
    out=$("$bin" init 2>&1) || fail "init as $(id -un) for itself failed: $out"
    [ "$(stat -c %a "$T/state")" = 700 ] || fail "state dir mode"
    echo "cli_init: ok (not root: ownership checks skipped)"
    exit 0
fi

svc=nobody
svc_group=$(id -gn $svc)
as_svc() { setpriv --reuid=$svc --regid="$svc_group" --clear-groups -- "$@"; }

# First run: every directory created, one line each, owned by the service user.
out=$("$bin" init --user $svc) || fail "init exited $?: $out"
for d in state srv/mailret/archive srv/mailret/vault; do
    grep -qx "created $T/$d (.*, $svc:$svc_group 0700)" <<<"$out" || fail "no line for $d: $out"
    [ "$(stat -c '%U %a' "$T/$d")" = "$svc 700" ] || fail "$d: $(stat -c '%U %a' "$T/$d")"
done
grep -qx "created $T/log/mailret (log, $svc:$svc_group 0750)" <<<"$out" || fail "log dir: $out"
[ "$(stat -c '%U %a' "$T/srv")" = "root 755" ] || fail "parent not root 0755"
grep -qx "created $T/srv (0755)" <<<"$out" || fail "parent creation not reported: $out"

# Second run: nothing to do, nothing said but the summary.
out=$("$bin" init --user $svc) || fail "second init exited $?"
[ "$out" = "ok: 4 directories owned by $svc:$svc_group" ] || fail "second run changed: $out"

# A directory with the wrong mode and owner is repaired, and the repair reported.
chmod 0755 "$T/state"
chown root:root "$T/state"
out=$("$bin" init --user $svc) || fail "repair init exited $?"
grep -qx "mode of $T/state set to 0700 (was 0755)" <<<"$out" || fail "mode repair: $out"
grep -qx "owner of $T/state set to $svc:$svc_group (was 0:0)" <<<"$out" || fail "chown: $out"
[ "$(stat -c '%U %a' "$T/state")" = "$svc 700" ] || fail "state not repaired"

# Refusals: one line, exit 1, nothing handed over.
refuse() {  # $1 = expected text, rest = command
    local want=$1 err rc
    shift
    set +e
    err=$("$@" 2>&1 >/dev/null); rc=$?
    set -e
    [ $rc -eq 1 ] || fail "'$*' exited $rc, want 1 ($err)"
    [ "$(wc -l <<<"$err")" -eq 1 ] || fail "not one line: $err"
    grep -q -- "$want" <<<"$err" || fail "'$*': want '$want', got: $err"
}
mkdir -m 0755 "$T/elsewhere"
mv "$T/srv/mailret/vault" "$T/vault.real"
ln -s "$T/elsewhere" "$T/srv/mailret/vault"
refuse "is a symbolic link" "$bin" init --user $svc
[ "$(stat -c '%U %a' "$T/elsewhere")" = "root 755" ] || fail "symlink target was changed"
rm "$T/srv/mailret/vault"
mv "$T/vault.real" "$T/srv/mailret/vault"
refuse "no user 'no-such-user-x'" "$bin" init --user no-such-user-x
refuse "refusing to make root" "$bin" init --user root
write_conf /var/lib
refuse "is a system directory" "$bin" init --user $svc
write_conf "$T/state"
touch "$T/notadir"
write_conf "$T/notadir"
refuse "not a directory" "$bin" init --user $svc
write_conf "$T/state"

# IT's key pair (normally on IT's machine), and its certificate installed by root into a
# directory the service user cannot write.
printf 'it passphrase\n' >"$T/it.pass"
chmod 0600 "$T/it.pass"
"$bin" keys init-it --key "$T/it.key" --cert "$T/it.crt" --passphrase-file "$T/it.pass" \
    >/dev/null || fail "init-it"
"$bin" keys init-it --key "$T/other.key" --cert "$T/other.crt" \
    --passphrase-file "$T/it.pass" >/dev/null || fail "init-it (other)"
chmod 0644 "$T/it.crt" "$T/other.crt"
install -m 0644 "$T/it.crt" "$T/etc/it-restore.pem"
before=$(stat -c '%i %Y' "$T/etc/it-restore.pem")

# A different certificate where it_cert points: refused, and no key created.
refuse "different certificate" as_svc "$bin" keys init-host --it-cert "$T/other.crt"
[ ! -e "$T/state/pseudonym.key" ] || fail "a key was created after the refusal"

out=$(as_svc "$bin" keys init-host --it-cert "$T/it.crt" 2>&1) \
    || fail "init-host as the service user failed: $out"
[ "$(stat -c '%i %Y' "$T/etc/it-restore.pem")" = "$before" ] || fail "certificate rewritten"
[ "$(stat -c '%U %a' "$T/state/pseudonym.key")" = "$svc 600" ] || fail "pseudonym key"
[ -s "$T/srv/mailret/vault/pseudonym-key.p7m" ] || fail "no sealed copy in the vault"
echo "cli_init: ok"
