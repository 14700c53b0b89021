#!/bin/bash
# man_page.sh — mailret(8), written at build time from the help texts (scripts/gen-manpage):
# groff formats it without a warning, it has a section for every command that
# `mailret --help` lists, with that command's own --help text, and it names every
# MAILRET_* environment variable that the sources read.
set -euo pipefail
: "${MAILRET_BIN:?}" "${MAILRET_BUILD_DIR:?}" "${MAILRET_SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }

page="$MAILRET_BUILD_DIR/man/mailret.8"
test -s "$page" || fail "no $page (the build writes it when python3 is there)"
T=$(mktemp -d "${TMPDIR:-/tmp}/man-page.XXXXXX")
trap 'rm -rf "$T"' EXIT

# groff: no warning of any kind
groff -man -Tutf8 -ww -z "$page" 2>"$T/warnings" || fail "groff failed: $(cat "$T/warnings")"
[ ! -s "$T/warnings" ] || fail "groff warnings: $(head -5 "$T/warnings")"
# the page as text, blanks squeezed (files, not pipes into grep -q: with pipefail the
# writer's SIGPIPE would count as a failure)
groff -man -Tutf8 -P-c "$page" 2>/dev/null | sed 's/\x08.//g' | tr -s ' ' > "$T/page.txt"

# every command, with its help text
"$MAILRET_BIN" --help > "$T/top.txt"
cmds=$(sed -n '/^Commands:/,/^$/p' "$T/top.txt" | awk 'NF && $1 != "Commands:" {print $1}')
[ "$(echo "$cmds" | wc -w)" -ge 10 ] || fail "too few commands in mailret --help: $cmds"
for c in $cmds; do
  grep -qx "\.SS $c" "$page" || fail "no section for $c"
  "$MAILRET_BIN" "$c" --help > "$T/help.txt"
  usage=$(head -1 "$T/help.txt" | tr -s ' ')
  grep -qF -- "$usage" "$T/page.txt" || fail "$c: its usage line is not in the page"
done

# every MAILRET_* variable the program reads
vars=$(grep -rhoE 'getenv\("MAILRET_[A-Z_]+"\)|"MAILRET_[A-Z_]+_PASSPHRASE"' \
         "$MAILRET_SOURCE_DIR"/{cli,common,ingest,purge,backup,keys} |
       grep -oE 'MAILRET_[A-Z_]+' | sort -u)
[ -n "$vars" ] || fail "no environment variables found in the sources"
for v in $vars; do
  grep -qF "$v" "$T/page.txt" || fail "$v is read by mailret but not in the page"
done
echo "man_page: $(echo "$cmds" | wc -w) commands, $(echo "$vars" | wc -w) variables, no groff warning"
