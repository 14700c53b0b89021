#!/bin/bash
# restore_idempotent.sh — restore you can preview and repeat, against the real Dovecot:
#  - restore --list names every batch with the messages and bytes a restore would bring
#    back (equal to the manifests' counts and sizes), writes no mail, and is audited;
#    with --message-id it counts the one message;
#  - restoring twice into the same Maildir, mbox or IMAP mailbox adds nothing the second
#    time (counted as already there); a message removed from the Maildir comes back alone;
#  - a restore whose selection matches nothing exits 1;
#  - --progress draws a progress line per batch on stderr; without it nothing is drawn.
# Against Cyrus only the IMAP part runs (the server's own answers to APPEND and SEARCH);
# the rest reads the archive and writes local files, whatever server the mail came from.
# servers: dovecot cyrus
source "$(dirname "$0")/purge_lib.sh"

setup restoreidem 40 restore-idempotent-1
mailret purge --json > "$T/purge.json" 2> "$T/purge.log" || fail "purge: $(tail -3 "$T/purge.log")"
restore() { mailret restore --it-key "$T/it.key" --it-passphrase-file "$T/it.pass" \
                --reason "ticket 4711" "$@"; }

if [ "$SERVER_KIND" = dovecot ]; then
# ---- --list --------------------------------------------------------------------------------
audit_before=$(wc -l < "$T/state/audit.log")
restore --list --json > "$T/list.json" 2> "$T/list.err" || fail "restore --list: $(cat "$T/list.err")"
python3 - "$T/list.json" "$T/archive" <<'PY' || fail "--list differs from the manifests"
import glob, json, os, sys
j = json.load(open(sys.argv[1]))
want = {}
for path in glob.glob(os.path.join(sys.argv[2], "*", "*", "manifest.json")):
    m = json.load(open(path))
    m = m.get("manifest", m)
    want[m["batch_id"]] = (m["message_count"], m["bytes_original"])
got = {b["batch"]: (b["messages"], b["bytes"]) for b in j["batches"]}
assert got == want, (got, want)
assert j["messages"] == sum(v[0] for v in want.values()) > 0
assert j["bytes"] == sum(v[1] for v in want.values())
PY
[ ! -e "$T/md" ] || fail "--list wrote something"
grep -q '"event":"restore.done".*"output":"list"' "$T/state/audit.log" || fail "--list not audited"
[ "$(wc -l < "$T/state/audit.log")" -gt "$audit_before" ] || fail "no audit record"
restore --list > "$T/list.txt" || fail "restore --list (text)"
grep -q "would be restored; 0 left out by the erasure ledger; nothing written" "$T/list.txt" ||
    fail "--list text: $(cat "$T/list.txt")"
total=$(json_field "$T/list.json" 'j["messages"]')
# One message by its Message-ID: the listing has to read it to know.
mid=$(python3 - "$T/corpus/truth.jsonl" "$T/original.sha" <<'PY'
import json, sys
print(json.loads(open(sys.argv[1]).readline())["message_id"])
PY
)
restore --list --json --message-id "$mid" > "$T/list1.json" || fail "--list --message-id"
[ "$(json_field "$T/list1.json" 'j["messages"]')" = 1 ] || fail "--list --message-id: $(cat "$T/list1.json")"
set +e; restore --list --message-id "<no-such-message@example.invalid>" > /dev/null 2> "$T/none.err"; rc=$?; set -e
[ "$rc" = 1 ] && grep -q "nothing matched" "$T/none.err" || fail "--list of nothing: exit $rc"

# ---- Maildir twice -----------------------------------------------------------------------
restore --maildir "$T/md" --json > "$T/md1.json" || fail "restore into a Maildir"
[ "$(json_field "$T/md1.json" '(j["restored"], j["duplicates"])')" = "($total, 0)" ] ||
    fail "first Maildir restore: $(cat "$T/md1.json")"
find "$T/md/cur" -type f | sort > "$T/md1.files"
restore --maildir "$T/md" --json > "$T/md2.json" || fail "second restore into the Maildir"
[ "$(json_field "$T/md2.json" '(j["restored"], j["duplicates"])')" = "(0, $total)" ] ||
    fail "second Maildir restore: $(cat "$T/md2.json")"
find "$T/md/cur" -type f | sort | cmp -s - "$T/md1.files" || fail "the second restore changed the Maildir"
rm "$(head -1 "$T/md1.files")"
restore --maildir "$T/md" --json > "$T/md3.json" || fail "third restore into the Maildir"
[ "$(json_field "$T/md3.json" '(j["restored"], j["duplicates"])')" = "(1, $((total - 1)))" ] ||
    fail "restore after one file was removed: $(cat "$T/md3.json")"
python3 - "$T/md" "$T/original.sha" <<'PY' || fail "the Maildir holds something else than the archived messages, once each"
import collections, glob, hashlib, sys
got = collections.Counter(hashlib.sha256(open(p, "rb").read()).hexdigest()
                          for p in glob.glob(sys.argv[1] + "/cur/*"))
orig = set(open(sys.argv[2]).read().split())
assert all(c == 1 for c in got.values()), "a message twice"
assert set(got) <= orig, "a message that was not in the mailbox"
PY
grep -q '"event":"restore.done".*"already_present":"'$((total - 1))'"' "$T/state/audit.log" ||
    fail "the audit record does not count what was there already"

# ---- mbox twice --------------------------------------------------------------------------
restore --mbox "$T/out.mbox" --json > "$T/mb1.json" || fail "restore into an mbox"
[ "$(json_field "$T/mb1.json" 'j["restored"]')" = "$total" ] || fail "mbox: $(cat "$T/mb1.json")"
size1=$(stat -c %s "$T/out.mbox")
restore --mbox "$T/out.mbox" --json > "$T/mb2.json" || fail "second restore into the mbox"
[ "$(json_field "$T/mb2.json" '(j["restored"], j["duplicates"])')" = "(0, $total)" ] ||
    fail "second mbox restore: $(cat "$T/mb2.json")"
[ "$(stat -c %s "$T/out.mbox")" = "$size1" ] || fail "the second restore grew the mbox"
python3 - "$T/out.mbox" "$total" <<'PY' || fail "mbox does not hold each message once"
import mailbox, sys
msgs = list(mailbox.mbox(sys.argv[1]))
assert len(msgs) == int(sys.argv[2]), len(msgs)
assert len({m.as_bytes() for m in msgs}) == len(msgs)
PY
else
    restore --list --json > "$T/list.json" 2> "$T/list.err" || fail "restore --list: $(cat "$T/list.err")"
    total=$(json_field "$T/list.json" 'j["messages"]')
    [ "$total" -gt 0 ] || fail "nothing archived"
fi

# ---- IMAP twice --------------------------------------------------------------------------
restore --imap-mailbox Restored --json > "$T/im1.json" 2> "$T/im1.err" || fail "IMAP restore: $(cat "$T/im1.err")"
[ "$(json_field "$T/im1.json" 'j["restored"]')" = "$total" ] || fail "IMAP: $(cat "$T/im1.json")"
restore --imap-mailbox Restored --json > "$T/im2.json" 2> "$T/im2.err" || fail "second IMAP restore: $(cat "$T/im2.err")"
[ "$(json_field "$T/im2.json" '(j["restored"], j["duplicates"])')" = "(0, $total)" ] ||
    fail "second IMAP restore: $(cat "$T/im2.json")"
python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" "$total" <<'PY' || fail "Restored does not hold each message once"
import imaplib, ssl, sys
host, port, ca, user, pwf, total = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
typ, data = m.select("Restored", readonly=True)
assert int(data[0]) == int(total), (data, total)
m.logout()
PY

# ---- progress ----------------------------------------------------------------------------
if [ "$SERVER_KIND" = dovecot ]; then
restore --maildir "$T/md-p" --progress > /dev/null 2> "$T/p.err" || fail "restore --progress"
grep -aqE $'\rrestore [^:]+: ([0-9]+)/\\1 messages, ' "$T/p.err" || { cat -v "$T/p.err"; fail "no progress line"; }
restore --maildir "$T/md-q" > /dev/null 2> "$T/q.err" || fail "restore without --progress"
grep -aq $'\r' "$T/q.err" && fail "progress drawn although stderr is no terminal"
fi

echo "PASS restore_idempotent ($SERVER_KIND)"
