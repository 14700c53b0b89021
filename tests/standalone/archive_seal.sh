#!/bin/bash
# archive_seal.sh — sealed parts through the mailret binary: tests/tools/seal_corpus.py's
# adversarial messages (PDF, octet-stream, winmail.dat, S/MIME signature, UTF-16/32,
# uuencode, no transfer encoding, nested message/rfc822, images, encoded multipart) are
# archived with `backup --from-maildir`; the full restore must be byte-exact; `restore
# --pseudonymised` is decoded part by part by tests/tools/seal_check.py (Python's email
# package) against the full restore: no planted value in any part, every placeholder
# with the original's type, size and SHA-256; index.jsonl (read with openssl and tar
# alone) counts the sealed parts; with `keep = image/*` the images stay in clear.
set -euo pipefail

: "${MAILRET_BIN:?}"
: "${MAILRET_SOURCE_DIR:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/archive-seal.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
sha_list() { (cd "$1" && find . -type f ! -name dovecot-keywords -exec sha256sum {} + | awk '{print $1}' | sort); }

umask 077
printf 'it passphrase 123\n' > it.pass
"$MAILRET_BIN" keys init-it --key it.key --cert it.crt --passphrase-file it.pass >/dev/null
mkdir -p state host
printf 'x\n' > imap.password

python3 "$MAILRET_SOURCE_DIR/tests/tools/seal_corpus.py" corpus
mkdir -p md/cur md/new md/tmp
i=0
for f in corpus/*.eml; do
  i=$((i + 1))
  cp "$f" "md/cur/17000000$i.M$i.host:2,S"
  touch -d "@$((1790000000 + i * 3600))" "md/cur/17000000$i.M$i.host:2,S"
done

conf() {   # $1: name, $2: extra [pseudonymisation] lines
  cat > "$1.conf" <<CONF
[imap]
host = imap.invalid
user = mailret
password_file = $T/imap.password
[mailboxes]
mailbox = INBOX
[members]
own_domains = fund.example
[archive]
dir = $T/archive-$1
[keys]
vault_dir = $T/vault
it_cert = $T/host/it.crt
pseudonym_key_file = $T/host/pseudonym.key
manifest_key_file = $T/host/manifest.key
[pseudonymisation]
$2
[state]
dir = $T/state
[audit]
log = $T/state/audit.log
CONF
}
conf seal ""
conf keep "keep = image/*"
"$MAILRET_BIN" -c seal.conf keys init-host --it-cert it.crt >/dev/null

# Pair the two restores' files by name without the restoring process's id.
pair() {   # $1 maildir, $2 out dir
  mkdir -p "$2"
  for f in "$1"/cur/*; do cp "$f" "$2/$(basename "$f" | sed 's/P[0-9]*\././').eml"; done
}

run() {   # $1 config name, $2 expected sealed parts
  local M=("$MAILRET_BIN" -c "$T/$1.conf")
  "${M[@]}" backup --from-maildir md --mailbox INBOX --all > "$1.out"
  grep -q $'\t11 messages\t' "$1.out" || fail "$1: backup: $(cat "$1.out")"
  grep -q $'\t'"$2 sealed parts in " "$1.out" || fail "$1: sealed count: $(cat "$1.out")"
  local dir
  dir=$(cut -f5 "$1.out")
  "${M[@]}" restore --reason test --it-key it.key --it-passphrase-file it.pass \
    --maildir "$1-full" > /dev/null
  [ "$(sha_list md)" = "$(sha_list "$1-full")" ] || fail "$1: full restore is not byte-exact"
  "${M[@]}" restore --reason test --it-key it.key --it-passphrase-file it.pass \
    --pseudonymised --maildir "$1-pseudo" > /dev/null
  pair "$1-full" "$1-o"
  pair "$1-pseudo" "$1-p"
  [ "$(ls "$1-o" | wc -l)" = 11 ] && [ "$(ls "$1-p" | wc -l)" = 11 ] || fail "$1: pairing"
  # index.jsonl through stock tools: the per-message counts add up.
  local keyid
  keyid=$(sed -n 's/.*"epoch_keys":{"content":"\([0-9a-f]*\)".*/\1/p' "$dir/manifest.json")
  openssl cms -decrypt -inform DER -in "vault/$keyid.key.p7m" -inkey it.key \
    -passin "file:$T/it.pass" -out "$1-epoch.pem"
  mkdir "$1-stock"
  for v in "$dir"/vol-*.p7m; do
    openssl cms -decrypt -inform DER -binary -inkey "$1-epoch.pem" -in "$v" | tar xzf - -C "$1-stock"
  done
  local sum
  sum=$(python3 -c 'import json,sys; print(sum(json.loads(l)["sealed"] for l in open(sys.argv[1])))' \
        "$1-stock/index.jsonl")
  [ "$sum" = "$2" ] || fail "$1: index.jsonl counts $sum sealed parts, expected $2"
}

run seal 18
python3 "$MAILRET_SOURCE_DIR/tests/tools/seal_check.py" seal-o seal-p \
  --planted-any corpus/planted.json --expect-sealed 18 || fail "seal: seal_check"
# No planted value anywhere on the host in clear (the sealed bodies are in reid volumes).
for needle in 0102031234 010203-1234 'Mette Hansen' mette.hansen@example.dk \
              'Signe Gormsen' signe.gormsen@example.dk; do
  if grep -rqaF "$needle" archive-seal vault state host; then fail "found $needle on disk"; fi
done

run keep 15
# The PNG of 08-image.eml is kept: its base64 body is in the pseudonymised restore.
png=$(python3 - "$T/corpus/08-image.eml" <<'PY'
import email, sys
m = email.message_from_bytes(open(sys.argv[1], "rb").read())
for p in m.walk():
    if p.get_content_type() == "image/png":
        print(p.get_payload().split()[0])
PY
)
[ -n "$png" ] || fail "keep: no PNG in the test message"
grep -rqF "$png" keep-p || fail "keep: the PNG was not kept"
grep -rqF "$png" seal-p && fail "seal: the PNG was not sealed"
grep -rqF 'X-Mailret-Sealed: type=application/pdf' keep-p || fail "keep: the PDF was not sealed"
echo "archive_seal: ok"
