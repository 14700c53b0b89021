#!/bin/bash
# archive_imap.sh — backup from a real Dovecot over IMAPS (EXAMINE: nothing deleted), then
# IT's restore back into the server with APPEND, and into a Maildir folder that the same
# Dovecot then serves: every message byte-identical (SHA-256 of BODY.PEEK[]), same flags
# (keywords included), same INTERNALDATE; the source mailbox is untouched.
# servers: dovecot cyrus
. "$(dirname "$0")/ingest_lib.sh"

new_user arch
gen_corpus 25 4242
write_config
# Key files and the audit log take their defaults under [state] dir.
mkdir -p "$T/state"

umask 077
printf 'imap test passphrase\n' > "$T/it.pass"
"$MAILRET_BIN" keys init-it --key "$T/it.key" --cert "$T/it.crt" \
    --passphrase-file "$T/it.pass" >/dev/null
mailret keys init-host --it-cert "$T/it.crt" >/dev/null

snapshot() {  # snapshot MAILBOX OUT: "sha256 flags internaldate" per message, sorted
    python3 - "$1" "$2" <<PY
import hashlib, imaplib, re, ssl, sys
ctx = ssl.create_default_context(cafile="$CA_FILE")
c = imaplib.IMAP4_SSL("$HOST", int("$IMAPS_PORT"), ssl_context=ctx)
c.login("$USER_NAME", open("$T/password").read())
c.select('"%s"' % sys.argv[1], readonly=True)
typ, data = c.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
rows = []
for item in data:
    if not isinstance(item, tuple):
        continue
    meta, body = item[0].decode(), item[1]
    flags = sorted(f for f in re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split()
                   if f != "\\\\Recent")
    date = re.search(r'INTERNALDATE "([^"]*)"', meta).group(1)
    rows.append("%s %s %s" % (hashlib.sha256(body).hexdigest(), ",".join(flags),
                              imaplib.Internaldate2tuple(('INTERNALDATE "%s"' % date).encode())))
open(sys.argv[2], "w").write("\n".join(sorted(rows)) + "\n")
c.logout()
PY
}

# Keywords on some messages, as mail clients set them.
python3 - <<PY
import imaplib, ssl
ctx = ssl.create_default_context(cafile="$CA_FILE")
c = imaplib.IMAP4_SSL("$HOST", int("$IMAPS_PORT"), ssl_context=ctx)
c.login("$USER_NAME", open("$T/password").read())
c.select("INBOX")
for uid, kw in (("1:4", "(\$Forwarded NonJunk)"), ("5", "(\$Label1)"), ("6", "(NonJunk)"),
                ("7:8", "(\\\\Deleted)")):
    typ, _ = c.uid("STORE", uid, "+FLAGS.SILENT", kw)
    assert typ == "OK", typ
c.logout()
PY

snapshot INBOX "$T/before"
grep -q 'NonJunk' "$T/before" || fail "keywords were not set"
[ "$(wc -l < "$T/before")" = 25 ] || fail "corpus not in INBOX"
mailret backup --all > "$T/backup.out"
grep -q $'\t25 messages\t' "$T/backup.out" || fail "backup: $(cat "$T/backup.out")"
mailret verify all | grep -q $'\tok\t' || fail "verify"
snapshot INBOX "$T/after"
cmp -s "$T/before" "$T/after" || fail "backup changed the source mailbox"

mailret restore --it-key "$T/it.key" --it-passphrase-file "$T/it.pass" \
    --reason "imap round trip test" --imap-mailbox Restored > "$T/restore.out"
grep -q 'restored 25 messages' "$T/restore.out" || fail "restore: $(cat "$T/restore.out")"
snapshot Restored "$T/restored"
# \Deleted stays behind (the next EXPUNGE would take the message again), all else comes back.
sed -e 's/,\\Deleted,/,/' -e 's/,\\Deleted / /' -e 's/ \\Deleted,/ /' -e 's/ \\Deleted /  /' "$T/before" | sort > "$T/before-undeleted"
grep -q 'Deleted' "$T/before" || fail "no \\Deleted message to restore"
diff "$T/before-undeleted" "$T/restored" >&2 || fail "restored mailbox differs (bytes, flags or dates)"
mailret restore --it-key "$T/it.key" --it-passphrase-file "$T/it.pass" --keep-deleted \
    --reason "imap round trip test" --imap-mailbox RestoredDel > "$T/restore-del.out"
snapshot RestoredDel "$T/restored-del"
diff "$T/before" "$T/restored-del" >&2 || fail "--keep-deleted: restored mailbox differs"

# The same into a Maildir folder (Maildir++: ".RestoredMd" is mailbox RestoredMd), handed
# to the mail user and read back through Dovecot: keywords come back through
# dovecot-keywords, INTERNALDATE through the file times.  (Cyrus has no Maildir.)
if [ "$SERVER_KIND" = cyrus ]; then
    # A server that refuses some messages (here: Cyrus over the user's quota, set by the
    # administrator to room for about half the batch): each refusal is one line in the
    # log, the restore goes on, the summary counts both, and the exit status says so.
    python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$ADMIN_USER" "$ADMIN_PASSWORD" "$USER_NAME" \
        "$T/password" <<'PY'
import imaplib, re, ssl, sys
host, port, ca, admin, apw, user, pwf = sys.argv[1:]
ctx = ssl.create_default_context(cafile=ca)
u = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx)
u.login(user, open(pwf).read().strip())
u.select("INBOX", readonly=True)
typ, data = u.uid("FETCH", "1:*", "(RFC822.SIZE)")
sizes = [int(re.search(rb"RFC822.SIZE (\d+)", d).group(1)) for d in data if d]
a = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx)
a.login(admin, apw)
root = "user/%s" % user
typ, data = a.setquota(root, "(STORAGE 1000000)")   # makes the root, which counts usage
assert typ == "OK", data
typ, data = a.getquota(root)
used = int(re.search(rb"STORAGE (\d+) ", data[0]).group(1))
typ, data = a.setquota(root, "(STORAGE %d)" % (used + (sum(sizes) // 2) // 1024))
assert typ == "OK", data
a.logout()
u.logout()
PY
    set +e
    mailret restore --it-key "$T/it.key" --it-passphrase-file "$T/it.pass" \
        --reason "imap quota test" --imap-mailbox Kvote > "$T/restore-q.out" 2> "$T/restore-q.log"
    rc=$?
    set -e
    [ "$rc" != 0 ] || fail "a restore with refused messages exited 0"
    read -r ok refused < <(sed -n 's/^restored \([0-9]*\) messages.*; \([0-9]*\) refused by the server$/\1 \2/p' "$T/restore-q.out")
    [ -n "${ok:-}" ] || fail "no summary: $(cat "$T/restore-q.out") $(tail -2 "$T/restore-q.log")"
    [ "$ok" -ge 1 ] && [ "$refused" -ge 1 ] && [ $((ok + refused)) = 25 ] ||
        fail "restored $ok + refused $refused, want 25 with some of each"
    [ "$(grep -c 'not appended: mailbox Kvote: IMAP APPEND refused' "$T/restore-q.log")" = "$refused" ] ||
        fail "not one log line per refused message: $(grep -c 'not appended' "$T/restore-q.log") for $refused"
    grep -q "$refused messages\? refused by the IMAP server" "$T/restore-q.log" || fail "no final error line"
    snapshot Kvote "$T/restored-q"
    [ "$(wc -l < "$T/restored-q")" = "$ok" ] || fail "Kvote holds $(wc -l < "$T/restored-q"), want $ok"
    echo "archive_imap: ok ($SERVER_KIND: $ok restored, $refused refused over quota; no Maildir part)"
    exit 0
fi
mailret restore --it-key "$T/it.key" --it-passphrase-file "$T/it.pass" \
    --reason "maildir round trip test" --maildir "$USER_MAILDIR/.RestoredMd" > "$T/restore-md.out"
grep -q 'restored 25 messages' "$T/restore-md.out" || fail "restore: $(cat "$T/restore-md.out")"
grep -q ' NonJunk$' "$USER_MAILDIR/.RestoredMd/dovecot-keywords" || fail "no keyword table"
"$SERVER_SCRIPT" fix-perms --dir "$MAILRET_TEST_IMAP_DIR" "$USER_NAME"
snapshot RestoredMd "$T/restored-md"
diff "$T/before" "$T/restored-md" >&2 || fail "Maildir restore differs (bytes, flags or dates)"
echo "archive_imap: ok"
