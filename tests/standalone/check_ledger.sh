#!/bin/bash
# check_ledger.sh — `mailret check` reports an erasure ledger that does not verify on the
# host as a violation (exit 2; text, --json and --nagios), with a one-line reason that
# names no person: an entry removed, two swapped and renumbered, a signature altered, a
# signer that is not pinned, the ledger cut back below what the newest manifest anchors
# (a valid chain on its own), deleted after a manifest anchored entries, unreadable, not a
# ledger, and in the old plaintext format.  Controls: no ledger before any run is
# "absent", an intact ledger (also one ahead of the newest manifest) is "ok", and putting
# the intact one back clears the violation.
source "$(dirname "$0")/offline_lib.sh"
offline_host "[retention]" "years = 1"
L=state/erasure.ledger
NOW=$(date +%s)

mkmail() {   # dir n from
  mkdir -p "$1/cur" "$1/new" "$1/tmp"
  for i in $(seq 1 "$2"); do
    f="$1/cur/$((NOW - 40 * 86400 + i)).M$i${3%% *}.host:2,S"
    printf 'From: %s\r\nTo: post@fund.example.dk\r\nSubject: Sag %d\r\nMessage-ID: <c-%d-%s-%s@example.com>\r\n\r\nBody %d\r\n' \
      "$3" "$i" "$i" "$1" "${3%% *}" "$i" > "$f"
    touch -d "@$((NOW - 40 * 86400 + i * 3600))" "$f"
  done
}

# check_as NAME: the three reports into NAME.{out,json,nagios}, exit statuses in RC_*.
check_as() {
  set +e
  M check --offline > "$1.out" 2> "$1.err"; RC_TEXT=$?
  M check --offline --json > "$1.json" 2>> "$1.err"; RC_JSON=$?
  M check --offline --nagios > "$1.nagios" 2>> "$1.err"; RC_NAGIOS=$?
  set -e
}
ledger_field() {   # file python-expression-on-j
  python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
perf() { sed -n 's/.*| //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=\([0-9]*\);.*/\1/p"; }

# --- no ledger yet: nothing anchors one, nothing to report ------------------------------
[ ! -e "$L" ] || fail "init-host made a ledger"
check_as none
[ "$RC_TEXT" = 0 ] || fail "no ledger yet: exit $RC_TEXT: $(cat none.out none.err)"
grep -q '^erasure ledger: absent' none.out || fail "no ledger yet: $(cat none.out)"
[ "$(ledger_field none.json 'j["erasure_ledger"]["status"]')" = absent ] || fail "json: $(cat none.json)"

# --- an intact ledger, anchored by two batches, one entry ahead of the newest -------------
mkmail md 3 'Karen <karen@example.com>'
mkmail md 2 'Ole <ole@example.net>'
M backup --from-maildir md --mailbox INBOX --all > backup1.out || fail "backup 1"
printf 'karen@example.com\n' | M erase --email > /dev/null || fail "erase 1"
printf 'ole@example.net\n' | M erase --email > /dev/null || fail "erase 2"
mkmail md2 2 'Bo <bo@example.org>'
M backup --from-maildir md2 --mailbox INBOX --all > backup2.out || fail "backup 2"
grep -q '"erasure_ledger":{"count":2,' "$(cut -f5 backup2.out)/manifest.json" ||
  fail "the newest manifest does not anchor 2 entries"
printf '0101901234\n' | M erase --cpr > /dev/null || fail "erase 3"
[ "$(wc -l < "$L")" = 4 ] || fail "ledger lines: $(wc -l < "$L")"
cp "$L" good.ledger

check_as good
[ "$RC_TEXT" = 0 ] && [ "$RC_JSON" = 0 ] && [ "$RC_NAGIOS" = 0 ] ||
  fail "intact ledger: exit $RC_TEXT/$RC_JSON/$RC_NAGIOS: $(cat good.out good.err)"
grep -q '^erasure ledger: ok (3 entries, consistent with 2 signed manifest(s))$' good.out ||
  fail "intact ledger text: $(cat good.out)"
[ "$(ledger_field good.json '(j["erasure_ledger"]["status"], j["erasure_ledger"]["entries"], j["erasure_ledger"]["anchors"], j["result"])')" = \
  "('ok', 3, 2, 'ok')" ] || fail "intact ledger json: $(cat good.json)"
grep -q '^MAILRET OK - ' good.nagios && [ "$(perf good.nagios ledger_broken)" = 0 ] ||
  fail "intact ledger nagios: $(cat good.nagios)"

# --- every way the ledger fails its own check --------------------------------------------
# broken NAME REASON-PATTERN: the ledger as it is now is reported, everywhere, as a
# violation naming REASON; then the intact ledger goes back.
broken() {
  check_as "$1"
  [ "$RC_TEXT" = 2 ] || fail "$1: check exit $RC_TEXT (want 2): $(cat "$1.out" "$1.err")"
  [ "$RC_JSON" = 2 ] || fail "$1: check --json exit $RC_JSON (want 2)"
  [ "$RC_NAGIOS" = 2 ] || fail "$1: check --nagios exit $RC_NAGIOS (want 2 CRITICAL)"
  [ "$(grep -c '^erasure ledger: ' "$1.out")" = 1 ] || fail "$1: text: $(cat "$1.out")"
  grep '^erasure ledger: ' "$1.out" | grep -q "^erasure ledger: BROKEN: .*$2" ||
    fail "$1: text reason: $(grep '^erasure ledger' "$1.out")"
  grep -q '^result: violation (0 warning(s), 1 violation(s))$' "$1.out" ||
    fail "$1: not counted: $(tail -1 "$1.out")"
  python3 - "$1.json" "$2" <<'PY' || fail "$1: json: $(cat "$1.json")"
import json, re, sys
j = json.load(open(sys.argv[1]))
e = j["erasure_ledger"]
assert e["status"] == "BROKEN" and j["result"] == "violation" and j["violations"] == 1, j
assert re.search(sys.argv[2], e["detail"]) and "\n" not in e["detail"], e
PY
  grep -q '^MAILRET CRITICAL - 1 violation(s), 0 warning(s): erasure ledger BROKEN |' "$1.nagios" &&
    [ "$(perf "$1.nagios" ledger_broken)" = 1 ] || fail "$1: nagios: $(cat "$1.nagios")"
  for f in "$1.out" "$1.err" "$1.json" "$1.nagios"; do
    ! grep -qiE 'karen|ole@|bo@example|0101901234|010190-1234' "$f" || fail "$1: a person in $f"
  done
  rm -rf "$L"
  cp good.ledger "$L"
}

sed '3d' good.ledger > "$L"                                     # entry 2 removed
broken removed 'removed or reordered'
{ sed -n '1,2p' good.ledger; sed -n '4p' good.ledger | sed 's/^3 /2 /'
  sed -n '3p' good.ledger | sed 's/^2 /3 /'; } > "$L"           # swapped, renumbered
broken swapped 'chain does not match'
awk 'NR == 3 { s = $5; c = substr(s, 1, 1); $5 = (c == "0" ? "1" : "0") substr(s, 2) } 1' \
  good.ledger > "$L"                                            # signature altered
broken signature 'signature does not verify'
awk 'NR == 3 { $2 = "0123456789abcdef0123456789abcdef" } 1' good.ledger > "$L"
broken signer 'not pinned'
sed -n '1,2p' good.ledger > "$L"                                # cut back to 1 of 2 anchored
broken truncated 'checked against batch .*removed from the end'
head -1 good.ledger > "$L"                                      # cut back to nothing
broken emptied 'removed from the end'
rm "$L"                                                         # deleted
broken deleted 'missing, but batch .* anchored 2 entries'
rm "$L"; mkdir "$L"                                              # unreadable
broken unreadable 'cannot read'
printf 'this is not a ledger\n' > "$L"
broken garbage 'not a mailret ledger'
printf 'email:%s\n' "$(openssl rand -hex 20)" > "$L"            # the old plaintext format
broken plaintext 'old plaintext format'

# --- a ledger cut back only to the newest anchor is a valid one: still ok -----------------
sed -n '1,3p' good.ledger > "$L"
check_as anchored
[ "$RC_TEXT" = 0 ] && grep -q '^erasure ledger: ok (2 entries' anchored.out ||
  fail "ledger at the newest anchor: exit $RC_TEXT: $(cat anchored.out)"

# --- the intact ledger back: no violation ------------------------------------------------
cp good.ledger "$L"
check_as restored
[ "$RC_TEXT" = 0 ] && grep -q '^erasure ledger: ok (3 entries' restored.out ||
  fail "intact ledger again: exit $RC_TEXT: $(cat restored.out)"
echo "PASS check_ledger"
