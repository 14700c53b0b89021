#!/bin/bash
# archive_trust.sh — IT trusts a batch only after checking it against the host key it
# pinned, on a machine that holds no host secret:
#   * a genuine batch verifies and restores byte for byte on the "IT machine" (a directory
#     with only the archive copy, the vault copy, IT's key and the host's public keyring);
#   * the forged batch — new vol/reid content made with `openssl cms -encrypt` to the
#     public epoch certificates in the vault — is refused, whether the manifest is left as
#     it is (the file is named), edited (signature), re-signed with another key (not
#     pinned), stripped of its signature (unsigned) or given a zeroed signature and another
#     mailbox name; the explicit --trust-unsigned override restores it, loudly and audited
#     (which also shows that the forgery would otherwise pass);
#   * the fingerprint init-host prints is the SHA-256 of the keyring's public key, computed
#     here with openssl;
#   * a legacy (format 1, HMAC) manifest verifies on the host with the manifest key and is
#     flagged; IT needs --legacy-manifest-key;
#   * after `keys rotate-signing` batches signed by the old key still verify, a new batch
#     is refused with the old keyring and accepted with the new one;
#   * an unverifiable batch past its expiry is reported by check and expired (keys
#     shredded) on the vault's record.
source "$(dirname "$0")/offline_lib.sh"
sha_list() { (cd "$1" && find . -type f ! -name dovecot-keywords -exec sha256sum {} + | awk '{print $1}' | sort); }
offline_host "[retention]" "years = 1"
FPR=$(sed -n 's/.*fingerprint SHA256:\([0-9a-f]*\).*/\1/p' init.out)
[ ${#FPR} = 64 ] || fail "init-host printed no fingerprint: $(cat init.out)"
WANT=$(openssl pkey -pubin -in state/host-keys.pem -outform DER | sha256sum | cut -d' ' -f1)
[ "$FPR" = "$WANT" ] || fail "printed fingerprint is not the keyring key's SHA-256"
[ "$(stat -c %a state/signing-key.pem)" = 600 ] || fail "signing key mode"

mkmail() {   # dir n
  mkdir -p "$1/cur" "$1/new" "$1/tmp"
  for i in $(seq 1 "$2"); do
    printf 'From: Karen <karen@example.com>\r\nTo: post@fund.example.dk\r\nSubject: Sag %d\r\nMessage-ID: <t-%d-%s@example.com>\r\n\r\nBody %d\r\n' \
      "$i" "$i" "$1" "$i" > "$1/cur/17000000$i.M$i.host:2,S"
    touch -d "@$((1790000000 + i * 3600))" "$1/cur/17000000$i.M$i.host:2,S"
  done
}
mkmail md 3
M backup --from-maildir md --mailbox INBOX --all > backup.out
B=$(cut -f5 backup.out)
BID=$(basename "$B" | cut -c9-)
grep -q '"format":"mailret-batch/2"' "$B/manifest.json" || fail "manifest is not format 2"
grep -q '"epoch_certs":{"content":"[0-9a-f]\{64\}","reid":"[0-9a-f]\{64\}"}' "$B/manifest.json" ||
  fail "manifest lacks the epoch certificate fingerprints"
M verify all > v.out || fail "host verify: $(cat v.out)"
grep -q "signed by" v.out || fail "verify does not say who signed: $(cat v.out)"

# --- the IT machine: archive copy, vault copy, erasure ledger, IT's key, the pinned
# keyring; nothing else
ITM="$T/itmachine"
mkdir -p "$ITM"
cp -a archive vault it.key it.pass "$ITM/"
cp state/host-keys.pem "$ITM/pinned.pem"
cp state/erasure.ledger "$ITM/erasure.ledger"
ls "$ITM" | sort | tr '\n' ' ' | grep -qx 'archive erasure.ledger it.key it.pass pinned.pem vault ' ||
  fail "IT machine holds more than it should: $(ls "$ITM")"
if grep -rqa 'PRIVATE KEY' "$ITM/archive" "$ITM/vault" "$ITM/pinned.pem"; then
  fail "a private key in the IT machine's copies"; fi
[ ! -e /etc/mailret/mailret.conf ] || { echo "skip: /etc/mailret/mailret.conf exists"; exit 77; }
IT() { (cd "$ITM" && env -u MAILRET_CONFIG "$MAILRET_BIN" "$@"); }
ITR() { IT restore --archive-dir archive --vault-dir vault --audit-log it-audit.log \
          --it-key it.key --it-passphrase-file it.pass --reason "trust test" \
          --ledger erasure.ledger "$@"; }
ITV() { IT verify --archive-dir archive --vault-dir vault --audit-log it-audit.log "$@"; }
# No configuration on the IT machine: everything it trusts is given on the command line.
if ITV all 2>err.txt >v.out; then fail "verify without a pinned key succeeded"; fi
grep -q 'host-key' err.txt || fail "no pinned key: unclear error: $(cat err.txt)"
if ITR --maildir out0 2>err.txt; then fail "restore without a pinned key succeeded"; fi
grep -q 'host-key' err.txt || fail "no pinned key: unclear error: $(cat err.txt)"
ITV all --host-key pinned.pem > v.out || fail "IT verify of a genuine batch: $(cat v.out)"
ITR --host-key pinned.pem --maildir "$T/out-genuine" > r.out || fail "genuine restore"
grep -q 'restored 3 messages' r.out || fail "genuine restore count: $(cat r.out)"
[ "$(sha_list md)" = "$(sha_list out-genuine)" ] || fail "genuine restore is not byte-exact"

IB="$ITM/archive/INBOX/$(basename "$B")"
cp "$IB/manifest.json" manifest.genuine
cp "$IB/vol-0001.p7m" vol.genuine
cp "$IB/reid-0001.p7m" reid.genuine
restore_genuine() { cp manifest.genuine "$IB/manifest.json"; cp vol.genuine "$IB/vol-0001.p7m";
                    cp reid.genuine "$IB/reid-0001.p7m"; }
refused() {   # label, expected text; the batch must be refused by verify and restore
  local label=$1 want=$2
  if ITV all --host-key pinned.pem > v.out 2>&1; then fail "$label: verify accepted it"; fi
  grep -q "$want" v.out || fail "$label: verify did not say '$want': $(cat v.out)"
  rm -rf "$T/out-x"
  if ITR --host-key pinned.pem --maildir "$T/out-x" > r.out 2>err.txt; then
    fail "$label: restore accepted it"; fi
  grep -q "$want" err.txt || fail "$label: restore did not say '$want': $(cat err.txt)"
  [ "$(wc -l < err.txt)" = 1 ] || fail "$label: error is not one line: $(cat err.txt)"
  if [ -d "$T/out-x" ] && [ -n "$(find "$T/out-x" -type f -name '*host*')" ]; then
    fail "$label: something was restored"; fi
}

# --- the forged batch: content encrypted to the public epoch certificate in the vault
CKEY=$(sed -n 's/.*"epoch_keys":{"content":"\([0-9a-f]*\)".*/\1/p' manifest.genuine)
RKEY=$(sed -n 's/.*"epoch_keys":{[^}]*"reid":"\([0-9a-f]*\)".*/\1/p' manifest.genuine)
[ -f "$ITM/vault/$CKEY.crt.pem" ] && [ -f "$ITM/vault/$RKEY.crt.pem" ] || fail "epoch certs"
mkdir forge
printf 'From: ceo@fund.example.dk\r\nSubject: FORGED transfer order\r\n\r\nPay now.\r\n' > forge/77-1.eml
FSHA=$(sha256sum forge/77-1.eml | cut -d' ' -f1)
FSIZE=$(stat -c %s forge/77-1.eml)
printf '{"file":"77-1.eml","uidvalidity":77,"uid":1,"internaldate":"2026-09-21T14:13:20Z","internaldate_unix":1790000000,"tz_min":0,"flags":"\\\\Seen","size":%s,"sha256":"%s","pseudo_size":%s,"pseudo_sha256":"%s","tokens":[]}\n' \
  "$FSIZE" "$FSHA" "$FSIZE" "$FSHA" > forge/index.jsonl
(cd forge && tar --format=ustar --blocking-factor=1 --owner=0 --group=0 --numeric-owner --mode=0600 \
   -czf ../forged.tgz 77-1.eml index.jsonl)
openssl cms -encrypt -binary -aes-256-gcm -outform DER -in forged.tgz \
  -recip "$ITM/vault/$CKEY.crt.pem" -out forged-vol.p7m
printf '' > empty.tar && tar --format=ustar -czf forged-reid.tgz --files-from /dev/null
openssl cms -encrypt -binary -aes-256-gcm -outform DER -in forged-reid.tgz \
  -recip "$ITM/vault/$RKEY.crt.pem" -out forged-reid.p7m
VSHA=$(sha256sum forged-vol.p7m | cut -d' ' -f1); VSIZE=$(stat -c %s forged-vol.p7m)
RSHA=$(sha256sum forged-reid.p7m | cut -d' ' -f1); RSIZE=$(stat -c %s forged-reid.p7m)
forged_manifest() {   # the manifest describing the forged files (signature left as it was)
  python3 - "$1" "$VSHA" "$VSIZE" "$RSHA" "$RSIZE" <<'PY'
import re, sys
p, vs, vz, rs, rz = sys.argv[1:]
s = open(p).read()
s = re.sub(r'"name":"vol-0001.p7m","size":\d+,"sha256":"[0-9a-f]+","messages":\d+,'
           r'"reid":"reid-0001.p7m","reid_size":\d+,"reid_sha256":"[0-9a-f]+"',
           '"name":"vol-0001.p7m","size":%s,"sha256":"%s","messages":1,"reid":"reid-0001.p7m",'
           '"reid_size":%s,"reid_sha256":"%s"' % (vz, vs, rz, rs), s)
s = re.sub(r'"message_count":\d+', '"message_count":1', s)
open(p, 'w').write(s)
PY
}
cp forged-vol.p7m "$IB/vol-0001.p7m"; cp forged-reid.p7m "$IB/reid-0001.p7m"
# 1. files replaced, manifest untouched: the file is named
refused "forged files" "vol-0001.p7m"
# 2. the manifest edited to describe them: the signature no longer verifies
forged_manifest "$IB/manifest.json"
refused "forged manifest" "manifest.json.*signature does not verify"
# 3. the override restores it: proof that only the signature stood in the way
rm -rf "$T/out-forged"
ITR --host-key pinned.pem --pseudonymised --trust-unsigned --maildir "$T/out-forged" \
  > r.out 2> err.txt || fail "override: $(cat err.txt)"
grep -q 'trust-unsigned' err.txt || fail "the override was not announced: $(cat err.txt)"
grep -q 'WITHOUT an authentic manifest' r.out || fail "override not reported: $(cat r.out)"
grep -rq 'FORGED' "$T/out-forged" || fail "test set-up: the forgery does not restore at all"
grep -q '"event":"restore.unverified_batch"' "$ITM/it-audit.log" || fail "override not audited"
grep -q '"trust":"unsigned-accepted"' "$ITM/it-audit.log" || fail "override not in restore.start"
# 4. re-signed with another Ed25519 key (the forger's): not pinned
openssl genpkey -algorithm ED25519 -out forger.pem 2>/dev/null
resign() {   # manifest, key: replace signer and signature as mailret would write them
  python3 - "$1" "$2" <<'PY'
import hashlib, re, subprocess, sys
p, key = sys.argv[1:]
s = open(p).read()
der = subprocess.run(['openssl', 'pkey', '-in', key, '-pubout', '-outform', 'DER'],
                     capture_output=True, check=True).stdout
kid = hashlib.sha256(der).hexdigest()[:32]
body = s[:s.rindex(',"ed25519_signature":"')]
body = re.sub(r'"signer":"[0-9a-f]*"$', '"signer":"%s"' % kid, body)
open('tbs', 'wb').write((body + '}').encode())
sig = subprocess.run(['openssl', 'pkeyutl', '-sign', '-rawin', '-inkey', key, '-in', 'tbs'],
                     capture_output=True, check=True).stdout
open(p, 'w').write(body + ',"ed25519_signature":"%s"}\n' % sig.hex())
PY
}
resign "$IB/manifest.json" forger.pem
refused "re-signed by another key" "manifest.json.*not pinned"
# 5. the signature field removed: unsigned
python3 - "$IB/manifest.json" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
open(p, 'w').write(s[:s.rindex(',"ed25519_signature":"')] + '}\n')
PY
refused "unsigned" "manifest.json.*unsigned"
restore_genuine
ITV all --host-key pinned.pem > /dev/null || fail "genuine batch after restoring the files"

# --- the issue's manifest: zeroed signature and another mailbox name
python3 - "$IB/manifest.json" <<'PY'
import re, sys
p = sys.argv[1]; s = open(p).read()
s = s.replace('"mailbox":"INBOX"', '"mailbox":"CEO-private"')
s = re.sub(r'"ed25519_signature":"[0-9a-f]+"', '"ed25519_signature":"' + '0' * 128 + '"', s)
open(p, 'w').write(s)
PY
refused "zeroed signature, changed mailbox" "manifest.json.*signature does not verify"
# and one flipped byte anywhere in the signed body (here in the period)
restore_genuine
sed -i 's/"period_start":"/"period_start":"1/' "$IB/manifest.json"
refused "period changed" "manifest.json"
restore_genuine
# the host refuses them too (a host verify with its own keys)
cp "$B/manifest.json" host.manifest
sed -i 's/"mailbox":"INBOX"/"mailbox":"OTHER"/' "$B/manifest.json"
if M verify all > v.out; then fail "host verify accepted an altered manifest"; fi
grep -q 'manifest.json' v.out || fail "host verify did not name the manifest: $(cat v.out)"
cp host.manifest "$B/manifest.json"

# --- a legacy format-1 manifest (HMAC under the old manifest key)
head -c 32 /dev/urandom > state/manifest.key; chmod 600 state/manifest.key
cp state/manifest.key "$T/legacy.key"
python3 - "$B/manifest.json" state/manifest.key <<'PY'
import hmac, hashlib, re, sys
p, k = sys.argv[1:]
s = open(p).read()
body = s[:s.rindex(',"signer":"')]
body = body.replace('"format":"mailret-batch/2"', '"format":"mailret-batch/1"')
body = re.sub(r',"epoch_certs":\{[^}]*\}', '', body)
mac = hmac.new(open(k, 'rb').read(), (body + '}').encode(), hashlib.sha256).hexdigest()
open(p, 'w').write(body + ',"hmac_sha256":"%s"}\n' % mac)
PY
M verify all > v.out || fail "legacy batch on the host: $(cat v.out)"
grep -q 'legacy-hmac' v.out || fail "legacy batch not flagged: $(cat v.out)"
cp "$B/manifest.json" "$IB/manifest.json"
if ITV all --host-key pinned.pem > v.out; then fail "IT accepted a legacy batch without its key"; fi
grep -q 'legacy' v.out || fail "legacy refusal unclear: $(cat v.out)"
ITV all --host-key pinned.pem --legacy-manifest-key "$T/legacy.key" > v.out ||
  fail "legacy with its key: $(cat v.out)"
sed -i 's/"mailbox":"INBOX"/"mailbox":"INBOY"/' "$IB/manifest.json"
if ITV all --host-key pinned.pem --legacy-manifest-key "$T/legacy.key" > v.out; then
  fail "altered legacy manifest accepted"; fi
# a hold re-writes a legacy manifest as a signed one
M hold "$BID" --reason "case 17" > /dev/null
grep -q '"format":"mailret-batch/2"' "$B/manifest.json" || fail "hold did not re-sign"
M verify all | grep -q 'signed by' || fail "re-signed batch does not verify"
M hold "$BID" --release --reason "case 17" > /dev/null

# --- key rotation: old batches still verify, IT needs the new keyring for new ones
OLDID=$(sed -n 's/.*"signer":"\([0-9a-f]*\)".*/\1/p' "$B/manifest.json")
M keys rotate-signing > rot.out
grep -q 'fingerprint SHA256:' rot.out || fail "rotate: $(cat rot.out)"
[ "$(grep -c 'BEGIN PUBLIC KEY' state/host-keys.pem)" = 2 ] || fail "keyring lost the old key"
if grep -q "$OLDID" <(openssl pkey -in state/signing-key.pem -pubout -outform DER | sha256sum); then
  fail "the signing key did not change"; fi
[ ! -e state/signing-key.pem.old ] || fail "the old private key was left behind"
M keys list | grep -q 'earlier (verify only)' || fail "keys list does not show the old key"
mkmail md2 2
M backup --from-maildir md2 --mailbox INBOX --all > backup2.out
B2=$(cut -f5 backup2.out)
NEWID=$(sed -n 's/.*"signer":"\([0-9a-f]*\)".*/\1/p' "$B2/manifest.json")
[ "$NEWID" != "$OLDID" ] || fail "new batch signed by the old key"
[ "$(M verify all | grep -c $'\tok\t')" = 2 ] || fail "host: both batches must verify"
rm -rf "$ITM/archive" && cp -a archive vault "$ITM/"
if ITV all --host-key pinned.pem > v.out; then fail "new batch accepted with the old keyring"; fi
grep -q 'not pinned' v.out || fail "old keyring: unclear error: $(cat v.out)"
cp state/host-keys.pem "$ITM/pinned2.pem"
[ "$(ITV all --host-key pinned2.pem | grep -c $'\tok\t')" = 2 ] ||
  fail "IT with the new keyring: both batches must verify"

# --- a decompression bomb in a batch the host did sign (a damaged or hostile writer):
# 400 MiB of zeros in one tar entry, gzip -9 (about 400 KB), encrypted to the batch's
# content certificate, the manifest re-signed with the current host key.  Restore must
# stop with a one-line error naming the volume, its peak memory bounded.
CK=$(sed -n 's/.*"epoch_keys":{"content":"\([0-9a-f]*\)".*/\1/p' "$B/manifest.json")
python3 - <<'PY' | gzip -9 > bomb.tgz
import sys, tarfile
class Zeros:
    def __init__(self, n): self.n = n
    def read(self, k=-1):
        k = self.n if k < 0 else min(k, self.n); self.n -= k; return b"\0" * k
ti = tarfile.TarInfo("77-1.eml"); ti.size = 400 << 20; ti.mode = 0o600
with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.USTAR_FORMAT) as t:
    t.addfile(ti, Zeros(ti.size))
PY
openssl cms -encrypt -binary -aes-256-gcm -outform DER -in bomb.tgz \
  -recip "vault/$CK.crt.pem" -out "$B/vol-0001.p7m"
BSIZE=$(stat -c %s "$B/vol-0001.p7m")
[ "$BSIZE" -lt 1000000 ] || fail "test set-up: the bomb is $BSIZE bytes"
python3 - "$B/manifest.json" "$(sha256sum < "$B/vol-0001.p7m" | cut -c1-64)" "$BSIZE" <<'PY'
import re, sys
p, sha, size = sys.argv[1:]
s = open(p).read()
s = re.sub(r'"name":"vol-0001.p7m","size":\d+,"sha256":"[0-9a-f]+"',
           '"name":"vol-0001.p7m","size":%s,"sha256":"%s"' % (size, sha), s)
open(p, 'w').write(s)
PY
resign "$B/manifest.json" state/signing-key.pem
M verify "$BID" > v.out || fail "test set-up: the re-signed bomb batch does not verify: $(cat v.out)"
peak_kb() {   # run a command, print its peak RSS in KiB (getrusage of the child)
  python3 - "$@" <<'PY'
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=open("err.txt", "w"))
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)
PY
}
# Under the sanitiser build, freed memory sits in ASan's quarantine (the IT key's 600,000
# PBKDF2 rounds alone fill it): measured without it, what counts is what mailret holds.
read -r KB RC < <(ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=0" peak_kb \
  "$MAILRET_BIN" -c "$T/mailret.conf" restore --reason "bomb test" \
  --it-key it.key --it-passphrase-file it.pass --pseudonymised --batch "$BID" \
  --maildir "$T/out-bomb")
[ "$RC" != 0 ] || fail "the bomb was restored"
grep -q 'vol-0001.p7m decompresses to more than .* decompression bomb' err.txt ||
  fail "bomb: unclear error: $(cat err.txt)"
[ "$(grep -c '^mailret restore:' err.txt)" = 1 ] || fail "bomb: not one line: $(cat err.txt)"
# The cap here is 128 x ~400 KB = ~50 MiB of plaintext; the whole 400 MiB would be held
# before.  200 MiB leaves room for the sanitiser build's own overhead (~100 MB measured).
[ "$KB" -lt $((200 * 1024)) ] || fail "bomb: restore peaked at $KB KiB"
echo "bomb: refused, peak RSS $KB KiB"
if M verify "$BID" --deep --it-key it.key --it-passphrase-file it.pass > v.out; then
  fail "verify --deep accepted the bomb"; fi
grep -q 'decompression bomb' v.out || fail "verify --deep: $(cat v.out)"

# --- an unverifiable batch past expiry: check says so, expire shreds its keys
sed -i 's/"mailbox":"INBOX"/"mailbox":"XNBOX"/' "$B2/manifest.json"
LATER=2040-01-01
M check --offline --at "$LATER" --json > check.json || true
python3 - check.json "$(basename "$B2" | cut -c9-)" <<'PY' || fail "check: $(cat check.json)"
import json, sys
r = json.load(open(sys.argv[1]))
b = [x for x in r["batches"] if x["batch_id"] == sys.argv[2]]
assert b, "batch not reported"
b = b[0]
assert b["status"] == "UNVERIFIABLE", b
assert "will shred" in b["detail"], b
PY
M check --offline > check.now || true
grep -q 'UNVERIFIABLE' check.now || fail "check today: $(cat check.now)"
if grep -q 'will shred' check.now; then fail "check says a batch not yet due will be shredded"; fi
C2=$(sed -n 's/.*"epoch_keys":{"content":"\([0-9a-f]*\)".*/\1/p' "$B2/manifest.json")
M expire > exp.now || fail "expire today must not fail on a batch not yet due: $(cat exp.now)"
[ -f "vault/$C2.key.p7m" ] || fail "expire shredded an unverifiable batch before its time"
M expire --at "$LATER" > exp.out || fail "expire: $(cat exp.out)"
[ ! -e "vault/$C2.key.p7m" ] || fail "the unverifiable batch's key survived expire"
grep -q 'manifest not authentic' exp.out || fail "expire did not say why: $(cat exp.out)"
grep -q '"manifest_verified":false' "$B2/expired.json" || fail "tombstone does not say so"
M check --offline --at "$LATER" > check.out || true
grep "$(basename "$B2" | cut -c9-)" check.out | grep -q 'not authentic' ||
  fail "check after expire: $(cat check.out)"


# --- a host set up before signing (keys, but no signing key): told what to run, and
# `keys rotate-signing` creates the key; the keyring keeps every earlier key
rm -f state/signing-key.pem
if M backup --from-maildir md2 --mailbox INBOX --all > /dev/null 2> err.txt; then
  fail "backup without a signing key"; fi
grep -q 'keys rotate-signing' err.txt || fail "no signing key: unclear error: $(cat err.txt)"
NK=$(grep -c 'BEGIN PUBLIC KEY' state/host-keys.pem)
M keys rotate-signing > rot2.out || fail "rotate-signing without a key: $(cat rot2.out)"
[ "$(grep -c 'BEGIN PUBLIC KEY' state/host-keys.pem)" = $((NK + 1)) ] || fail "keyring after creating"
M backup --from-maildir md2 --mailbox INBOX --all > /dev/null 2>&1 || fail "backup after creating the key"
echo "archive_trust: ok"
