#!/bin/bash
# `cmake --install --prefix P` (staged with DESTDIR) writes every path it names for P, not
# for the configured prefix: the man page names P's documentation directory, the units
# run P's binary and point at P's documents, and each file they name was installed there;
# the example configuration that CONFIG.md names is installed.
set -euo pipefail
: "${MAILRET_BUILD_DIR:?}" "${MAILRET_SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

configured=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$MAILRET_BUILD_DIR/CMakeCache.txt")
for P in /usr /opt/mr-test; do
    [ "$P" != "$configured" ] || continue
    D=$T/root$P
    DESTDIR=$T/root cmake --install "$MAILRET_BUILD_DIR" --prefix "$P" >"$T/log" 2>&1 \
        || fail "install --prefix $P: $(tail -5 "$T/log")"
    man=$D/share/man/man8/mailret.8
    [ -s "$man" ] || fail "$P: no man page"
    units=$(ls "$D"/lib/systemd/system/mailret-*)
    [ -n "$units" ] || fail "$P: no units"
    if grep -l -e "$configured/" -e "$T" "$man" $units; then
        fail "$P: installed files name the configured prefix $configured or the staging dir"
    fi
    sed 's/\\-/-/g' "$man" >"$T/page"     # roff's escaped hyphens
    grep -qF "$P/share/doc/mailret/CONFIG.md" "$T/page" || fail "$P: man page does not name $P's CONFIG.md"
    [ -s "$D/share/doc/mailret/CONFIG.md" ] || fail "$P: CONFIG.md not installed"
    for u in $units; do
        exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$u")
        case $exe in
            $P/bin/mailret) [ -x "$T/root$exe" ] || fail "$u: $exe not installed" ;;
            /usr/bin/systemd-cat) ;;
            "") [ "${u%.timer}" != "$u" ] || fail "$u: no ExecStart=" ;;
            *) fail "$u runs $exe, not $P/bin/mailret" ;;
        esac
        for doc in $(sed -n 's/^Documentation=//p' "$u"); do
            case $doc in
                man:mailret\(8\)) ;;
                file:*) [ -s "$T/root${doc#file:}" ] || fail "$u: $doc not installed" ;;
                *) fail "$u: unexpected Documentation=$doc" ;;
            esac
        done
    done
    # The example CONFIG.md names, under this prefix.
    grep -q '`/usr/share/doc/mailret/examples/mailret.conf`' "$MAILRET_SOURCE_DIR/docs/CONFIG.md" \
        || fail "CONFIG.md does not name the installed example"
    [ -s "$D/share/doc/mailret/examples/mailret.conf" ] || fail "$P: example config not installed"
    echo "$P: ok"
done
echo "install_prefix: ok"
