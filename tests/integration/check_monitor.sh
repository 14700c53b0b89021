#!/bin/bash
# check_monitor.sh — mailret as a monitored service, against the real Dovecot:
#  - check --nagios is one plugin line with perfdata: CRITICAL (2) while old mail is not
#    purged, OK (0) after the purge, with counts that match the archive and the server;
#  - the check that cannot run is UNKNOWN (3) under --nagios: IMAP unreachable (a closed
#    port), configuration broken, a usage mistake; plain check stays 2 (not shown
#    compliant);
#  - --json failures are one JSON object with a stable error code and the scrubbed
#    message, for check, purge and ingest;
#  - with stderr on the journal's stream (JOURNAL_STREAM), the failure line is "<3>...".
source "$(dirname "$0")/purge_lib.sh"

setup monitor 40 check-monitor-1
# check's cutoff: the month start of yesterday (one day of grace after the 1st).
back=0
[ "$(TZ=Europe/Copenhagen date +%d)" = 01 ] && back=1
old=$(server_older "$(month_start_epoch "$back")")
[ "$old" -gt 0 ] || fail "corpus has nothing before the check's cutoff"

# perf LINE LABEL: the value of one perfdata label.
perf() { sed -n 's/.*| //p' <<< "$1" | tr ' ' '\n' | sed -n "s/^$2=\([0-9]*\);.*/\1/p"; }
# nagios NAME [args]: run check --nagios; one line on stdout, exit status in $rc.
nagios() {
    set +e; mailret check --nagios "${@:2}" > "$T/$1.out" 2> "$T/$1.err"; rc=$?; set -e
    [ "$(wc -l < "$T/$1.out")" = 1 ] || { cat "$T/$1.out"; fail "$1: not one line"; }
    line=$(cat "$T/$1.out")
}

# ---- before the purge: old mail left -> CRITICAL ----------------------------------------
nagios before
[ "$rc" = 2 ] || fail "before purge: exit $rc ($line)"
[[ "$line" == "MAILRET CRITICAL - "*"mailbox INBOX NOT PURGED"*" | batches=0;;;0 "* ]] ||
    fail "before purge: $line"
[ "$(perf "$line" not_purged)" = "$old" ] || fail "not_purged $(perf "$line" not_purged), want $old: $line"
[ "$(perf "$line" violations)" = 1 ] || fail "violations: $line"
[ "$(perf "$line" mailboxes_unchecked)" = 0 ] || fail "unchecked: $line"

# ---- progress: forced on, off when stderr is no terminal, default on a terminal -------------
mailret purge --dry-run --progress > /dev/null 2> "$T/dry.err" || fail "dry run --progress"
grep -aqE $'\rdry run INBOX: ([0-9]+)/\\1 messages, [0-9.]+ [kMG]?B, [0-9.]+ [kMG]?B/s, ETA -\e\\[K$' "$T/dry.err" ||
    { cat -v "$T/dry.err"; fail "dry run --progress: no final progress line"; }
n=$(grep -aoE 'dry run INBOX: [0-9]+/' "$T/dry.err" | tail -1 | grep -oE '[0-9]+')
[ "$n" -ge "$old" ] || fail "progress counted $n messages, fewer than the $old old ones"
mailret purge --dry-run --progress --no-progress > /dev/null 2> "$T/dry2.err" || fail "dry run --no-progress"
grep -aq $'\r' "$T/dry2.err" && fail "--no-progress drew progress"
# A pseudo-terminal: on by default; under systemd (INVOCATION_ID) off.
script -qefc "$MAILRET_BIN -c $T/mailret.conf purge --dry-run" /dev/null > "$T/tty.out" 2>&1 ||
    fail "dry run on a terminal: $(tail -3 "$T/tty.out")"
grep -aq "dry run INBOX: $n/$n messages" "$T/tty.out" || { cat -v "$T/tty.out"; fail "no progress on a terminal"; }
INVOCATION_ID=0123 script -qefc "$MAILRET_BIN -c $T/mailret.conf purge --dry-run" /dev/null > "$T/tty2.out" 2>&1 ||
    fail "dry run on a terminal under systemd"
grep -aq "messages, " "$T/tty2.out" && { cat -v "$T/tty2.out"; fail "progress under systemd"; }

# ---- after the purge: OK with the batch counted -------------------------------------------
mailret purge > "$T/purge.out" 2> "$T/purge.log" || fail "purge: $(tail -3 "$T/purge.log")"
grep -aq $'\r' "$T/purge.log" && fail "progress on stderr that is not a terminal"
batches=$(find "$T/archive" -name manifest.json | wc -l)
[ "$batches" -ge 1 ] || fail "purge made no batch"
nagios after
[ "$rc" = 0 ] || fail "after purge: exit $rc ($line)"
[[ "$line" == "MAILRET OK - $batches batches ok, 0 held, 0 expired; 1 mailboxes purged; audit log ok | "* ]] ||
    fail "after purge: $line"
[ "$(perf "$line" batches)" = "$batches" ] || fail "batches: $line"
[ "$(perf "$line" ok)" = "$batches" ] || fail "ok: $line"
[ "$(perf "$line" not_purged)" = 0 ] || fail "not_purged after purge: $line"
[ "$(perf "$line" audit_broken)" = 0 ] || fail "audit_broken: $line"

# expire --json: what a dry run far in the future would destroy, as JSON.
mailret expire --dry-run --json --at 2040-01-01 > "$T/expire.json" 2> "$T/expire.err" ||
    fail "expire --dry-run --json: $(tail -3 "$T/expire.err")"
[ "$(json_field "$T/expire.json" 'j["dry_run"]')" = True ] || fail "expire --json: dry_run"
[ "$(json_field "$T/expire.json" 'len([b for b in j["batches"] if b["action"] == "would-expire"])')" = "$batches" ] ||
    { cat "$T/expire.json"; fail "expire --json: batches"; }
[ "$(find "$T/archive" -name manifest.json | wc -l)" = "$batches" ] || fail "dry run expired something"
mailret expire --json > "$T/expire0.json" 2> "$T/expire0.err" || fail "expire --json now"
[ "$(json_field "$T/expire0.json" 'len(j["batches"]), j["expired"], j["failed"]')" = "0 0 0" ] ||
    { cat "$T/expire0.json" "$T/expire0.err"; fail "expire --json with nothing due"; }
# the run lock held by another run: a stable "state" code
exec {lockfd}>> "$T/state/mailret.lock"
flock -n "$lockfd" || fail "test cannot take the run lock"
set +e; mailret expire --json --lock-wait 0 > "$T/expire-lock.json" 2> /dev/null; rc=$?; set -e
[ "$rc" = 1 ] || fail "expire with the lock held: exit $rc"
[ "$(json_field "$T/expire-lock.json" 'j["error"]')" = state ] || { cat "$T/expire-lock.json"; fail "lock held: code"; }
json_field "$T/expire-lock.json" 'j["message"]' | grep -q "another mailret run" || fail "lock held: message"
exec {lockfd}>&-

# restore --json, and a selection that matches nothing fails with a reason.
restore() {
    mailret restore --reason "monitor test" --it-key "$T/it.key" --it-passphrase-file "$T/it.pass" "$@"
}
restore --maildir "$T/r1" --json > "$T/r1.json" 2> "$T/r1.err" || fail "restore --json: $(tail -3 "$T/r1.err")"
archived=$(find "$T/r1" -type f -path '*/cur/*' -o -type f -path '*/new/*' | wc -l)
[ "$archived" -gt 0 ] || fail "restore wrote nothing"
[ "$(json_field "$T/r1.json" 'j["restored"], j["batches"]')" = "$archived $batches" ] ||
    { cat "$T/r1.json"; fail "restore --json counts ($archived messages, $batches batches)"; }
set +e; restore --maildir "$T/r2" --message-id '<no-such-message@example.net>' > "$T/r2.out" 2> "$T/r2.err"; rc=$?; set -e
[ "$rc" = 1 ] || fail "restore matching nothing: exit $rc"
grep -q "mailret restore: nothing matched the selection ($batches batch(es) searched)" "$T/r2.err" ||
    fail "restore matching nothing: $(cat "$T/r2.err")"
[ -z "$(find "$T/r2" -type f 2>/dev/null | head -1)" ] || fail "restore matching nothing wrote mail"
set +e; restore --maildir "$T/r3" --from 2001-01-01 --to 2001-02-01 --json > "$T/r3.json" 2> /dev/null; rc=$?; set -e
[ "$rc" = 1 ] || fail "restore --json matching nothing: exit $rc"
[ "$(json_field "$T/r3.json" 'j["error"], j["command"]')" = "notfound restore" ] || { cat "$T/r3.json"; fail "restore --json: error"; }

# ---- IMAP unreachable: UNKNOWN, the mailbox names scrubbed --------------------------------
cp "$T/mailret.conf" "$T/good.conf"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
sed -i -e "s/^port = .*/port = $port/" -e '/^\[mailboxes\]/a mailbox = Shared/jens.hansen@example.dk' "$T/mailret.conf"
nagios down
[ "$rc" = 3 ] || fail "IMAP down: exit $rc ($line)"
[[ "$line" == "MAILRET UNKNOWN - "*"2 mailbox(es) not checked"*" | "* ]] || fail "IMAP down: $line"
[ "$(perf "$line" mailboxes_unchecked)" = 2 ] || fail "unchecked: $line"
[ "$(perf "$line" batches)" = "$batches" ] || fail "batches while IMAP down: $line"
grep -q "jens.hansen" "$T/down.out" && fail "mailbox name with an address not scrubbed: $line"
set +e; mailret check > /dev/null 2>&1; rc=$?; set -e
[ "$rc" = 2 ] || fail "plain check with IMAP down: exit $rc, want 2"
# A real violation outranks "could not check": tamper the audit log -> CRITICAL.
cp "$T/state/audit.log" "$T/audit.bak"
sed -i -e '1s/"event":"[a-z.]*"/"event":"forged"/' "$T/state/audit.log"
nagios tampered
[ "$rc" = 2 ] || fail "audit broken and IMAP down: exit $rc ($line)"
[ "$(perf "$line" audit_broken)" = 1 ] || fail "audit_broken: $line"
cp "$T/audit.bak" "$T/state/audit.log"
cp "$T/good.conf" "$T/mailret.conf"

# ---- configuration broken / usage: UNKNOWN and a JSON reason ------------------------------
echo "no_such_key = 1" >> "$T/mailret.conf"
nagios badconf
[ "$rc" = 3 ] || fail "broken config: exit $rc ($line)"
[[ "$line" == "MAILRET UNKNOWN - check could not run (config): "*"mailret.conf:"* ]] || fail "broken config: $line"
nagios usage --frobnicate
[ "$rc" = 3 ] || fail "bad option: exit $rc ($line)"
[[ "$line" == "MAILRET UNKNOWN - usage: "* ]] || fail "bad option: $line"
for cmd in check purge ingest expire; do
    set +e; mailret $cmd --json > "$T/$cmd.json" 2> "$T/$cmd.err"; rc=$?; set -e
    [ "$rc" != 0 ] || fail "$cmd --json with a broken config: exit 0"
    [ "$(json_field "$T/$cmd.json" 'j["error"]')" = config ] || { cat "$T/$cmd.json"; fail "$cmd --json: error code"; }
    [ "$(json_field "$T/$cmd.json" 'j["command"]')" = "$cmd" ] || fail "$cmd --json: command"
    json_field "$T/$cmd.json" 'j["message"]' | grep -q "no_such_key" || { cat "$T/$cmd.json"; fail "$cmd --json: message"; }
done
cp "$T/good.conf" "$T/mailret.conf"
# The message is scrubbed like stderr: an address given on the command line does not leak.
set +e; mailret purge --json --mailbox jens.hansen@example.dk > "$T/pm.json" 2> "$T/pm.err"; rc=$?; set -e
[ "$rc" = 1 ] || fail "purge of an unknown mailbox: exit $rc"
[ "$(json_field "$T/pm.json" 'j["error"]')" = config ] || { cat "$T/pm.json"; fail "unknown mailbox: error code"; }
json_field "$T/pm.json" 'j["message"]' | grep -q "\[redacted\]" || { cat "$T/pm.json"; fail "message not scrubbed"; }
grep -q "jens.hansen" "$T/pm.json" "$T/pm.err" && fail "address leaked on stdout or stderr"

# ---- stderr on the journal: the failure line carries priority err -------------------------
echo "no_such_key = 1" >> "$T/mailret.conf"
: > "$T/journal.err"
set +e
( exec 2>> "$T/journal.err"; JOURNAL_STREAM=$(stat -c '%d:%i' "$T/journal.err") \
      "$MAILRET_BIN" -c "$T/mailret.conf" check > /dev/null )
( exec 2>> "$T/journal.err"; JOURNAL_STREAM=1:2 \
      "$MAILRET_BIN" -c "$T/mailret.conf" check > /dev/null )
set -e
[ "$(wc -l < "$T/journal.err")" = 2 ] || { cat "$T/journal.err"; fail "journal: want two lines"; }
[[ "$(sed -n 1p "$T/journal.err")" == "<3>mailret check: "*no_such_key* ]] || fail "journal: $(sed -n 1p "$T/journal.err")"
[[ "$(sed -n 2p "$T/journal.err")" == "mailret check: "*no_such_key* ]] || fail "not the journal: $(sed -n 2p "$T/journal.err")"
# backup --progress: every message of the mailbox (--all), counted on the progress line.
cp "$T/good.conf" "$T/mailret.conf"
left=$(server_shas | wc -l)
mailret backup --all --progress > "$T/backup.out" 2> "$T/backup.err" || fail "backup --progress: $(tail -3 "$T/backup.err")"
grep -aq $'\r'"backup INBOX: $left/$left messages" "$T/backup.err" || { cat -v "$T/backup.err"; fail "backup progress"; }
echo "PASS check_monitor ($old old messages, $batches batch(es))"
