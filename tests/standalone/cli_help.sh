#!/bin/bash
# Every command named in DESIGN.md answers --help with exit 0 and a usage line; the global
# help lists them all; unknown commands and options are usage errors (exit 2); a command
# without configuration fails with one line naming the file, not a crash.
set -euo pipefail
bin=${MAILRET_BIN:?MAILRET_BIN not set}
fail() { echo "FAIL: $*" >&2; exit 1; }

commands="ingest purge backup restore verify check expire hold erase init config keys members audit"
help=$("$bin" --help) || fail "mailret --help exited non-zero"
for c in $commands; do
    grep -qE "^  $c " <<<"$help" || fail "global help does not list '$c'"
    out=$("$bin" "$c" --help) || fail "mailret $c --help exited $?"
    grep -qi "usage: mailret $c" <<<"$out" || fail "mailret $c --help prints no usage line"
done

set +e
"$bin" no-such-command >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "unknown command exited $rc, want 2"
"$bin" --no-such-option >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "unknown global option exited $rc, want 2"
"$bin" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "no command exited $rc, want 2"
err=$(MAILRET_CONFIG=/nonexistent/mailret.conf "$bin" ingest 2>&1 >/dev/null); rc=$?
set -e
[ $rc -eq 1 ] || fail "ingest without config exited $rc, want 1"
[ "$(wc -l <<<"$err")" -eq 1 ] || fail "error is not one line: $err"
grep -q "/nonexistent/mailret.conf" <<<"$err" || fail "error does not name the config file: $err"

"$bin" --version | grep -qE '^mailret [0-9]+\.[0-9]+' || fail "--version"
echo "cli_help: ok"
