#!/bin/bash
# pseudo_header_slots.sh — the generated perfect hash of header names in pseudo/mime.c
# (HSLOT, for HEADERS and HMUL) is what its generator, scripts/gen-header-slots, writes:
# the file is regenerated into a temporary copy, which must not differ from the committed
# one.  And the check is able to fail: a table with one slot changed, and a name added to
# HEADERS without regenerating, differ from their regenerated copies.
set -euo pipefail
: "${MAILRET_SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
gen="$MAILRET_SOURCE_DIR/scripts/gen-header-slots"
src="$MAILRET_SOURCE_DIR/pseudo/mime.c"
T=$(mktemp -d "${TMPDIR:-/tmp}/header-slots.XXXXXX")
trap 'rm -rf "$T"' EXIT

# regenerated FILE OUT: FILE with its table regenerated, written to OUT.
regenerated() { python3 "$gen" --write "$2" "$1"; }

regenerated "$src" "$T/mime.c" || fail "scripts/gen-header-slots failed on pseudo/mime.c"
if ! diff -u "$src" "$T/mime.c"; then
    fail "HSLOT in pseudo/mime.c is stale: run scripts/gen-header-slots --write pseudo/mime.c pseudo/mime.c"
fi
python3 "$gen" --check "$src" >/dev/null || fail "--check refuses the committed table"

# One slot changed: the first non-zero entry of the table set to 0.
python3 - "$src" "$T/changed.c" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
m = re.search(r"HSLOT\[256\]\s*=\s*\{", s)
j = re.compile(r"[1-9]\d*").search(s, m.end())
open(sys.argv[2], "w").write(s[:j.start()] + "0" + s[j.end():])
PY
regenerated "$T/changed.c" "$T/changed.regen.c"
cmp -s "$T/changed.c" "$T/changed.regen.c" && fail "a changed slot is what the generator writes"
cmp -s "$src" "$T/changed.regen.c" || fail "regenerating a changed table did not restore it"
if python3 "$gen" --check "$T/changed.c" 2>/dev/null; then fail "--check passed a changed slot"; fi

# A name added to HEADERS alone: the regenerated copy differs (or the multiplier collides,
# which the generator refuses); with --search it gets a table of its own that checks.
sed 's/H("lines", H_SKIP)/H("lines", H_SKIP), H("x-added-header", H_SKIP)/' "$src" > "$T/added.c"
cmp -s "$src" "$T/added.c" && fail "could not add a name to the copy"
if regenerated "$T/added.c" "$T/added.regen.c" 2>/dev/null; then
    cmp -s "$T/added.c" "$T/added.regen.c" && fail "a name added alone left the table as generated"
fi
python3 "$gen" --search --write "$T/added.c" "$T/added.c"
python3 "$gen" --check "$T/added.c" >/dev/null || fail "the table written by --search does not check"
regenerated "$T/added.c" "$T/added.regen.c"
cmp -s "$T/added.c" "$T/added.regen.c" || fail "the table written by --search is not stable"
echo "pseudo_header_slots: ok"
