#!/bin/bash
# audit_anchor.sh — the audit log cannot be rewritten silently:
#   * every append sends the new head ("audit head seq=N hash=H") to syslog at notice
#     priority (here a test socket named by MAILRET_SYSLOG_SOCKET), equal to the head file;
#   * every signed manifest carries the audit head at the time it was signed;
#   * `audit verify --anchor` accepts the intact log against a manifest, the head file, a
#     journal line and SEQ:HASH;
#   * the rewrite experiment: records removed, chain and head recomputed — plain
#     `audit verify` says intact (which is the weakness), `--anchor <manifest>` and
#     `--anchor <journal>` say it was rewritten; records cut off after the manifest are
#     caught by the journal's newer head.
source "$(dirname "$0")/offline_lib.sh"
LPID=
trap '[ -z "$LPID" ] || kill "$LPID" 2>/dev/null; rm -rf "$T"' EXIT

# The "journal": a datagram socket whose messages are appended to journal.txt.
python3 - "$T/syslog.sock" "$T/journal.txt" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536) + b"\n")
PY
LPID=$!
for _ in $(seq 1 50); do [ -S syslog.sock ] && break; sleep 0.1; done
[ -S syslog.sock ] || fail "test syslog socket did not come up"
export MAILRET_SYSLOG_SOCKET="$T/syslog.sock"

offline_host "[retention]" "years = 1"
mkdir -p md/cur md/new md/tmp
for i in 1 2 3; do
  printf 'From: a@example.com\r\nSubject: %d\r\nMessage-ID: <a-%d@example.com>\r\n\r\nBody\r\n' "$i" "$i" \
    > "md/cur/1700000$i.M$i.host:2,S"
done
M backup --from-maildir md --mailbox INBOX --all > backup.out
MAN="$(cut -f5 backup.out)/manifest.json"
printf 'b@example.com\n' | M erase --email > /dev/null      # more records after the manifest
# The listener may lag behind on a busy host: wait until it has written every datagram
# (one per record, so a missing head still fails below), at most 30 s.
for _ in $(seq 1 300); do
  [ "$(grep -c 'audit head seq=' journal.txt)" -ge "$(wc -l < state/audit.log)" ] && break
  sleep 0.1
done

# --- the head reaches syslog on every append -------------------------------------------
N=$(wc -l < state/audit.log)
[ "$(grep -c 'audit head seq=' journal.txt)" = "$N" ] || fail "journal has $(grep -c 'audit head seq=' journal.txt) heads for $N records"
grep -q '^<13>mailret\[[0-9]*\]: audit head seq=' journal.txt || fail "not at notice priority: $(head -1 journal.txt)"
LAST=$(tail -1 journal.txt | sed -n 's/.*seq=\([0-9]*\) hash=\([0-9a-f]*\).*/\1:\2/p')
HEAD=$(python3 -c 'import json,sys; h=json.load(open(sys.argv[1])); print("%d:%s" % (h["seq"], h["hash"]))' state/audit.log.head)
[ "$LAST" = "$HEAD" ] || fail "journal head $LAST != head file $HEAD"
# the manifest's head is a record the log holds, before the end
python3 - "$MAN" state/audit.log <<'PY' || fail "manifest audit head"
import hashlib, json, sys
m = json.loads(open(sys.argv[1]).read().split(',"ed25519_signature"')[0] + "}")
a = m["audit"]; lines = open(sys.argv[2], "rb").read().split(b"\n")[:-1]
assert 1 <= a["seq"] < len(lines), a
assert hashlib.sha256(lines[a["seq"] - 1]).hexdigest() == a["head"], a
PY

# --- intact: every kind of anchor is accepted ---------------------------------------------
M audit verify --anchor "$MAN" > v.out || fail "intact log against the manifest: $(cat v.out)"
grep -q 'matches the anchor' v.out || fail "verify output: $(cat v.out)"
M audit verify --anchor state/audit.log.head > /dev/null || fail "intact log against its head file"
M audit verify --anchor journal.txt > /dev/null || fail "intact log against the journal"
M audit verify --anchor "$HEAD" > /dev/null || fail "intact log against SEQ:HASH"
cp state/audit.log.head head.saved

# --- the rewrite experiment -------------------------------------------------------------
cp state/audit.log audit.orig
rewrite() {   # python slice of records to keep, e.g. "lines[:1] + lines[3:]"
  python3 - state/audit.log "$1" <<'PY'
import hashlib, json, sys
path = sys.argv[1]
lines = [json.loads(l) for l in open(path, encoding="utf-8").read().splitlines()]
lines = eval(sys.argv[2])
prev, out = "0" * 64, []
for i, r in enumerate(lines, 1):
    r["seq"] = i
    r["prev"] = prev
    # keep "prev" last, as mailret writes it
    r = {k: v for k, v in r.items() if k != "prev"} | {"prev": prev}
    b = json.dumps(r, separators=(",", ":"), ensure_ascii=True).encode()
    out.append(b)
    prev = hashlib.sha256(b).hexdigest()
data = b"\n".join(out) + b"\n"
open(path, "wb").write(data)
open(path + ".head", "w").write('{"seq":%d,"hash":"%s","size":%d}\n' % (len(out), prev, len(data)))
PY
}
rewrite "lines[:1] + lines[3:]"          # two early records removed, all re-chained
M audit verify > v.out || fail "control: the re-chained log should look intact to plain verify"
if M audit verify --anchor "$MAN" > v.out 2> err.txt; then fail "rewrite not caught by the manifest anchor"; fi
grep -q 'rewritten\|removed' err.txt || fail "unclear error: $(cat err.txt)"
if M audit verify --anchor journal.txt > /dev/null 2> err.txt; then fail "rewrite not caught by the journal"; fi
if M audit verify --anchor head.saved > /dev/null 2>&1; then fail "rewrite not caught by the old head"; fi

cp audit.orig state/audit.log
rewrite "lines[:-2]"                     # the last two records cut off, head recomputed
M audit verify > /dev/null || fail "control: cut log should look intact to plain verify"
M audit verify --anchor "$MAN" > /dev/null || fail "records after the manifest are not its business"
if M audit verify --anchor journal.txt > /dev/null 2> err.txt; then fail "cut not caught by the journal"; fi
grep -q 'records removed' err.txt || fail "unclear error: $(cat err.txt)"

# --- a manifest anchor must be authentic -------------------------------------------------
cp audit.orig state/audit.log; cp head.saved state/audit.log.head
sed -i 's/"audit":{"seq":[0-9]*/"audit":{"seq":1/' "$MAN"
if M audit verify --anchor "$MAN" > /dev/null 2> err.txt; then fail "an altered manifest was used as an anchor"; fi
grep -q 'manifest' err.txt || fail "unclear error: $(cat err.txt)"
echo "PASS audit_anchor"
