#!/bin/bash
# keys_owner.sh — no key without an owner: a kill at every point inside epoch-key
# creation (MAILRET_TEST_CRASH_AT, common/crashpoint.h: after the metadata, after the
# certificate, after the sealed key, and inside the durable write of each file before its
# rename) leaves only files whose metadata names the batch; `check` reports a vault key
# that belongs to no batch or tombstone as a violation and a leftover temporary file as a
# warning; the next backup removes temporary files of dead writers (and no live one's).
# (The purge's discard of such a batch is tests/integration/purge_kill9.sh.)
source "$(dirname "$0")/offline_lib.sh"
offline_host
mkdir -p md/cur md/new md/tmp
printf 'Subject: one\r\n\r\nbody\r\n' > "md/cur/1700000001.M1.host:2,S"
status_rows() { M check --offline --json > check.json || true
  python3 -c 'import json,sys; [print(b["mailbox"], b["status"], b["batch_id"], b["detail"]) for b in json.load(open("check.json"))["batches"]]'; }

# Every kill point inside key creation: whatever is left names its batch.
for step in epoch-after-meta epoch-after-cert epoch-after-key \
            'durable-before-rename:*.json' 'durable-before-rename:*.crt.pem' \
            'durable-before-rename:*.key.p7m'; do
  rm -rf archive vault
  rc=0; MAILRET_TEST_CRASH_AT=$step M backup --from-maildir md --mailbox INBOX --all \
          > /dev/null 2>&1 || rc=$?
  [ $rc = 137 ] || fail "$step: backup was not killed (exit $rc)"
  for f in vault/*; do
    case $f in
      *.tmp.*) continue ;;
    esac
    id=$(basename "$f" | cut -c1-32)
    [ -f "vault/$id.json" ] || fail "$step: $f has no metadata naming its batch"
    grep -q '"batch":"[0-9]\{8\}T[0-9]\{6\}Z-[0-9a-f]\{8\}"' "vault/$id.json" ||
      fail "$step: metadata names no batch"
  done
  # the interrupted batch's directory exists: its keys are owned, the batch is incomplete
  status_rows > rows.txt
  grep -q '^INBOX incomplete' rows.txt || fail "$step: no incomplete batch: $(cat rows.txt)"
  if grep -q 'orphan-key' rows.txt; then fail "$step: keys of a live batch called orphans"; fi
  case $step in
    durable-before-rename:*)
      grep -q 'stale-temp' rows.txt || fail "$step: the temporary file is not reported" ;;
  esac
  echo "ok $step: $(ls vault | tr '\n' ' ')"
done

# Without its batch directory (deleted by hand) the key is an orphan: a violation.
rm -rf archive
rc=0; M check --offline > check.out || rc=$?
[ $rc = 2 ] || fail "orphan key: check exit $rc: $(cat check.out)"
grep -q 'orphan-key' check.out || fail "orphan key not reported: $(cat check.out)"
# A key file without any metadata (the order of earlier versions) is one too.
rm -rf vault && mkdir -p vault
head -c 100 /dev/urandom > "vault/0123456789abcdef0123456789abcdef.key.p7m"
rc=0; M check --offline > check.out || rc=$?
[ $rc = 2 ] && grep -q 'orphan-key.*no metadata' check.out ||
  fail "a key without metadata: $(cat check.out)"
rm -f vault/0123456789abcdef0123456789abcdef.key.p7m

# The next run removes temporary files of dead writers, not those of a live one.
sleep 30 & live=$!
printf 'x' > "vault/abc.key.p7m.tmp.999999.0"        # no such process
printf 'x' > "state/journal.tmp.999998.3"
printf 'x' > "vault/def.json.tmp.$live.0"             # a live process's
M backup --from-maildir md --mailbox INBOX --all > /dev/null 2>&1 || fail "backup"
[ ! -e vault/abc.key.p7m.tmp.999999.0 ] || fail "stale vault temp file left"
[ ! -e state/journal.tmp.999998.3 ] || fail "stale state temp file left"
[ -e "vault/def.json.tmp.$live.0" ] || fail "a live writer's temp file was removed"
kill "$live" 2>/dev/null || true
wait "$live" 2>/dev/null || true
rm -f "vault/def.json.tmp.$live.0"
status_rows > rows.txt
grep -q '^INBOX ok' rows.txt || fail "after a clean backup: $(cat rows.txt)"
if grep -q 'orphan-key\|stale-temp' rows.txt; then fail "after the sweep: $(cat rows.txt)"; fi
echo "keys_owner: ok"
