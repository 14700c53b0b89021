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
for uid, kw in (("1:4", "(\$Forwarded NonJunk)"), ("5", "(\$Label1)"), ("6", "(NonJunk)")):
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
diff "$T/before" "$T/restored" >&2 || fail "restored mailbox differs (bytes, flags or dates)"

# The same into a Maildir folder (Maildir++: ".RestoredMd" is mailbox RestoredMd), handed
# to the mail user and read back through Dovecot: keywords come back through
# dovecot-keywords, INTERNALDATE through the file times.  (Cyrus has no Maildir.)
if [ "$SERVER_KIND" != dovecot ]; then
    echo "archive_imap: ok ($SERVER_KIND, without the Maildir part)"
    exit 0
fi
mailret restore --it-key "$T/it.key" --it-passphrase-file "$T/it.pass" \
    --reason "maildir round trip test" --maildir "$USER_MAILDIR/.RestoredMd" > "$T/restore-md.out"
grep -q 'restored 25 messages' "$T/restore-md.out" || fail "restore: $(cat "$T/restore-md.out")"
grep -q ' NonJunk$' "$USER_MAILDIR/.RestoredMd/dovecot-keywords" || fail "no keyword table"
"$SERVER_SCRIPT" fix-perms --dir "$MAILRET_TEST_IMAP_DIR"
snapshot RestoredMd "$T/restored-md"
diff "$T/before" "$T/restored-md" >&2 || fail "Maildir restore differs (bytes, flags or dates)"
echo "archive_imap: ok"
