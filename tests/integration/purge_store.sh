#!/bin/bash
# purge_store.sh — the purge cycle with every batch mirrored to a real object store
# (OpenStack Swift's S3 API, scripts/swift-test-server; [archive] store = s3).  The
# oracle is Swift's own API (tests/integration/store_lib.sh), no code of mailret's:
#   1. purge: the bucket's objects equal the archive's files byte for byte; check
#      reports the store reachable, Object Lock unsupported, every batch in it;
#   2. kill -9 in the middle of the push (before the first volume is put): nothing
#      expunged, no manifest in the bucket; the re-run pushes and expunges exactly once;
#   3. the store goes down mid-upload (a fault proxy in front of Swift disappears at the
#      second PUT): exit 1 with one line, nothing expunged, the batch kept here with no
#      manifest in the bucket; with the store still down, purge and check say so (one
#      line; UNREACHABLE); back up, the re-run pushes and expunges exactly once, and
#      server + archive == original (IT restores every batch);
#   4. check: an object deleted from the bucket, or of another size, is a violation;
#      `backup --push` puts it again, and a batch the bucket lacks entirely;
#   5. hold and release are mirrored (the re-signed manifest);
#   6. expire: the bucket keeps only the tombstones; a tombstone missing from the bucket
#      and content planted back under an expired batch are violations, and the next
#      expire deletes that content;
#   7. backup mirrors its batch; require_object_lock = yes against Swift (no Object
#      Lock) fails with one line before anything is written, here or in the bucket;
#   8. the store's secret is in no file the test produced (logs, output, state).
# fixtures: swift
source "$(dirname "$0")/purge_lib.sh"
source "$(dirname "$0")/store_lib.sh"

store_init purge
setup store 150 purge-store-1

store_config() {  # store_config [ENDPOINT [LINE...]]: the configuration, mirroring there
    local lines
    mapfile -t lines < <(store_lines "${1:-}")
    shift || true
    write_config "$IMAPS_PORT" "${lines[@]}" "$@"
}
store_config

batch_dirs() { find "$T/archive" -mindepth 2 -maxdepth 2 -type d | sort; }
stored() {  # stored BATCH_DIR: the names of its objects in the bucket
    local rel="${1#"$T/archive/"}"
    swift_list "$STORE_PREFIX/$rel/" | awk '{print $1}' | sed 's|.*/||'
}
check_json() {  # check_json WANT_EXIT [args]: check --offline --json into $T/check.json
    local want=$1 rc
    shift
    set +e
    mailret check --offline --json "$@" > "$T/check.json" 2> "$T/check.log"
    rc=$?
    set -e
    [ "$rc" = "$want" ] || { cat "$T/check.json" >&2; fail "check $*: exit $rc, want $want"; }
}

CUT_A=$(month_start_epoch 2)
CUT_B=$(month_start_epoch 1)
CUT_C=$(month_start_epoch 0)
old_a=$(server_older "$CUT_A")
old_b=$(server_older "$CUT_B")
old_c=$(server_older "$CUT_C")
[ "$old_a" -gt 0 ] && [ "$old_b" -gt "$old_a" ] && [ "$old_c" -gt "$old_b" ] ||
    fail "corpus: $old_a / $old_b / $old_c messages before the three cutoffs"

# ---- 1. a purge mirrors its batch ------------------------------------------------------
mailret purge --cutoff "$(epoch_iso "$CUT_A")" --json > "$T/a.json" 2> "$T/a.log" ||
    fail "purge A: $(tail -3 "$T/a.log")"
[ "$(json_field "$T/a.json" 'j["mailboxes"][0]["expunged"]')" = "$old_a" ] || fail "purge A count"
[ "$(server_older "$CUT_A")" = 0 ] || fail "purge A left old mail"
store_equals_archive "after purge A"
grep -q "in the object store and read back" "$T/a.log" || fail "purge A did not log the push"
check_json 0
[ "$(json_field "$T/check.json" 'j["store"]["status"]')" = ok ] || fail "check: store status"
[ "$(json_field "$T/check.json" 'j["store"]["object_lock"]')" = unsupported ] ||
    fail "check: Swift's Object Lock should be unsupported"
[ "$(json_field "$T/check.json" 'j["batches"][0]["status"]')" = ok ] || fail "check: batch A"
echo "ok purge A mirrored ($old_a messages)"

# ---- 2. kill -9 while the batch is pushed -----------------------------------------------
set +e
MAILRET_TEST_CRASH_AT=store-put:vol-0001.p7m mailret purge --cutoff "$(epoch_iso "$CUT_B")" \
    > "$T/b-crash.out" 2> "$T/b-crash.log"
rc=$?
set -e
[ "$rc" = 137 ] || fail "purge B was not killed (exit $rc): $(tail -2 "$T/b-crash.log")"
[ "$(server_older "$CUT_B")" = "$((old_b - old_a))" ] || fail "killed push: something was expunged"
BDIR_B=$(batch_dirs | tail -1)
[ -f "$BDIR_B/manifest.json" ] || fail "killed push: the local batch lost its manifest"
stored "$BDIR_B" > "$T/b.objects"
grep -qx locator.p7m "$T/b.objects" || fail "killed push: not killed in the middle ($(tr '\n' ' ' < "$T/b.objects"))"
! grep -qx manifest.json "$T/b.objects" || fail "killed push: a manifest reached the bucket first"
! grep -qx vol-0001.p7m "$T/b.objects" || fail "killed push: killed too late"
mailret purge --cutoff "$(epoch_iso "$CUT_B")" --json > "$T/b.json" 2> "$T/b.log" ||
    fail "purge B re-run: $(tail -3 "$T/b.log")"
[ "$(json_field "$T/b.json" 'j["mailboxes"][0]["resumed_batches"]')" = 1 ] || fail "B: not resumed"
[ "$(json_field "$T/b.json" 'j["mailboxes"][0]["archived"]')" = 0 ] || fail "B: archived twice"
[ "$(json_field "$T/b.json" 'j["mailboxes"][0]["resumed_expunged"]')" = "$((old_b - old_a))" ] ||
    fail "B: expunged $(json_field "$T/b.json" 'j["mailboxes"][0]["resumed_expunged"]')"
[ "$(server_older "$CUT_B")" = 0 ] || fail "B: old mail left"
[ "$(batch_dirs | wc -l)" = 2 ] || fail "B: $(batch_dirs | wc -l) batch directories"
store_equals_archive "after the killed push"
echo "ok kill -9 during the push, re-run completes"

# ---- 3. the store goes down in the middle of the upload ---------------------------------
start_fproxy() {  # start_fproxy [--listen-port P] [args]: a fault proxy in front of Swift
    rm -f "$T/fp.port"
    python3 "$MAILRET_SOURCE_DIR/tests/tools/faultproxy.py" --target-port "$STORE_PROXY_PORT" \
        --port-file "$T/fp.port" --lifetime 900 "$@" > /dev/null 2>&1 &
    FP_PID=$!
    for _ in $(seq 1 200); do [ -s "$T/fp.port" ] && break; sleep 0.05; done
    [ -s "$T/fp.port" ] || fail "fault proxy did not start"
    FP_PORT=$(cat "$T/fp.port")
}
start_fproxy --down-after-puts 1
trap 'kill "$FP_PID" 2>/dev/null || true; rm -rf "$T"' EXIT
store_config "http://127.0.0.1:$FP_PORT"
before=$(server_shas | wc -l)
set +e
mailret purge --json > "$T/c.json" 2> "$T/c.log"
rc=$?
set -e
[ "$rc" = 1 ] || fail "outage: purge exit $rc, want 1"
wait "$FP_PID" 2>/dev/null || true
kill -0 "$FP_PID" 2>/dev/null && fail "outage: the proxy did not go down"
[ "$(grep -c '^mailret purge:' "$T/c.log")" = 1 ] || fail "outage: not one error line: $(cat "$T/c.log")"
grep '^mailret purge:' "$T/c.log" | grep -q "not in the object store; nothing deleted" ||
    fail "outage: the error does not say why: $(grep '^mailret purge:' "$T/c.log")"
[ "$(server_shas | wc -l)" = "$before" ] || fail "outage: something was expunged"
[ "$(server_older "$CUT_C")" = "$((old_c - old_b))" ] || fail "outage: old mail count changed"
BDIR_C=$(batch_dirs | tail -1)
[ "$(batch_dirs | wc -l)" = 3 ] && [ -f "$BDIR_C/manifest.json" ] || fail "outage: local batch not kept"
stored "$BDIR_C" > "$T/c.objects"
grep -qx locator.p7m "$T/c.objects" || fail "outage: the first put did not get through"
! grep -qx manifest.json "$T/c.objects" || fail "outage: a manifest reached the bucket"

# Still down: purge fails at once with one line, archives nothing; check says so.
set +e
mailret purge > "$T/c2.out" 2> "$T/c2.log"
rc=$?
set -e
[ "$rc" = 1 ] || fail "store down: purge exit $rc"
[ "$(grep -c '^mailret purge:' "$T/c2.log")" = 1 ] || fail "store down: $(cat "$T/c2.log")"
grep '^mailret purge:' "$T/c2.log" | grep -q "object store.*nothing archived or deleted" ||
    fail "store down: $(grep '^mailret purge:' "$T/c2.log")"
[ "$(batch_dirs | wc -l)" = 3 ] || fail "store down: a batch was made"
[ "$(server_shas | wc -l)" = "$before" ] || fail "store down: something was expunged"
check_json 2
[ "$(json_field "$T/check.json" 'j["store"]["status"]')" = UNREACHABLE ] || fail "check: store reachable?"

# Back up on the same port: the re-run pushes what is missing and expunges, once.
start_fproxy --listen-port "$FP_PORT"
mailret purge --json > "$T/c3.json" 2> "$T/c3.log" || fail "after the outage: $(tail -3 "$T/c3.log")"
[ "$(json_field "$T/c3.json" 'j["mailboxes"][0]["resumed_batches"]')" = 1 ] || fail "C: not resumed"
[ "$(json_field "$T/c3.json" 'j["mailboxes"][0]["archived"]')" = 0 ] || fail "C: archived twice"
[ "$(json_field "$T/c3.json" 'j["mailboxes"][0]["resumed_expunged"]')" = "$((old_c - old_b))" ] ||
    fail "C: expunged $(json_field "$T/c3.json" 'j["mailboxes"][0]["resumed_expunged"]')"
[ "$(server_older "$CUT_C")" = 0 ] || fail "C: old mail left"
kill "$FP_PID" 2>/dev/null || true
store_config
store_equals_archive "after the outage"
check_invariant "after the outage"
echo "ok store outage mid-upload: nothing expunged, re-run completes"

# ---- 4. check: the bucket must hold every file, at its size -----------------------------
check_json 0
REL_A=$(batch_dirs | head -1)
REL_A=${REL_A#"$T/archive/"}
B_A=$(basename "$REL_A")
B_A=${B_A#???????-}
status_a() { json_field "$T/check.json" "[b for b in j['batches'] if b['batch_id'] == '$B_A'][0]['$1']"; }
swift_delete "$STORE_PREFIX/$REL_A/vol-0001.p7m"
check_json 2
[ "$(status_a status)" = "NOT IN STORE" ] || fail "deleted object: $(status_a status)"
status_a detail | grep -q "vol-0001.p7m is not in the object store" || fail "detail: $(status_a detail)"
head -c 100 "$T/archive/$REL_A/vol-0001.p7m" > "$T/short"
swift_put "$STORE_PREFIX/$REL_A/vol-0001.p7m" "$T/short"
check_json 2
status_a detail | grep -q "vol-0001.p7m has 100 bytes in the object store" || fail "detail: $(status_a detail)"
# backup --push repairs it; and puts a batch the bucket lacks entirely (as one written
# before store = s3 was set).
mailret backup --push > "$T/push.out" 2> "$T/push.log" || fail "backup --push: $(cat "$T/push.log")"
grep -q "$B_A.*put into the object store" "$T/push.out" || fail "--push: $(cat "$T/push.out")"
grep -q "^1 batch(es) put into the object store, 2 there already, 0 failed" "$T/push.out" ||
    fail "--push count: $(tail -1 "$T/push.out")"
store_equals_archive "after backup --push"
for o in $(stored "$T/archive/$REL_A"); do swift_delete "$STORE_PREFIX/$REL_A/$o"; done
[ -z "$(stored "$T/archive/$REL_A")" ] || fail "could not empty batch A in the bucket"
check_json 2
mailret backup --push > "$T/push.out" 2> "$T/push.log" || fail "backup --push: $(cat "$T/push.log")"
store_equals_archive "after backup --push of a whole batch"
check_json 0
echo "ok check finds missing and short objects; backup --push puts them"

# ---- 5. hold is mirrored -------------------------------------------------------------
cp "$T/archive/$REL_A/manifest.json" "$T/manifest.before"
mailret hold "$B_A" --reason "Sag 2026-77: test" > /dev/null 2> "$T/h.log" || fail "hold: $(cat "$T/h.log")"
! cmp -s "$T/manifest.before" "$T/archive/$REL_A/manifest.json" || fail "hold did not change the manifest"
store_equals_archive "after hold"
mailret hold --release "$B_A" --reason "Sag 2026-77 closed" > /dev/null 2> "$T/h.log" ||
    fail "release: $(cat "$T/h.log")"
store_equals_archive "after release"
echo "ok hold mirrored"

# ---- 6. expire: only the tombstones stay in the bucket -------------------------------------
check_json 0
AT=$(python3 -c "
import datetime, json, sys
j = json.load(open(sys.argv[1]))
e = max(datetime.datetime.strptime(b['expires'], '%Y-%m-%dT%H:%M:%SZ') for b in j['batches'])
print((e + datetime.timedelta(days=1)).strftime('%Y-%m-%dT%H:%M:%SZ'))" "$T/check.json")
mailret expire --at "$AT" > "$T/e.out" 2> "$T/e.log" || fail "expire: $(cat "$T/e.log")"
[ -z "$(find "$T/archive" -name 'vol-*' -o -name 'reid-*' -o -name manifest.json)" ] ||
    fail "expire left files here"
store_equals_archive "after expire"
[ "$(swift_list "$STORE_PREFIX/" | grep -vc '/expired\.json ')" = 0 ] || fail "expire: more than tombstones in the bucket"
check_json 0 --at "$AT"
[ "$(json_field "$T/check.json" 'sorted(set(b["status"] for b in j["batches"]))')" = "['expired']" ] ||
    fail "after expire: $(json_field "$T/check.json" '[b["status"] for b in j["batches"]]')"
cp "$T/archive/$REL_A/expired.json" "$T/tomb"
swift_delete "$STORE_PREFIX/$REL_A/expired.json"
check_json 2 --at "$AT"
[ "$(status_a status)" = "NOT IN STORE" ] || fail "deleted tombstone: $(status_a status)"
swift_put "$STORE_PREFIX/$REL_A/expired.json" "$T/tomb"
swift_put "$STORE_PREFIX/$REL_A/vol-0001.p7m" "$T/short"
check_json 2 --at "$AT"
[ "$(status_a status)" = key-present-after-expiry ] || fail "planted content: $(status_a status)"
status_a detail | grep -q "survived expiry in the object store" || fail "detail: $(status_a detail)"
mailret expire --at "$AT" > "$T/e2.out" 2> "$T/e2.log" || fail "expire again: $(cat "$T/e2.log")"
grep -q "deleted from the object store" "$T/e2.out" || fail "expire did not report the sweep: $(cat "$T/e2.out")"
store_equals_archive "after the second expire"
check_json 0 --at "$AT"
echo "ok expire mirrored (tombstones only), check and the sweep"

# ---- 7. backup mirrors its batch; require_object_lock without a lock writes nothing -------
store_config "" "require_object_lock = yes"
n_before=$(batch_dirs | wc -l)
swift_list "$STORE_PREFIX/" > "$T/bucket.before"
set +e
mailret backup --all > "$T/bk.out" 2> "$T/bk.log"
rc=$?
set -e
[ "$rc" = 1 ] || fail "require_object_lock on Swift: backup exit $rc"
[ "$(grep -c '^mailret backup:' "$T/bk.log")" = 1 ] &&
    grep '^mailret backup:' "$T/bk.log" | grep -q "require_object_lock is set but Object Lock is unsupported" ||
    fail "require_object_lock: $(cat "$T/bk.log")"
[ "$(batch_dirs | wc -l)" = "$n_before" ] || fail "require_object_lock: a batch was written"
swift_list "$STORE_PREFIX/" | cmp -s - "$T/bucket.before" || fail "require_object_lock: the bucket changed"
store_config
mailret backup --all > "$T/bk.out" 2> "$T/bk.log" || fail "backup: $(cat "$T/bk.log")"
[ "$(batch_dirs | wc -l)" = "$((n_before + 1))" ] || fail "backup made no batch"
store_equals_archive "after backup"
echo "ok backup mirrored; require_object_lock refused with one line, nothing written"

# ---- 8. the secret in no file the test produced ------------------------------------------
python3 - "$SWIFT_ENV_FILE" "$T" <<'PY' || fail "the store's secret leaked"
import os, sys
env = dict(l.rstrip("\n").split("=", 1) for l in open(sys.argv[1]) if "=" in l)
secret = env["SECRET_KEY"].encode()
for root, _, files in os.walk(sys.argv[2]):
    for f in files:
        p = os.path.join(root, f)
        if secret in open(p, "rb").read():
            print("secret found in", p)
            sys.exit(1)
PY
echo "PASS purge_store"
