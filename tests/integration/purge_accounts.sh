#!/bin/bash
# purge_accounts.sh — two IMAP accounts in one configuration, each with its own INBOX, on
# the real server: a single-account file's state stays valid when its [imap] becomes
# [account default]; ingest and purge cover both accounts, keep their positions, journal
# entries and archive batches apart (default: "INBOX", the other "bob:INBOX"); per-account
# counts are exact; status shows each account's login and mailboxes with their own last
# ingest, and the unrouted queue names (and assign fetches from) each entry's account; IT
# restores each account's archive to exactly that account's messages,
# and by APPEND into that account's server only; --account selects one (alone: every
# batch of that account and none of the other's; another account's batch refused).
# servers: dovecot cyrus
source "$(dirname "$0")/purge_lib.sh"

# shas_of USER PWFILE [MAILBOX]: SHA-256 of every message, sorted.
shas_of() {
    python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$1" "$2" "${3:-INBOX}" <<'PY'
import hashlib, imaplib, ssl, sys
host, port, ca, user, pwf, box = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
typ, _ = m.select('"%s"' % box, readonly=True)
out = []
if typ == "OK":
    typ, data = m.uid("SEARCH", None, "ALL")
    uids = data[0].split()
    for i in range(0, len(uids), 200):
        typ, resp = m.uid("FETCH", b",".join(uids[i:i + 200]), "(BODY.PEEK[])")
        out += [hashlib.sha256(p[1]).hexdigest() for p in resp if isinstance(p, tuple)]
m.logout()
print("\n".join(sorted(out)))
PY
}

# Account A (becomes "default") and account B ("bob"), each with generated mail.
new_user acct-a
gen_corpus 40 accounts-a-1
append_recent "$RECENT"
A_USER=$USER_NAME; cp "$T/password" "$T/a.pw"
mv "$T/corpus" "$T/corpus-a"
new_user acct-b
gen_corpus 30 accounts-b-1
append_recent "$RECENT"
B_USER=$USER_NAME; cp "$T/password" "$T/b.pw"
shas_of "$A_USER" "$T/a.pw" > "$T/a-orig.sha"
shas_of "$B_USER" "$T/b.pw" > "$T/b-orig.sha"
A_TOTAL=$(wc -l < "$T/a-orig.sha"); B_TOTAL=$(wc -l < "$T/b-orig.sha")
[ "$A_TOTAL" = 43 ] && [ "$B_TOTAL" = 33 ] || fail "corpus: $A_TOTAL and $B_TOTAL messages"
# Only the recent messages, identical in both and never purged, are in both accounts.
[ "$(comm -12 "$T/a-orig.sha" "$T/b-orig.sha" | wc -l)" = "$RECENT" ] || fail "the two corpora share old mail"

# 1. The single-account file, as before accounts: A's mail is ingested.
USER_NAME=$A_USER; cp "$T/a.pw" "$T/password"
write_config
setup_keys
mailret ingest --json > "$T/ing1.json" 2> "$T/ing1.log" || fail "ingest (single): $(tail -3 "$T/ing1.log")"
[ "$(json_field "$T/ing1.json" 'j["mailboxes"][0]["fetched"]')" = "$A_TOTAL" ] || fail "single-account ingest count"

# 2. The same file with [imap] as [account default] and a second account with its own INBOX.
account_lines() {  # account_lines NAME USER PWFILE
    printf '%s\n' "[account $1]" "host = $HOST" "port = $IMAPS_PORT" "ca_file = $CA_FILE" \
        "user = $2" "password_file = $3" "mailbox = INBOX"
}
{
    sed -n '/^\[members\]/,$p' "$T/mailret.conf"
    account_lines default "$A_USER" "$T/a.pw"
    account_lines bob "$B_USER" "$T/b.pw"
} > "$T/accounts.conf"
mv "$T/accounts.conf" "$T/mailret.conf"
mailret config check > "$T/cc.out" 2>&1 || { cat "$T/cc.out"; fail "config check of two accounts"; }
mailret config show > "$T/show.out" || fail "config show"
grep -q '^\[account default\]' "$T/show.out" && grep -q '^\[account bob\]' "$T/show.out" ||
    { cat "$T/show.out"; fail "config show lacks the account sections"; }
! grep -q '^\[imap\]' "$T/show.out" || fail "config show prints [imap] beside accounts"

mailret ingest --json > "$T/ing2.json" 2> "$T/ing2.log" || fail "ingest (two accounts): $(tail -3 "$T/ing2.log")"
[ "$(json_field "$T/ing2.json" '[a["account"] for a in j["accounts"]]')" = "['default', 'bob']" ] ||
    fail "ingest report accounts"
[ "$(json_field "$T/ing2.json" 'j["accounts"][0]["mailboxes"][0]["fetched"]')" = 0 ] ||
    fail "account default re-ingested: its state from the single-account file was not kept"
[ "$(json_field "$T/ing2.json" 'j["accounts"][1]["mailboxes"][0]["fetched"]')" = "$B_TOTAL" ] ||
    fail "account bob ingest count"
# Positions in the shared state, one per account, both for INBOX.
python3 - "$T/state/ingest-state.sqlite" "$A_USER@$HOST" <<'PY' || fail "ingest state keys"
import sqlite3, sys
rows = sorted(sqlite3.connect(sys.argv[1]).execute(
    "SELECT account, mailbox FROM mailbox_state").fetchall())
assert rows == sorted([(sys.argv[2], "INBOX"), ("bob", "INBOX")]), rows
PY
# status: a login per account, each account's mailboxes with its own last ingest (default
# fetched nothing new, bob everything) and the server's count from its own server.
mailret status --json > "$T/st.json" 2> "$T/st.log" || { cat "$T/st.json" "$T/st.log"; fail "status (two accounts)"; }
python3 - "$T/st.json" "$A_TOTAL" "$B_TOTAL" <<'PY' || fail "status per account"
import json, sys
j = json.load(open(sys.argv[1])); a, b = int(sys.argv[2]), int(sys.argv[3])
assert [(x["name"], x["login"]["status"]) for x in j["accounts"]] == [("default", "ok"), ("bob", "ok")], j["accounts"]
assert j["accounts"][1]["key"] == "bob", j["accounts"]
got = [(m["account"], m["mailbox"], m["last_ingest"]["fetched"], m["server"]["messages"])
       for m in j["mailboxes"]]
assert got == [("default", "INBOX", 0, a), ("bob", "bob:INBOX", b, b)], got
assert "login" not in j and "account" not in j, "one account's login shown for two"
PY
mailret status > "$T/st.txt" 2> "$T/st.log" || fail "status (text)"
grep -q "^account $A_USER@$HOST: login ok" "$T/st.txt" && grep -q '^account bob: login ok' "$T/st.txt" &&
    grep -q '^mailbox bob:INBOX$' "$T/st.txt" && grep -q "^  last ingest .* ok ($B_TOTAL fetched)$" "$T/st.txt" ||
    { cat "$T/st.txt"; fail "status text per account"; }
mailret status --account bob --offline --json > "$T/stb.json" 2> "$T/stb.log" || fail "status --account bob"
[ "$(json_field "$T/stb.json" '([a["name"] for a in j["accounts"]], [(m["mailbox"], m["last_ingest"]["fetched"]) for m in j["mailboxes"]], j["account"], j["login"]["status"])')" = \
  "(['bob'], [('bob:INBOX', $B_TOTAL)], 'bob', 'skipped')" ] || { cat "$T/stb.json"; fail "status --account bob"; }
if mailret status --account nosuch > /dev/null 2> "$T/stn.err"; then fail "status: unknown --account accepted"; fi
[ "$(wc -l < "$T/stn.err")" = 1 ] && grep -q 'no \[account nosuch\]' "$T/stn.err" || { cat "$T/stn.err"; fail "status: unknown account error"; }

# An account whose password cannot be read fails its login; the other is still shown.
cp "$T/mailret.conf" "$T/good.conf"
sed -i "s#^password_file = $T/b.pw#password_file = $T/b-missing.pw#" "$T/mailret.conf"
set +e; mailret status --json > "$T/stm.json" 2> "$T/stm.log"; rc=$?; set -e
mv "$T/good.conf" "$T/mailret.conf"
[ "$rc" = 1 ] || { cat "$T/stm.json" "$T/stm.log"; fail "status with bob's password missing: exit $rc"; }
[ "$(json_field "$T/stm.json" '([(a["name"], a["login"]["status"]) for a in j["accounts"]], [m["last_ingest"]["fetched"] for m in j["mailboxes"]], [p for p in j["problems"] if p.startswith("account bob: ")] != [])')" =   "([('default', 'ok'), ('bob', 'failed')], [0, $B_TOTAL], True)" ] || { cat "$T/stm.json"; fail "status with one account's password missing"; }

# unrouted: every queued message names the account and mailbox it came from, as the
# member database recorded them (default by user@host, bob by name).
DB="$T/state/members.sqlite"
mailret unrouted list --json > "$T/ul.json" 2> "$T/ul.log" || fail "unrouted list: $(cat "$T/ul.log")"
sqlite3 -separator ' ' "$DB" "SELECT id, source_account, source_mailbox FROM unrouted" > "$T/ul.db"
python3 - "$T/ul.json" "$T/ul.db" "$A_USER@$HOST" <<'PY' || fail "unrouted list accounts"
import json, sys
j = json.load(open(sys.argv[1]))
db = {int(i): (a, m) for i, a, m in (l.split() for l in open(sys.argv[2]))}
names = {sys.argv[3]: ("default", ""), "bob": ("bob", "bob:")}
assert j["count"] == len(db) == len(j["messages"]), (j["count"], len(db))
for m in j["messages"]:
    acct, box = db[m["id"]]
    assert (m["account"], m["mailbox"]) == (names[acct][0], names[acct][1] + box), (m, acct, box)
assert {m["account"] for m in j["messages"]} == {"default", "bob"}, "not both accounts queued"
PY
mailret unrouted list > "$T/ul.txt" || fail "unrouted list (text)"
[ "$(grep -c ' bob  *bob:INBOX ' "$T/ul.txt")" = "$(sqlite3 "$DB" "SELECT count(*) FROM unrouted WHERE source_account = 'bob'")" ] &&
    [ "$(grep -c ' default  *INBOX ' "$T/ul.txt")" = "$(sqlite3 "$DB" "SELECT count(*) FROM unrouted WHERE source_account <> 'bob'")" ] ||
    { cat "$T/ul.txt"; fail "unrouted list (text) accounts"; }
# Without the stored bytes, show and assign fetch bob's message from bob's server: the
# same UID on default's server is another message (its SHA-256 differs).
read -r bid bsha <<< "$(sqlite3 -separator ' ' "$DB" "SELECT id, sha256 FROM unrouted WHERE source_account = 'bob' AND source_uid IN (SELECT source_uid FROM unrouted WHERE source_account <> 'bob') ORDER BY id LIMIT 1")"
[ -n "$bid" ] || fail "no bob entry whose UID default also queued"
sqlite3 "$DB" "UPDATE unrouted SET raw = x'' WHERE id = $bid"
mailret unrouted show "$bid" > "$T/us.txt" 2> "$T/us.err" || fail "unrouted show: $(cat "$T/us.err")"
grep -q '^account   bob$' "$T/us.txt" && grep -q '^mailbox   bob:INBOX$' "$T/us.txt" && grep -q '^header$' "$T/us.txt" ||
    { cat "$T/us.txt" "$T/us.err"; fail "unrouted show of bob's message"; }
mailret members import "$T/corpus/members.csv" > /dev/null 2>&1 || fail "members import"
bm=$(python3 -c 'import csv,sys; print(next(csv.DictReader(open(sys.argv[1], encoding="utf-8")))["member_id"])' "$T/corpus/members.csv")
mailret unrouted assign "$bid" --member "$bm" > "$T/ua.out" 2> "$T/ua.err" || fail "unrouted assign of bob's message: $(cat "$T/ua.err")"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM documents WHERE sha256 = '$bsha' AND member_id = '$bm' AND rule = 'manual' AND source_account = 'bob'")" = 1 ] ||
    fail "bob's message not delivered from bob's server"
mailret ingest --account bob --json > "$T/ing3.json" 2> "$T/ing3.log" || fail "ingest --account bob"
[ "$(json_field "$T/ing3.json" 'len(j["accounts"])')" = 1 ] || fail "--account ran another account"
[ "$(json_field "$T/ing3.json" 'j["accounts"][0]["mailboxes"][0]["fetched"]')" = 0 ] || fail "bob re-ingested"
if mailret ingest --account nosuch > "$T/bad.out" 2> "$T/bad.err"; then fail "unknown --account accepted"; fi
[ "$(wc -l < "$T/bad.err")" = 1 ] && grep -q 'no \[account nosuch\]' "$T/bad.err" || { cat "$T/bad.err"; fail "unknown account error"; }

# 3. Purge both: each account's old mail archived and expunged, under its own name.
cut=$(month_start_epoch)
mailret purge --json > "$T/purge.json" 2> "$T/purge.log" || fail "purge: $(tail -3 "$T/purge.log")"
shas_of "$A_USER" "$T/a.pw" > "$T/a-now.sha"
shas_of "$B_USER" "$T/b.pw" > "$T/b-now.sha"
A_GONE=$(( A_TOTAL - $(wc -l < "$T/a-now.sha") )); B_GONE=$(( B_TOTAL - $(wc -l < "$T/b-now.sha") ))
[ "$A_GONE" -gt 10 ] && [ "$B_GONE" -gt 10 ] || fail "purge removed $A_GONE and $B_GONE messages"
[ "$(json_field "$T/purge.json" '[(a["account"], a["mailboxes"][0]["mailbox"], a["mailboxes"][0]["expunged"]) for a in j["accounts"]]')" = \
  "[('default', 'INBOX', $A_GONE), ('bob', 'bob:INBOX', $B_GONE)]" ] ||
    { cat "$T/purge.json"; fail "purge report per account"; }
[ -d "$T/archive/INBOX" ] && [ -d "$T/archive/bob%3AINBOX" ] || { ls "$T/archive"; fail "archive directories"; }
[ "$(ls "$T/archive" | wc -l)" = 2 ] || { ls "$T/archive"; fail "unexpected archive directories"; }

# 4. IT restores each account's archive: exactly what left that account's server.
restore_shas() {  # restore_shas DIR SELECTION...
    local d=$1; shift
    mailret restore --reason "accounts test" --it-key "$T/it.key" --it-passphrase-file "$T/it.pass" \
        "$@" --maildir "$d" > "$d.out" 2>&1 || { cat "$d.out" >&2; return 1; }
    find "$d" -type f \( -path '*/cur/*' -o -path '*/new/*' \) -print0 | xargs -0 -r sha256sum |
        awk '{print $1}' | sort
}
restore_shas "$T/rest-a" --account default --mailbox INBOX > "$T/a-rest.sha" || fail "restore of account default"
restore_shas "$T/rest-b" --account bob --mailbox INBOX > "$T/b-rest.sha" || fail "restore of account bob"
sort "$T/a-now.sha" "$T/a-rest.sha" | cmp -s - "$T/a-orig.sha" || fail "account default: server + archive != original"
sort "$T/b-now.sha" "$T/b-rest.sha" | cmp -s - "$T/b-orig.sha" || fail "account bob: server + archive != original"
[ -z "$(comm -12 "$T/a-rest.sha" "$T/b-orig.sha")" ] || fail "bob's mail in default's archive"

# --account alone: every batch of that account and nothing of the other's, by its own
# batches (bob's directory bob%3AINBOX, default's the bare INBOX).
restore_shas "$T/rest-a-all" --account default > "$T/a-all.sha" || fail "restore --account default"
restore_shas "$T/rest-b-all" --account bob > "$T/b-all.sha" || fail "restore --account bob"
cmp -s "$T/a-all.sha" "$T/a-rest.sha" || fail "--account default alone: $(wc -l < "$T/a-all.sha") messages, its archive has $A_GONE"
cmp -s "$T/b-all.sha" "$T/b-rest.sha" || fail "--account bob alone: $(wc -l < "$T/b-all.sha") messages, its archive has $B_GONE"
grep -q "from 1 batches" "$T/rest-b-all.out" || fail "--account bob: $(cat "$T/rest-b-all.out")"
# --list says the same without writing, per batch.
mailret restore --reason "accounts test" --it-key "$T/it.key" --it-passphrase-file "$T/it.pass" \
    --account bob --list --json > "$T/list-b.json" 2> "$T/list-b.err" || fail "restore --account bob --list: $(cat "$T/list-b.err")"
[ "$(json_field "$T/list-b.json" '(sorted({b["mailbox"] for b in j["batches"]}), j["messages"])')" = "(['bob:INBOX'], $B_GONE)" ] ||
    { cat "$T/list-b.json"; fail "--list --account bob lists another account's batch"; }
# A batch of the other account is refused; an unknown account is a one-line error; nothing
# is written either way.
BOB_BATCH=$(basename "$(dirname "$(find "$T/archive/bob%3AINBOX" -name manifest.json | head -1)")")
if restore_shas "$T/rest-cross" --account default --batch "$BOB_BATCH" > /dev/null 2> "$T/cross.err"; then
    fail "--account default restored bob's batch"; fi
grep -q "is account bob's, not default's" "$T/rest-cross.out" || fail "cross-account batch: $(cat "$T/rest-cross.out")"
[ ! -e "$T/rest-cross" ] || fail "cross-account batch: wrote mail"
if mailret restore --reason "accounts test" --it-key "$T/it.key" --it-passphrase-file "$T/it.pass" \
        --account nosuch --maildir "$T/rest-none" > "$T/none.out" 2> "$T/none.err"; then
    fail "restore --account nosuch succeeded"; fi
[ "$(grep -c 'mailret restore:' "$T/none.err")" = 1 ] && grep -q 'mailret restore: no batch of account nosuch under ' "$T/none.err" ||
    { cat "$T/none.err"; fail "unknown account error"; }
[ ! -s "$T/none.out" ] && [ ! -e "$T/rest-none" ] || fail "unknown account: wrote something"

# Restore by APPEND goes to the named account's server, and nowhere else.
if mailret restore --reason "accounts test" --it-key "$T/it.key" --it-passphrase-file "$T/it.pass" \
        --mailbox bob:INBOX --imap-mailbox Restored > "$T/ra.out" 2>&1; then
    fail "--imap-mailbox without --account accepted with two accounts"
fi
grep -q 'give --account NAME' "$T/ra.out" || { cat "$T/ra.out"; fail "--imap-mailbox error"; }
mailret restore --reason "accounts test" --it-key "$T/it.key" --it-passphrase-file "$T/it.pass" \
    --account bob --mailbox INBOX --imap-mailbox Restored > "$T/rb.out" 2>&1 || { cat "$T/rb.out"; fail "restore by APPEND"; }
shas_of "$B_USER" "$T/b.pw" Restored > "$T/b-restored.sha"
cmp -s "$T/b-restored.sha" "$T/b-rest.sha" || fail "bob's Restored mailbox != bob's archive"
[ -z "$(shas_of "$A_USER" "$T/a.pw" Restored)" ] || fail "restore by APPEND reached account default"

# 5. A second purge finds nothing in either; check sees both mailboxes.
mailret purge > "$T/again.out" 2> "$T/again.log" || fail "second purge: $(tail -3 "$T/again.log")"
[ "$(grep -c 'nothing older than the cutoff' "$T/again.out")" = 2 ] || { cat "$T/again.out"; fail "second purge"; }
mailret check --json > "$T/check.json" 2> "$T/check.log" || { cat "$T/check.json" "$T/check.log"; fail "check"; }
[ "$(json_field "$T/check.json" 'sorted((m["mailbox"], m["status"]) for m in j["mailboxes"])')" = \
  "[('INBOX', 'ok'), ('bob:INBOX', 'ok')]" ] || { cat "$T/check.json"; fail "check mailboxes"; }
echo "PASS purge_accounts (default: $A_GONE archived, bob: $B_GONE archived)"
