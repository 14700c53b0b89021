#!/bin/bash
# purge_units.sh — the scheduling pieces in scripts/: the purge timer fires at 02:00 on
# the 1st in Copenhagen (01:00 UTC in winter, 00:00 UTC in summer) and catches up after
# downtime (Persistent=true); ingest every 5 minutes; the daily check's failure is visible
# (OnFailure=, and the unit fails on exit 1/2); the units parse (systemd-analyze verify,
# with the binary under test in place of /usr/bin/mailret); the cron file has the same
# schedule.  Needs no IMAP server.
set -euo pipefail
: "${MAILRET_SOURCE_DIR:?}" "${MAILRET_BIN:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
U="$MAILRET_SOURCE_DIR/scripts/systemd"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT

grep -qx 'OnCalendar=\*-\*-01 02:00:00 Europe/Copenhagen' "$U/mailret-purge@.timer" || fail "purge calendar"
grep -qx 'Persistent=true' "$U/mailret-purge@.timer" || fail "purge timer not persistent"
grep -qx 'OnUnitInactiveSec=5min' "$U/mailret-ingest@.timer" || fail "ingest interval"
grep -q '^OnFailure=mailret-alert@%n.service' "$U/mailret-check@.service" || fail "check OnFailure"
grep -q '^OnFailure=mailret-alert@%n.service' "$U/mailret-purge@.service" || fail "purge OnFailure"
! grep -q '^SuccessExitStatus' "$U/mailret-check@.service" || fail "check exit 1/2 must fail the unit"
if command -v systemd-analyze > /dev/null; then
    out=$(systemd-analyze calendar --iterations=7 '*-*-01 02:00:00 Europe/Copenhagen' 2>&1) ||
        fail "calendar: $out"
    echo "$out" | grep -E 'Next elapse|Iter' | grep -q '01:00:00 UTC' || fail "winter 02:00 CET is not 01:00 UTC: $out"
    mkdir -p "$T/units"
    for f in "$U"/*; do
        sed -e "s#/usr/bin/mailret#$MAILRET_BIN#" -e '/^User=/d' -e '/^Group=/d' \
            -e 's#^OnFailure=.*##' "$f" > "$T/units/$(basename "$f")"
    done
    if ! v=$(cd "$T/units" && systemd-analyze verify --man=no ./*.timer ./mailret-check@.service \
                 ./mailret-purge@.service ./mailret-ingest@.service ./mailret-expire@.service 2>&1); then
        echo "$v" | grep -v -e 'Failed to .*bus' -e 'System has not been booted' -e '^$' | \
            grep -q . && fail "systemd-analyze verify: $v"
    fi
else
    echo "SKIP systemd-analyze (not installed)"
fi
C="$MAILRET_SOURCE_DIR/scripts/cron/mailret"
grep -qx 'CRON_TZ=Europe/Copenhagen' "$C" || fail "cron zone"
grep -Eq '^0 2 1 \* \* +mailret +/usr/bin/mailret purge' "$C" || fail "cron purge line"
grep -Eq '^\*/5 \* \* \* \* +mailret +/usr/bin/mailret -q ingest' "$C" || fail "cron ingest line"
grep -Eq 'mailret check .*\|\| logger -p user.alert' "$C" || fail "cron check alert"
echo "PASS purge_units"
