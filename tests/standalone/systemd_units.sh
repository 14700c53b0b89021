#!/bin/bash
# The systemd units in scripts/systemd: `systemd-analyze verify` accepts every one (run
# with the built binary in place of /usr/bin/mailret), every service is sandboxed to an
# exposure of at most 2.5 by `systemd-analyze security --offline=yes` (checked twice: by
# its --threshold exit status and by the score it prints), every unit points at
# mailret(8), every writable path outside the state and log directories is optional
# ("-"), and the services are templates that take the configuration name.
set -euo pipefail
: "${MAILRET_BIN:?}" "${MAILRET_SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (scripts/bootstrap)"

src=$MAILRET_SOURCE_DIR/scripts/systemd
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cp "$src"/* "$T/"
sed -i "s#/usr/bin/mailret#$MAILRET_BIN#" "$T"/*

units=$(cd "$T" && ls)
services=$(cd "$T" && ls ./*.service | sed 's#^\./##')
[ "$(wc -w <<<"$services")" -ge 5 ] || fail "too few services: $services"
for s in ingest purge check expire; do
    [ -f "$T/mailret-$s@.service" ] && [ -f "$T/mailret-$s@.timer" ] \
        || fail "no template pair mailret-$s@.service/.timer"
    grep -qx 'Environment=MAILRET_CONFIG=/etc/mailret/%i.conf' "$T/mailret-$s@.service" \
        || fail "mailret-$s@.service does not take the configuration from the instance"
done

# man: pages are checked against the installed system, not this build.
(cd "$T" && systemd-analyze verify --man=no $units) >"$T.verify" 2>&1 \
    || fail "systemd-analyze verify: $(cat "$T.verify")"
[ ! -s "$T.verify" ] || fail "systemd-analyze verify complained: $(cat "$T.verify")"
rm -f "$T.verify"

for u in $units; do
    grep -q '^Documentation=man:mailret(8)' "$T/$u" || fail "$u: no Documentation=man:mailret(8)"
done
for s in $services; do
    out=$(cd "$T" && systemd-analyze security --offline=yes --threshold=25 --no-pager "./$s" 2>&1) \
        || fail "$s: exposure above 2.5: $(tail -1 <<<"$out")"
    score=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' <<<"$out")
    [ -n "$score" ] || fail "$s: no score in: $(tail -1 <<<"$out")"
    awk -v s="$score" 'BEGIN { exit !(s <= 2.5) }' || fail "$s: exposure $score > 2.5"
    for key in 'LimitCORE=0' 'UMask=0077' 'NoNewPrivileges=yes' 'CapabilityBoundingSet=' \
               'PrivateDevices=yes' 'ProtectHome=yes' 'SystemCallFilter=@system-service'; do
        grep -qx "$key" "$T/$s" || fail "$s: no $key"
    done
    while read -r paths; do
        for p in $paths; do
            [ "${p#-}" != "$p" ] || fail "$s: ReadWritePaths=$p is not optional (prefix '-')"
        done
    done < <(sed -n 's/^ReadWritePaths=//p' "$T/$s")
    echo "$s: exposure $score"
done
grep -qx 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' "$T/mailret-ingest@.service" \
    || fail "ingest: address families"
grep -qx 'StateDirectory=mailret' "$T/mailret-purge@.service" || fail "purge: StateDirectory"

# The test itself can fail: the old, unhardened unit scores above the threshold.
cat >"$T/open.service" <<'EOF'
[Service]
Type=oneshot
ExecStart=/bin/true
EOF
if (cd "$T" && systemd-analyze security --offline=yes --threshold=25 ./open.service) >/dev/null 2>&1; then
    fail "an unsandboxed unit passed the threshold"
fi
echo "systemd_units: ok"
