#!/bin/bash
# archive_imap.sh — backup from a real Dovecot over IMAPS (EXAMINE: nothing deleted), then
# IT's restore back into the server with APPEND: every message byte-identical (SHA-256 of
# BODY.PEEK[]), same flags, same INTERNALDATE; the source mailbox is untouched.
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

snapshot INBOX "$T/before"
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
echo "archive_imap: ok"
