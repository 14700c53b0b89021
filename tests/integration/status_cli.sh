#!/bin/bash
# status_cli.sh — `mailret status` against the real Dovecot:
#  - before any run: login ok, the server's message count, ingest and purge "never";
#  - after ingest and purge: their time, result and counts as the runs reported them; the
#    unrouted queue as the member database holds it; the certificate's end date as
#    openssl reads it; the archive's disk use as du counts it and the free space;
#  - a failed ingest (server unreachable) is shown with its error and exit status 1;
#  - a server that accepts the connection and never answers costs connect_timeout, not
#    io_timeout;
#  - --json failure: one object with error and message.
source "$(dirname "$0")/purge_lib.sh"

setup status 60 status-cli-1
st() { mailret status --json > "$T/$1.json" 2> "$T/$1.err"; }

st s0 || fail "status before any run: $(cat "$T/s0.err" "$T/s0.json")"
python3 - "$T/s0.json" "$TOTAL" <<'PY' || fail "status before any run: $(cat "$T/s0.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["login"]["status"] == "ok", j["login"]
m, = j["mailboxes"]
assert m["mailbox"] == "INBOX" and m["last_ingest"] is None and m["last_purge"] is None, m
assert m["server"]["messages"] == int(sys.argv[2]), m
assert j["problems"] == [], j["problems"]
assert any("never ingested" in w for w in j["warnings"]), j["warnings"]
PY
mailret status > "$T/s0.txt" || fail "status (text)"
grep -q "^  last ingest  never$" "$T/s0.txt" || fail "status text: $(cat "$T/s0.txt")"

mailret members import "$T/corpus/members.csv" > /dev/null 2>&1 || fail "members import"
mailret ingest --json > "$T/ingest.json" 2> "$T/ingest.log" || fail "ingest: $(tail -3 "$T/ingest.log")"
st s1a || fail "status after ingest: $(cat "$T/s1a.err" "$T/s1a.json")"
python3 - "$T/s1a.json" "$T/ingest.json" <<'PY' || fail "status after ingest"
import json, sys
j = json.load(open(sys.argv[1])); ing = json.load(open(sys.argv[2]))
li = j["mailboxes"][0]["last_ingest"]
assert li["status"] == "ok" and li["error"] == "", li
assert li["fetched"] == ing["mailboxes"][0]["fetched"] > 0, (li, ing["mailboxes"][0])
assert j["mailboxes"][0]["last_purge"] is None
PY
mailret purge --json > "$T/purge.json" 2> "$T/purge.log" || fail "purge: $(tail -3 "$T/purge.log")"
st s1 || fail "status after the runs: $(cat "$T/s1.err" "$T/s1.json")"
end=$(openssl x509 -in "$T/it.crt" -noout -enddate | sed 's/^notAfter=//')
end_iso=$(date -u -d "$end" +%Y-%m-%dT%H:%M:%SZ)
python3 - "$T/s1.json" "$T/ingest.json" "$T/purge.json" "$T/state/members.sqlite" "$T/archive" "$end_iso" <<'PY' || fail "status after the runs"
import json, os, sqlite3, sys, time
j = json.load(open(sys.argv[1])); ing = json.load(open(sys.argv[2])); pur = json.load(open(sys.argv[3]))
m, = j["mailboxes"]
li, lp = m["last_ingest"], m["last_purge"]
# purge ran ingest first: nothing new by then.
assert li["status"] == "ok" and li["error"] == "" and li["fetched"] == 0, li
now = time.time()
t = lambda s: time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
assert abs(t(li["at"]) - now) < 600 and abs(t(lp["at"]) - now) < 600, (li, lp)
pm = pur["mailboxes"][0]
assert lp["status"] == "ok" and lp["expunged"] == pm["expunged"] > 0, (lp, pm)
waiting = sqlite3.connect(sys.argv[4]).execute(
    "SELECT count(*) FROM unrouted WHERE handled = 0").fetchone()[0]
assert j["unrouted"]["waiting"] == waiting > 0, (j["unrouted"], waiting)
used = files = 0
for root, dirs, fs in os.walk(sys.argv[5]):
    used += os.lstat(root).st_blocks * 512
    for f in fs:
        used += os.lstat(os.path.join(root, f)).st_blocks * 512
        files += 1
a = j["archive"]
assert a["used_bytes"] == used and a["files"] == files, (a, used, files)
vfs = os.statvfs(sys.argv[5])
assert abs(a["free_bytes"] - vfs.f_bavail * vfs.f_frsize) < 64 << 20, a
it = [k for k in j["keys"] if k["kind"] == "it-cert"]
assert it and it[0]["expires"] == sys.argv[6], (it, sys.argv[6])
ep = [k for k in j["keys"] if k["kind"] == "epoch-keys"][0]
assert ep["present"] >= 2, ep
assert j["problems"] == [], j["problems"]
PY

# ---- an ingest that could not connect ----------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cp "$T/mailret.conf" "$T/good.conf"
sed -i "s/^port = .*/port = $port/" "$T/mailret.conf"
if mailret ingest > /dev/null 2>&1; then fail "ingest against a closed port succeeded"; fi
set +e; st s2; rc=$?; set -e
[ "$rc" = 1 ] || fail "status with IMAP down: exit $rc"
python3 - "$T/s2.json" <<'PY' || fail "status after a failed ingest: $(cat "$T/s2.json")"
import json, sys
j = json.load(open(sys.argv[1]))
li = j["mailboxes"][0]["last_ingest"]
assert li["status"] == "failed" and "connect" in li["error"].lower(), li
assert j["login"]["status"] == "failed" and j["login"]["code"] == "network", j["login"]
assert any("IMAP login failed" in p for p in j["problems"]), j["problems"]
assert any("the last ingest failed" in p for p in j["problems"]), j["problems"]
assert j["mailboxes"][0]["last_purge"]["status"] == "ok"
PY

# ---- a server that never answers: bounded by connect_timeout ----------------------------
python3 - "$T/silent.port" <<'PY' &
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(5)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
conns = []
end = time.time() + 60
while time.time() < end:
    s.settimeout(1)
    try:
        conns.append(s.accept()[0])
    except OSError:
        pass
PY
silent=$!
for _ in $(seq 300); do [ -s "$T/silent.port" ] && break; sleep 0.1; done
cp "$T/good.conf" "$T/mailret.conf"
sed -i "s/^port = .*/port = $(cat "$T/silent.port")/; s/^\[imap\]$/[imap]\nconnect_timeout = 2\nio_timeout = 300/" "$T/mailret.conf"
t0=$(date +%s)
set +e; st s3; rc=$?; set -e
took=$(( $(date +%s) - t0 ))
kill "$silent" 2>/dev/null || true
[ "$rc" = 1 ] || fail "status against a silent server: exit $rc"
[ "$took" -le 15 ] || fail "status took $took s against a silent server (connect_timeout 2)"
json_field "$T/s3.json" 'j["login"]["status"]' | grep -qx failed || fail "silent server: login not failed"

# ---- --json failure -----------------------------------------------------------------------
printf '[imap]\nhost = \n' > "$T/bad.conf"
set +e; "$MAILRET_BIN" -c "$T/bad.conf" status --json > "$T/bad.json" 2> /dev/null; rc=$?; set -e
[ "$rc" = 1 ] || fail "broken config: exit $rc"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["error"]=="config" and j["command"]=="status" and j["message"], j' "$T/bad.json" ||
    fail "broken config --json: $(cat "$T/bad.json")"

echo "PASS status_cli"
