#!/bin/bash
# purge_kill9.sh — kill -9 at every step of a purge, then re-run: no message lost, none
# archived twice.  Crash points (MAILRET_TEST_CRASH_AT, purge/crash.c, SIGKILL at exactly
# that step): during the fetch, with all messages journalled before the archive is
# closed, after the manifest is written but before the journal says "verified", after
# "verified", between UID STORE and UID EXPUNGE, after EXPUNGE before "done"; inside
# epoch-key creation (after its metadata, after its certificate, and inside the durable
# write of the sealed key before its rename); plus a real kill -9 from outside while the
# volumes are being written.
# After each kill: every original message is on the server or in a verified batch (or
# both).  After the re-run: server + archive == original exactly (SHA-256 multisets),
# one batch with a manifest, no unfinished batch directory, no orphan epoch key (no key
# file of any kind beyond the batch's two keys) and no temporary file left anywhere.
source "$(dirname "$0")/purge_lib.sh"

# Original messages all present on the server or in a verified batch (set inclusion).
check_nothing_lost() {
    server_shas > "$T/k-server.sha"
    archived_shas > "$T/k-archive.sha" || fail "$1: restore failed"
    sort -u "$T/k-server.sha" "$T/k-archive.sha" > "$T/k-union.sha"
    missing=$(sort -u "$T/original.sha" | comm -23 - "$T/k-union.sha" | wc -l)
    [ "$missing" = 0 ] || fail "$1: $missing message(s) neither on the server nor archived"
}

check_final() {
    check_invariant "$1 after re-run"
    local batches dirs keys
    batches=$(find "$T/archive" -name manifest.json | wc -l)
    dirs=$(find "$T/archive" -mindepth 2 -maxdepth 2 -type d | wc -l)
    keys=$(find "$T/vault" -name '*.key.p7m' | wc -l)
    [ "$batches" = 1 ] || fail "$1: $batches batches (archived twice?)"
    [ "$dirs" = 1 ] || fail "$1: $dirs batch directories (unfinished one left)"
    [ "$keys" = 2 ] || fail "$1: $keys sealed epoch keys in the vault (want 2)"
    [ "$(find "$T/vault" -name '*.crt.pem' | wc -l)" = 2 ] || fail "$1: stray epoch certificates"
    [ "$(find "$T/vault" -name '????????????????????????????????.json' | wc -l)" = 2 ] ||
        fail "$1: stray epoch key metadata"
    [ -z "$(find "$T/vault" "$T/state" "$T/archive" -name '*.tmp.*')" ] ||
        fail "$1: temporary files left: $(find "$T/vault" "$T/state" "$T/archive" -name '*.tmp.*')"
    mailret check --offline > /dev/null 2>&1 || fail "$1: check not green after re-run"
}

n=0
for step in mid-fetch epoch-after-meta epoch-after-cert 'durable-before-rename:*.key.p7m' \
            before-close after-close after-verified after-store after-expunge; do
    setup "k$n" 40 "purge-kill-$n"
    n=$((n + 1))
    set +e
    MAILRET_TEST_CRASH_AT=$step mailret purge > "$T/crash.out" 2> "$T/crash.log"
    rc=$?
    set -e
    [ "$rc" = 137 ] || fail "$step: purge was not killed (exit $rc): $(tail -2 "$T/crash.log")"
    check_nothing_lost "$step"
    if [ "$step" = after-store ]; then
        # ...and once more inside the resumed batch, between its STORE and EXPUNGE.
        set +e
        MAILRET_TEST_CRASH_AT=resume-after-store mailret purge > "$T/crash.out" 2> "$T/crash.log"
        rc=$?
        set -e
        [ "$rc" = 137 ] || fail "resume-after-store: not killed (exit $rc)"
        check_nothing_lost "resume-after-store"
    fi
    mailret purge --json > "$T/rerun.json" 2> "$T/rerun.log" || fail "$step: re-run: $(tail -3 "$T/rerun.log")"
    resumed=$(json_field "$T/rerun.json" 'j["mailboxes"][0]["resumed_batches"]')
    discarded=$(json_field "$T/rerun.json" 'j["mailboxes"][0]["discarded_batches"]')
    new=$(json_field "$T/rerun.json" 'j["mailboxes"][0]["archived"]')
    case $step in
        mid-fetch|before-close|epoch-*|durable-*)
            [ "$discarded" = 1 ] && [ "$new" -gt 0 ] || fail "$step: want discard + new batch, got discarded=$discarded new=$new" ;;
        *)
            [ "$resumed" = 1 ] && [ "$new" = 0 ] || fail "$step: want resume without re-archiving, got resumed=$resumed new=$new" ;;
    esac
    check_final "$step"
    echo "ok $step (resumed=$resumed discarded=$discarded new=$new)"
    # A fresh host (IT's key pair stays: IT makes one, not one per host).
    rm -rf "$T/archive" "$T/vault" "$T/state" "$T/corpus" "$T/restored" "$T/it.crt"
done

# A real kill -9 from outside while volumes are being written (small volumes: several).
setup kvol 300 purge-kill-vol
mailret purge > "$T/crash.out" 2> "$T/crash.log" &
pid=$!
killed=no
for _ in $(seq 1 3000); do
    if [ -n "$(find "$T/archive" -name 'vol-*' 2>/dev/null | head -1)" ] &&
       [ -z "$(find "$T/archive" -name manifest.json 2>/dev/null | head -1)" ]; then
        kill -9 "$pid" 2>/dev/null && killed=yes
        break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.005
done
wait "$pid" 2>/dev/null || true
[ "$killed" = yes ] || fail "volume write: could not catch the purge while writing volumes"
[ -z "$(find "$T/archive" -name manifest.json)" ] || echo "note: manifest was written before the kill landed"
check_nothing_lost "volume write"
mailret purge > "$T/rerun.out" 2> "$T/rerun.log" || fail "volume write: re-run: $(tail -3 "$T/rerun.log")"
check_final "volume write"
echo "PASS purge_kill9 (10 crash points + kill -9 during volume write)"
