#!/bin/bash
# corpus_selftest — scripts/gen-corpus checks its own output (see docs/CORPUS.md):
#   * same arguments twice -> byte-identical trees (SHA-256 and mtime of every file);
#   * every truth line's SHA-256/size matches its file, Maildir S=/W=/flags and mtime agree;
#   * every planted identifier is found where and how the truth says (Python email package);
#   * everything that looks like an address/CPR/phone/IP is in the truth (completeness);
#   * an independent reference router reproduces every truth route;
#   * members.csv parses; message count and registry size are right;
#   * eml, mbox (mboxrd), --maildir-into and --large-message work; bad arguments fail.
# Needs only bash and python3.  MAILRET_SOURCE_DIR defaults to this script's repository.
set -euo pipefail

SRC="${MAILRET_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
GEN="$SRC/scripts/gen-corpus"
VERIFY="$SRC/scripts/corpus/verify.py"
N="${CORPUS_SELFTEST_COUNT:-300}"

die() { echo "corpus_selftest: FAIL: $*" >&2; exit 1; }
step() { echo "corpus_selftest: $*"; }

[ -x "$GEN" ] || die "$GEN missing or not executable"
[ -f "$VERIFY" ] || die "$VERIFY missing"
command -v python3 >/dev/null || die "python3 not found"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/corpus-selftest.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# A listing of every file with its SHA-256 and mtime, relative to $1.
tree_sum() {
    (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z |
        xargs -0 -r stat -c '%n %Y %s' && find . -type f -print0 | LC_ALL=C sort -z |
        xargs -0 -r sha256sum)
}

members=$(( N / 10 )); [ "$members" -lt 10 ] && members=10

step "maildir: two runs with the same seed ($N messages)"
"$GEN" --count "$N" --seed selftest --out "$TMP/a" --quiet || die "gen-corpus (run a) failed"
"$GEN" --count "$N" --seed selftest --out "$TMP/b" --quiet || die "gen-corpus (run b) failed"
tree_sum "$TMP/a" > "$TMP/a.sum"
tree_sum "$TMP/b" > "$TMP/b.sum"
if ! cmp -s "$TMP/a.sum" "$TMP/b.sum"; then
    diff "$TMP/a.sum" "$TMP/b.sum" | head -20 >&2
    die "two runs with the same seed differ"
fi
nfiles=$(find "$TMP/a/Maildir/cur" -type f | wc -l)
[ "$nfiles" -eq "$N" ] || die "Maildir/cur holds $nfiles files, expected $N"
[ -d "$TMP/a/Maildir/new" ] && [ -d "$TMP/a/Maildir/tmp" ] || die "Maildir new/ or tmp/ missing"
[ -z "$(ls -A "$TMP/a/Maildir/tmp")" ] || die "Maildir tmp/ not empty"

step "maildir: verify truth, identifiers, routes, members.csv"
python3 "$VERIFY" "$TMP/a" --count "$N" --members "$members" || die "verify failed (maildir)"

step "a different seed gives a different corpus"
"$GEN" --count 50 --seed other --out "$TMP/c" --quiet || die "gen-corpus (seed other) failed"
cmp -s "$TMP/a/members.csv" "$TMP/c/members.csv" && die "seed has no effect on members.csv"

step "eml format, --members, --months/--end, --large-message"
"$GEN" --count 200 --seed selftest-eml --out "$TMP/eml" --format eml --members 37 \
    --months 6 --end 2025-03-01 --large-message 3 --quiet || die "gen-corpus (eml) failed"
python3 "$VERIFY" "$TMP/eml" --count 201 --members 37 --quiet || die "verify failed (eml)"
python3 - "$TMP/eml" <<'PY' || die "eml: dates, large message or file names wrong"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1] + "/truth.jsonl", encoding="utf-8")]
assert all("2024-09-01T00:00:00Z" <= r["internaldate"] < "2025-03-01T00:00:00Z" for r in recs), "dates"
big = [r for r in recs if r.get("large")]
assert len(big) == 1 and 2_500_000 < big[0]["size"] < 3_600_000, "large message size"
assert all(r["file"].startswith("eml/") and r["file"].endswith(".eml") for r in recs), "names"
PY

step "mbox (mboxrd) format, twice"
"$GEN" --count 200 --seed selftest-mbox --out "$TMP/mbox1" --format mbox --quiet || die "gen-corpus (mbox) failed"
"$GEN" --count 200 --seed selftest-mbox --out "$TMP/mbox2" --format mbox --quiet || die "gen-corpus (mbox 2) failed"
cmp -s "$TMP/mbox1/corpus.mbox" "$TMP/mbox2/corpus.mbox" || die "mbox runs differ"
python3 "$VERIFY" "$TMP/mbox1" --count 200 --members 20 --quiet || die "verify failed (mbox)"
python3 - "$TMP/mbox1/corpus.mbox" <<'PY' || die "mbox not readable by Python's mailbox module"
import mailbox, sys
n = sum(1 for _ in mailbox.mbox(sys.argv[1]))
assert n == 200, n
PY

step "--maildir-into an existing Maildir"
mkdir -p "$TMP/server/mail/u/Maildir/cur" "$TMP/server/mail/u/Maildir/new" "$TMP/server/mail/u/Maildir/tmp"
printf 'Subject: existing\r\n\r\nold\r\n' > "$TMP/server/mail/u/Maildir/cur/1.existing:2,S"
"$GEN" --count 40 --seed selftest-into --out "$TMP/into" --maildir-into "$TMP/server/mail/u/Maildir" \
    --quiet || die "gen-corpus --maildir-into failed"
python3 "$VERIFY" "$TMP/into" --count 40 --members 10 --quiet || die "verify failed (--maildir-into)"
[ -f "$TMP/server/mail/u/Maildir/cur/1.existing:2,S" ] || die "--maildir-into removed an existing message"
n=$(find "$TMP/server/mail/u/Maildir/cur" -type f | wc -l)
[ "$n" -eq 41 ] || die "--maildir-into: $n files in cur/, expected 41"

step "bad arguments fail"
if "$GEN" --count 10 --seed x --out "$TMP/bad" --end 2026-13-45 2>/dev/null; then die "bad --end accepted"; fi
if "$GEN" --count 10 --out "$TMP/bad" 2>/dev/null; then die "missing --seed accepted"; fi
if "$GEN" --count 10 --seed x --out "$TMP/bad" --format tar 2>/dev/null; then die "bad --format accepted"; fi

step "all checks passed"
