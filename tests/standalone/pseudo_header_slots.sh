#!/bin/bash
# pseudo_header_slots.sh — the perfect hash of header names in pseudo/mime.c (HSLOT)
# is what its generator, scripts/gen-header-slots, gives for HEADERS and HMUL; and the
# check is able to fail: a table with one slot changed, and a name added to HEADERS
# without regenerating, are refused.
set -euo pipefail
: "${MAILRET_SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
gen="$MAILRET_SOURCE_DIR/scripts/gen-header-slots"
src="$MAILRET_SOURCE_DIR/pseudo/mime.c"
T=$(mktemp -d "${TMPDIR:-/tmp}/header-slots.XXXXXX")
trap 'rm -rf "$T"' EXIT

python3 "$gen" --check "$src" || fail "HSLOT in pseudo/mime.c is stale"

# One slot changed: the first non-zero entry of the table set to 0.
python3 - "$src" "$T/changed.c" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
m = re.search(r"HSLOT\[256\]\s*=\s*\{", s)
i = m.end()
j = re.compile(r"[1-9]\d*").search(s, i)
open(sys.argv[2], "w").write(s[:j.start()] + "0" + s[j.end():])
PY
if python3 "$gen" --check "$T/changed.c" 2>/dev/null; then fail "a changed slot passed the check"; fi

# A name added to HEADERS alone.
sed 's/H("lines", H_SKIP)/H("lines", H_SKIP), H("x-added-header", H_SKIP)/' "$src" > "$T/added.c"
cmp -s "$src" "$T/added.c" && fail "could not add a name to the copy"
if python3 "$gen" --check "$T/added.c" 2>/dev/null; then fail "a name added alone passed the check"; fi
# ... and after --search and pasting its output, the copy checks again.
python3 "$gen" --search "$T/added.c" > "$T/new"
python3 - "$T/added.c" "$T/new" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
new = open(sys.argv[2]).read().split("\n", 1)
s = re.sub(r"#define HMUL UINT64_C\(0x[0-9a-fA-F]+\)", new[0], s)
s = re.sub(r"(HSLOT\[256\]\s*=\s*\{\n).*?(\n\};)", lambda m: m.group(1) + new[1].rstrip("\n") + m.group(2), s, flags=re.S)
open(sys.argv[1], "w").write(s)
PY
python3 "$gen" --check "$T/added.c" >/dev/null || fail "the regenerated table does not check"
echo "pseudo_header_slots: ok"
