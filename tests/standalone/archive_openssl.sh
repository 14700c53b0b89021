#!/bin/bash
# archive_openssl.sh — the archive end to end through the mailret binary, and IT's
# stock-tools path: keys init-it / init-host, backup --from-maildir, verify, restore
# (byte-exact, flags, INTERNALDATE), one volume opened with only `openssl cms` and `tar`
# and compared with `restore --pseudonymised`, no planted identifier or private key on the
# host, tampering and a missing volume named, wrong passphrase and no key refused.
# Runs twice: with a P-256 IT key (CMS key agreement) and an RSA-3072 one (key transport).
set -euo pipefail

: "${MAILRET_BIN:?}"
if [ -z "${ARCHIVE_IT_ALGO:-}" ]; then
  for algo in p256 rsa3072; do ARCHIVE_IT_ALGO=$algo bash "$0" || exit 1; done
  exit 0
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/archive-openssl.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
# The messages' digests (dovecot-keywords, the keyword table of a Maildir, is checked apart)
sha_list() { (cd "$1" && find . -type f ! -name dovecot-keywords -exec sha256sum {} + | awk '{print $1}' | sort); }

# --- IT's machine: the restore key pair ----------------------------------------------
umask 077
printf 'it passphrase 123\n' > it.pass
"$MAILRET_BIN" keys init-it --key it.key --cert it.crt --passphrase-file it.pass \
  --algo "$ARCHIVE_IT_ALGO" >/dev/null
grep -q 'BEGIN ENCRYPTED PRIVATE KEY' it.key || fail "IT key is not encrypted"
# ...with PBKDF2-HMAC-SHA256 at >= 600,000 iterations (OpenSSL's default is 2,048), as
# openssl's own parser reads the PBES2 parameters
openssl asn1parse -in it.key > asn1.txt
grep -q ':PBKDF2' asn1.txt && grep -q ':hmacWithSHA256' asn1.txt && grep -q ':aes-256-cbc' asn1.txt ||
  fail "IT key is not PBES2/PBKDF2-HMAC-SHA256/AES-256: $(cat asn1.txt)"
ITER=$(awk '/:PBKDF2/{p=1} p && /INTEGER/{sub(/.*:/, ""); print; exit}' asn1.txt)
[ -n "$ITER" ] && [ $((16#$ITER)) -ge 600000 ] || fail "PBKDF2 iterations: ${ITER:-none}"
printf 'elevenchars\n' > short.pass
if "$MAILRET_BIN" keys init-it --key short.key --cert short.crt --passphrase-file short.pass \
     2>err.txt; then fail "an 11-character passphrase was accepted"; fi
grep -q 'at least 12 characters' err.txt || fail "short passphrase: $(cat err.txt)"
[ ! -e short.key ] || fail "a key was written for a refused passphrase"
want_type=EC; [ "$ARCHIVE_IT_ALGO" = rsa3072 ] && want_type=RSA
openssl pkey -in it.key -passin "file:$T/it.pass" -noout -text 2>/dev/null \
  | grep -q "$([ $want_type = RSA ] && echo 'Private-Key: (3072 bit' || echo 'ASN1 OID: prime256v1')" \
  || fail "IT key is not $ARCHIVE_IT_ALGO"
chmod 644 it.pass
if "$MAILRET_BIN" keys init-it --key it2.key --cert it2.crt --passphrase-file it.pass \
       2>err.txt; then fail "a group-readable passphrase file was accepted"; fi
grep -q 'accessible by group or others' err.txt || fail "unclear error: $(cat err.txt)"
chmod 600 it.pass

# --- the host --------------------------------------------------------------------------
mkdir -p state host
printf 'x\n' > imap.password
cat > mailret.conf <<CONF
[imap]
host = imap.invalid
user = mailret
password_file = $T/imap.password
[mailboxes]
mailbox = INBOX
[members]
own_addresses = post@fund.example.dk
[archive]
dir = $T/archive
volume_size = 64K
compression_level = 6
workers = 2
[keys]
vault_dir = $T/vault
it_cert = $T/host/it.crt
pseudonym_key_file = $T/host/pseudonym.key
manifest_key_file = $T/host/manifest.key
[state]
dir = $T/state
[audit]
log = $T/state/audit.log
CONF
M() { "$MAILRET_BIN" -c "$T/mailret.conf" "$@"; }
M keys init-host --it-cert it.crt >/dev/null
test "$(stat -c %a host/pseudonym.key)" = 600 || fail "pseudonym key mode"
M keys init-host --it-cert it.crt 2>/dev/null && fail "init-host replaced existing keys"
M keys list | grep -q pseudonym || fail "keys list"

# A Maildir with planted identifiers and some bulk so that there are several volumes,
# and IMAP keywords the way Dovecot keeps them (letters + dovecot-keywords).
mkdir -p md/cur md/new md/tmp
printf '0 $Forwarded\n1 NonJunk\n' > md/dovecot-keywords
for i in $(seq 1 30); do
  f="md/cur/17000000$i.M$i.host:2,S"
  [ $((i % 7)) = 1 ] && f="md/cur/17000000$i.M$i.host:2,Sa"
  [ $((i % 7)) = 2 ] && f="md/cur/17000000$i.M$i.host:2,Sab"
  [ $((i % 3)) = 0 ] && f="md/cur/17000000$i.M$i.host:2,RS"
  [ $((i % 5)) = 0 ] && f="md/new/17000000$i.M$i.host"
  {
    printf 'From: Karen Sørensen <karen.soerensen@example.com>\r\n'
    printf 'To: post@fund.example.dk\r\n'
    printf 'Subject: Sag %d, CPR 2512849876\r\n' "$i"
    printf 'Message-ID: <it-%d@example.com>\r\n\r\n' "$i"
    printf 'Ring venligst på +45 87 65 43 21. Mvh Karen Sørensen\r\n'
    if [ $((i % 4)) = 0 ]; then head -c 20000 /dev/urandom | base64 -w 76; fi
  } > "$f"
  touch -d "@$((1790000000 + i * 3600))" "$f"
done

M backup --from-maildir md --mailbox INBOX --all > backup.out
BATCH_DIR=$(cut -f5 backup.out)
test -f "$BATCH_DIR/manifest.json" || fail "no manifest"
NVOL=$(ls "$BATCH_DIR"/vol-*.p7m | wc -l)
[ "$NVOL" -ge 2 ] || fail "expected several volumes, got $NVOL"
for v in "$BATCH_DIR"/*.p7m; do
  [ "$(stat -c %s "$v")" -le 65536 ] || fail "$v exceeds the volume size"
done
M verify all | grep -q $'\tok\t' || fail "verify"

# Invariant 3: nothing identifying and no private key on the host's disks but its own
# batch-signing key (Ed25519, 0600), which can sign but decrypts nothing.
for needle in karen.soerensen@example.com 2512849876 'Karen Sørensen' '87 65 43 21' \
              'PRIVATE KEY'; do
  if grep -rqaF --exclude=signing-key.pem "$needle" archive vault state host; then
    fail "found a planted value on disk"; fi
done
test "$(stat -c %a state/signing-key.pem)" = 600 || fail "signing key mode"
openssl pkey -in state/signing-key.pem -noout -text | grep -q 'ED25519 Private-Key' ||
  fail "the host's signing key is not Ed25519"

# --- IT: restore ------------------------------------------------------------------------
export MAILRET_IT_PASSPHRASE='wrong passphrase'
if M restore --reason test --it-key it.key --maildir out-x 2>err.txt; then
  fail "restore with a wrong passphrase succeeded"; fi
grep -q 'wrong passphrase' err.txt || fail "unclear error: $(cat err.txt)"
unset MAILRET_IT_PASSPHRASE
if M restore --reason test --maildir out-x 2>err.txt; then fail "restore without IT key"; fi
grep -q 'it-key' err.txt || fail "unclear error: $(cat err.txt)"

M restore --reason "integration test" --it-key it.key --it-passphrase-file it.pass \
  --maildir out-full > restore.out
grep -q 'restored 30 messages' restore.out || fail "restore count: $(cat restore.out)"
[ "$(sha_list md)" = "$(sha_list out-full)" ] || fail "restored bytes differ from originals"
# flags and INTERNALDATE
for f in out-full/cur/*; do
  date=$(basename "$f" | cut -d. -f1)
  [ "$(stat -c %Y "$f")" = "$date" ] || fail "mtime is not INTERNALDATE"
done
[ "$(ls out-full/cur | grep -c ':2,RS$')" = "$(ls md/cur | grep -c ':2,RS$')" ] || fail "flags"
[ "$(ls out-full/cur | grep -c ':2,$')" = "$(ls md/new | wc -l)" ] || fail "unflagged"
# keywords: read from the source's letters and table, archived by name, written back
[ "$(ls md/cur | grep -c ':2,Sa$')" = 4 ] && [ "$(ls md/cur | grep -c ':2,Sab$')" = 3 ] ||
  fail "test set-up: keyword letters"
[ "$(ls out-full/cur | grep -c ':2,Sa$')" = 4 ] || fail "keyword \$Forwarded lost"
[ "$(ls out-full/cur | grep -c ':2,Sab$')" = 3 ] || fail "keywords \$Forwarded NonJunk lost"
grep -qx '0 $Forwarded' out-full/dovecot-keywords && grep -qx '1 NonJunk' out-full/dovecot-keywords ||
  fail "restored dovecot-keywords: $(cat out-full/dovecot-keywords 2>&1)"

M restore --reason "integration test" --it-key it.key --it-passphrase-file it.pass \
  --pseudonymised --maildir out-pseudo >/dev/null

# A person's mail: the address or CPR number on standard input, never in argv.
printf 'Karen.Soerensen@example.com\n' | M restore --reason "access request 12" \
  --it-key it.key --it-passphrase-file it.pass --person --maildir out-person > p.out ||
  fail "restore --person"
grep -q 'restored 30 messages' p.out || fail "restore --person: $(cat p.out)"
printf '  \n2512849876\r\nnobody@example.org\n' | M restore --reason "access request 13" \
  --it-key it.key --it-passphrase-file it.pass --person --maildir out-cpr > p.out ||
  fail "restore --person (CPR)"
grep -q 'restored 30 messages' p.out || fail "restore --person by CPR: $(cat p.out)"
# Someone the archive does not know: nothing matched is an error, and nothing is written.
if printf 'nobody@example.org\n' | M restore --reason "access request 14" \
     --it-key it.key --it-passphrase-file it.pass --person --maildir out-nobody > p.out 2> err.txt; then
  fail "restore --person for someone else: exit 0: $(cat p.out)"; fi
grep -q 'nothing matched the selection' err.txt || fail "restore --person for someone else: $(cat err.txt)"
[ -z "$(find out-nobody -type f 2>/dev/null | head -1)" ] || fail "restore --person for someone else wrote mail"
if M restore --reason "x y z" --it-key it.key --it-passphrase-file it.pass \
     --person karen.soerensen@example.com --maildir out-argv < /dev/null 2> err.txt; then
  fail "a person on the command line was accepted"; fi
grep -q 'standard input' err.txt || fail "--person in argv: unclear error: $(cat err.txt)"
if grep -qiF 'karen.soerensen' err.txt; then fail "the refused value was echoed"; fi
if M restore --reason "x y z" --it-key it.key --it-passphrase-file it.pass \
     --person --maildir out-empty < /dev/null 2> err.txt; then fail "--person with no input"; fi
grep -q 'no address or CPR number' err.txt || fail "--person, empty input: $(cat err.txt)"
if grep -qiF -e 'karen.soerensen' -e '2512849876' state/audit.log; then
  fail "a person's address or CPR number reached the audit log"; fi
grep -rqaF karen.soerensen@example.com out-pseudo && fail "pseudonymised restore has identifiers"

# The same through stock tools only: unseal the epoch key, decrypt, untar.
KEYID=$(sed -n 's/.*"epoch_keys":{"content":"\([0-9a-f]*\)".*/\1/p' "$BATCH_DIR/manifest.json")
[ -n "$KEYID" ] || fail "no content key id in the manifest"
openssl cms -decrypt -inform DER -in "vault/$KEYID.key.p7m" -inkey it.key \
  -passin "file:$T/it.pass" -out epoch.pem
mkdir stock
for v in "$BATCH_DIR"/vol-*.p7m; do
  openssl cms -decrypt -inform DER -binary -inkey epoch.pem -in "$v" | tar xzf - -C stock
done
test -f stock/index.jsonl || fail "no index.jsonl"
rm stock/index.jsonl
[ "$(ls stock | wc -l)" = 30 ] || fail "stock tools: wrong file count"
[ "$(sha_list stock)" = "$(sha_list out-pseudo)" ] || fail "openssl+tar differs from mailret"
# ...and one volume alone, exactly as docs/RESTORE-IT.md shows: signature, the volume's
# SHA-256 against the signed manifest, decrypt to a file, untar only on success.
cp state/host-keys.pem host-key.pem
stock_one() {   # batch dir, output dir
  local B=$1 M=$1/manifest.json
  perl -0777 -ne 'print substr($_, 0, rindex($_, q(,"ed25519_signature":"))), "}"' $M > signed
  perl -ne 'print pack "H*", $1 if /"ed25519_signature":"([0-9a-f]{128})"/' $M > sig
  openssl pkeyutl -verify -rawin -pubin -inkey host-key.pem -sigfile sig -in signed >/dev/null ||
    return 11
  grep -q "\"name\":\"vol-0001.p7m\",\"size\":[0-9]*,\"sha256\":\"$(sha256sum < $B/vol-0001.p7m | cut -c1-64)\"" signed ||
    return 12
  if openssl cms -decrypt -inform DER -binary -inkey epoch.pem -in $B/vol-0001.p7m \
        -out vol1.tgz 2>/dev/null; then
    mkdir "$2" && tar xzf vol1.tgz -C "$2"
  else
    rm -f vol1.tgz; return 13
  fi
}
stock_one "$BATCH_DIR" one || fail "stock tools on a genuine volume: $?"
ls one | grep -q '\.eml$' || fail "vol-0001 alone"
# a flipped byte in the ciphertext: the signed SHA-256 refuses it, and even past that
# check openssl fails (the GCM tag) so nothing is unpacked
cp "$BATCH_DIR/vol-0001.p7m" vol.saved
SZ=$(stat -c %s vol.saved)
printf '\x00' | dd of="$BATCH_DIR/vol-0001.p7m" bs=1 seek=$((SZ - 100)) conv=notrunc 2>/dev/null
cmp -s vol.saved "$BATCH_DIR/vol-0001.p7m" &&
  printf '\x01' | dd of="$BATCH_DIR/vol-0001.p7m" bs=1 seek=$((SZ - 100)) conv=notrunc 2>/dev/null
rc=0; stock_one "$BATCH_DIR" two || rc=$?
[ $rc = 12 ] || fail "stock tools: a flipped byte was not caught by the signed SHA-256 ($rc)"
rc=0; openssl cms -decrypt -inform DER -binary -inkey epoch.pem -in "$BATCH_DIR/vol-0001.p7m" \
  -out flipped.tgz 2>/dev/null || rc=$?
[ $rc != 0 ] || fail "openssl cms exited 0 on a flipped byte: the recipe's check would not help"
cp vol.saved "$BATCH_DIR/vol-0001.p7m"
# an altered manifest fails the signature check
cp "$BATCH_DIR/manifest.json" man.saved
sed -i 's/"mailbox":"INBOX"/"mailbox":"INBOY"/' "$BATCH_DIR/manifest.json"
rc=0; stock_one "$BATCH_DIR" three || rc=$?
[ $rc = 11 ] || fail "stock tools: an altered manifest passed the signature check ($rc)"
cp man.saved "$BATCH_DIR/manifest.json"

# --- tampering and loss are detected and named ----------------------------------------
for name in vol-0002.p7m reid-0001.p7m manifest.json; do
  cp "$BATCH_DIR/$name" saved
  printf '\x55' | dd of="$BATCH_DIR/$name" bs=1 seek=200 conv=notrunc 2>/dev/null
  cmp -s saved "$BATCH_DIR/$name" && printf '\x56' | dd of="$BATCH_DIR/$name" bs=1 seek=200 conv=notrunc 2>/dev/null
  if M verify all > v.out; then fail "tampered $name not detected"; fi
  grep -q "$name" v.out || fail "verify did not name $name: $(cat v.out)"
  cp saved "$BATCH_DIR/$name"
done
mv "$BATCH_DIR/vol-0002.p7m" saved
if M verify all > v.out; then fail "missing volume not detected"; fi
grep -q 'vol-0002.p7m is missing' v.out || fail "missing volume not named: $(cat v.out)"
mv saved "$BATCH_DIR/vol-0002.p7m"
M verify all >/dev/null || fail "restored batch does not verify"

# every key operation and restore is in the audit log, and the chain holds
grep -q '"event":"restore.done"' state/audit.log || fail "restore not audited"
grep -q '"event":"keys.epoch.create"' state/audit.log || fail "epoch keys not audited"
echo "archive_openssl ($ARCHIVE_IT_ALGO): ok"
