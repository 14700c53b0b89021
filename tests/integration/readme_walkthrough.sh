#!/bin/bash
# readme_walkthrough.sh — README "Operating it" as written, against the real Dovecot: the
# first sh block of that section is read from README.md and run line by line on a fresh
# install (cmake --install into an empty root directory, plus the package's tmpfiles.d
# entries), as root where it says sudo and as the service user (nobody here) where it says
# `sudo -u mailret`.  The only translations: paths go under the root directory, the
# operator's edits (sudoedit) fill in the test server, and the timers are replaced by what
# they run (ingest, a real purge, then status and check --nagios, which must say OK).  A
# line the walk does not know fails the test, so README and test cannot drift apart.
[ "$(id -u)" = 0 ] || { echo "readme_walkthrough: needs root (init gives directories to the service user); skipped"; exit 0; }
TEST_PREFIX=readme-test
source "$(dirname "$0")/server_lib.sh"

SVC=nobody
SVCG=$(id -gn nobody)
command -v setpriv > /dev/null || fail "setpriv (util-linux) missing"
: "${MAILRET_BUILD_DIR:?}"
chmod 755 "$T"
R="$T/root"           # the fresh root
W="$T/op"             # the operator's working directory (it.crt, members.csv)
mkdir -p "$R" "$W"
new_user readme
gen_corpus 40 readme-walk-1
append_recent 2

block="$T/block.sh"
python3 - "$MAILRET_SOURCE_DIR/README.md" > "$block" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
sec = text[text.index("\n## Operating it\n"):]
start = sec.index("```sh\n") + 6
print(sec[start:sec.index("```", start)], end="")
PY
[ "$(grep -c . "$block")" -ge 10 ] || fail "no sh block in README 'Operating it'"

cfg="$R/etc/mailret/mailret.conf"
export MAILRET_CONFIG="$cfg"
MR="$R/usr/bin/mailret"
as_svc() { (cd "$W" && setpriv --reuid="$SVC" --regid="$SVCG" --clear-groups \
                env MAILRET_CONFIG="$cfg" "$MR" "$@"); }
as_root() { (cd "$W" && "$MR" "$@"); }
rel() { sed -e "s#/etc/mailret#$R/etc/mailret#g" -e "s#/usr/share/doc/mailret#$R/usr/share/doc/mailret#g"; }

# What "the package" does: the files, and the tmpfiles.d entries (owners mapped).
install_package() {
    DESTDIR="$R" cmake --install "$MAILRET_BUILD_DIR" --prefix /usr > "$T/install.log" 2>&1 ||
        fail "cmake --install: $(tail -3 "$T/install.log")"
    while read -r type path mode user group _; do
        [ "$type" = d ] || continue
        [ "$user" = mailret ] && user=$SVC
        [ "$group" = mailret ] && group=$SVCG
        install -d -m "$mode" -o "$user" -g "$group" "$R$path"
    done < <(grep -v '^#' "$MAILRET_SOURCE_DIR/debian/mailret.tmpfiles")
}
# The operator's edit of the example: the server, the account, where things go.
edit_config() {
    install -m 0644 "$CA_FILE" "$R/etc/mailret/ca.pem"
    python3 - "$cfg" "$HOST" "$IMAPS_PORT" "$R" "$USER_NAME" <<'PY'
import re, sys
path, host, port, root, user = sys.argv[1:]
s = open(path).read()
s = re.sub(r"(?m)^host = .*$", "host = %s\nport = %s\nca_file = %s/etc/mailret/ca.pem" % (host, port, root), s)
s = re.sub(r"(?m)^user = .*$", "user = " + user, s)
s = re.sub(r"(?m)^own_domains = .*$", "own_domains = akasse.example", s)
for p in ("/etc/mailret", "/srv/mailret"):
    s = s.replace(" = " + p, " = " + root + p)
s = s.replace("\n[state]\n", "\n[state]\ndir = %s/var/lib/mailret\n" % root)
open(path, "w").write(s)
PY
}

# IT's key pair, made "on its own machine".
printf 'it-walkthrough-passphrase\n' > "$T/it.pass"
chmod 600 "$T/it.pass"
cp "$T/corpus/members.csv" "$W/members.csv"
chmod 644 "$W/members.csv"

n=0
checks=0
cont=""
while IFS= read -r line || [ -n "$line" ]; do
    # continuation lines belong to the one before
    if [ -n "$cont" ]; then line="$cont $line"; cont=""; fi
    if [[ "$line" == *\\ ]]; then cont="${line%\\}"; continue; fi
    n=$((n + 1))
    cmd=$line
    # the comment after a command
    [[ "$cmd" == \#* ]] || cmd=$(sed -E 's/[[:space:]]+#.*$//' <<< "$cmd")
    case "$cmd" in
        "" | "#   or from source:"* | "#   and create the user:"*)
            ;;
        "sudo apt install ./mailret_"*)
            install_package ;;
        "sudo install -m 0640 -o root -g mailret /usr/share/doc/mailret/examples/mailret.conf /etc/mailret/mailret.conf")
            install -m 0640 -o root -g "$SVCG" "$R/usr/share/doc/mailret/examples/mailret.conf" "$cfg" ;;
        "sudoedit /etc/mailret/mailret.conf")
            edit_config ;;
        "sudo install -m 0600 -o mailret -g mailret /dev/null /etc/mailret/imap.password")
            install -m 0600 -o "$SVC" -g "$SVCG" /dev/null "$R/etc/mailret/imap.password" ;;
        "sudoedit /etc/mailret/imap.password")
            printf '%s\n' "$USER_PW" > "$R/etc/mailret/imap.password" ;;
        "# IT, on its own machine:  mailret keys init-it --key it.key --cert it.crt")
            (cd "$W" && "$MR" keys init-it --key it.key --cert it.crt --passphrase-file "$T/it.pass" \
                > "$T/init-it.out") || fail "keys init-it"
            chmod 644 "$W/it.crt" ;;
        "sudo install -m 0644 it.crt /etc/mailret/it-restore.pem")
            (cd "$W" && install -m 0644 it.crt "$R/etc/mailret/it-restore.pem") ;;
        "sudo mailret init")
            as_root init --user "$SVC" > "$T/init.out" 2>&1 || fail "mailret init: $(cat "$T/init.out")" ;;
        "sudo -u mailret mailret config check")
            checks=$((checks + 1))
            set +e; as_svc config check > "$T/cc$checks.out" 2> "$T/cc$checks.err"; rc=$?; set -e
            # every problem as FILE:LINE: message
            if grep -v "^$cfg:[0-9]*: " "$T/cc$checks.err" | grep -q .; then
                fail "config check: a line not FILE:LINE: $(cat "$T/cc$checks.err")"
            fi
            if [ "$checks" -ge 2 ]; then
                [ "$rc" = 0 ] && [ ! -s "$T/cc$checks.err" ] ||
                    fail "config check after keys init-host is not clean (exit $rc): $(cat "$T/cc$checks.err")"
            else
                [ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "config check: exit $rc"
            fi ;;
        "sudo -u mailret mailret check --nagios")
            set +e; as_svc check --nagios > "$T/nagios1.out" 2> /dev/null; rc=$?; set -e
            [ "$(wc -l < "$T/nagios1.out")" = 1 ] && grep -q '^MAILRET [A-Z]* - .* | batches=' "$T/nagios1.out" ||
                fail "check --nagios: $(cat "$T/nagios1.out")"
            [ "$rc" -le 2 ] || fail "check --nagios: UNKNOWN: $(cat "$T/nagios1.out")" ;;
        "sudo -u mailret mailret "*)
            args=${cmd#sudo -u mailret mailret }
            # shellcheck disable=SC2086
            as_svc $args > "$T/step$n.out" 2> "$T/step$n.err" ||
                fail "README line '$cmd': $(tail -3 "$T/step$n.err")" ;;
        "sudo systemctl enable --now mailret-ingest@mailret.timer mailret-purge@mailret.timer"*)
            # What the timers run, once each.
            as_svc ingest > /dev/null 2> "$T/ingest2.err" || fail "ingest: $(tail -3 "$T/ingest2.err")"
            as_svc purge > "$T/purge.out" 2> "$T/purge.err" || fail "purge: $(tail -3 "$T/purge.err")" ;;
        *)
            fail "README 'Operating it' line the walk does not know: $cmd" ;;
    esac
done < "$block"
[ "$checks" = 2 ] || fail "README runs config check $checks times, the walk expects 2"

# The service user's files are its own; nothing got into the state as root.
# (/srv/mailret itself is root's: init made it as the parent of archive and vault)
find "$R/var/lib/mailret" "$R/srv/mailret" -mindepth 1 ! -user "$SVC" | grep -q . &&
    fail "files not owned by the service user: $(find "$R/var/lib/mailret" "$R/srv/mailret" -mindepth 1 ! -user "$SVC" | head -3)"
# After the purge: status and the monitoring line are all good.
as_svc status --json > "$T/status.json" 2> "$T/status.err" || fail "status after the purge: $(cat "$T/status.json")"
python3 - "$T/status.json" <<'PY' || fail "status after the purge"
import json, sys
j = json.load(open(sys.argv[1]))
m = j["mailboxes"][0]
assert j["login"]["status"] == "ok" and m["last_ingest"]["status"] == "ok", j
assert m["last_purge"]["status"] == "ok" and m["last_purge"]["expunged"] > 0, m
assert j["archive"]["used_bytes"] > 0 and j["problems"] == [], j
PY
set +e; as_svc check --nagios > "$T/nagios2.out" 2> "$T/nagios2.err"; rc=$?; set -e
[ "$rc" = 0 ] && grep -q '^MAILRET OK - ' "$T/nagios2.out" || fail "check --nagios after the purge: exit $rc: $(cat "$T/nagios2.out")"
echo "PASS readme_walkthrough ($n README lines)"
