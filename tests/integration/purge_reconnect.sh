#!/bin/bash
# purge_reconnect.sh — a mailbox whose connection breaks never stops the others, and purge
# holds back what ingest has not seen (real Dovecot behind tests/tools/faultproxy.py, which
# cuts every connection after 200 kB from the server; explicit dates and --cutoff):
#  - Sager (first) holds a 1 MB old message: its ingest and its purge are cut mid-FETCH;
#    ingest and purge reconnect and go on with INBOX;
#  - INBOX: 10 old small messages, a 1 MB newer one, 5 more old small ones (in UID order):
#    ingest is cut in the middle of the large one, so the 5 behind it are not ingested;
#    purge archives and expunges the 10 and holds the 5 back as not-ingested (report,
#    audit); check says "not ingested";
#  - a run without the proxy ingests the rest and purges what is old in both mailboxes;
#  - after every step: server ∪ verified archive == original (SHA-256, both mailboxes).
source "$(dirname "$0")/purge_lib.sh"

new_user reconnect
write_config
sed -i -e '/^\[mailboxes\]/a mailbox = Sager' "$T/mailret.conf"   # Sager, then INBOX
setup_keys
CUTOFF=2026-10-01

# Messages by APPEND, in this UID order: NAME DATE(epoch) SIZE(bytes of body).
python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" <<'PY'
import base64, imaplib, os, ssl, sys
host, port, ca, user, pwf = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
assert m.create("Sager")[0] == "OK"
AUG, OCT = 1786000000, 1791000000      # 2026-08-06, 2026-10-03
def msg(i, size):
    body = base64.encodebytes(os.urandom(size * 3 // 4)) if size else b"hello\r\n"
    return (b"From: Sender %d <sender%d@example.net>\r\nTo: post@akasse.example\r\n"
            b"Subject: message %d\r\nMessage-ID: <m%d@example.net>\r\n"
            b"Date: Thu, 06 Aug 2026 10:00:00 +0200\r\n\r\n" % (i, i, i, i)) + body.replace(b"\n", b"\r\n")
n = 0
def put(box, date, size):
    global n
    n += 1
    assert m.append(box, None, imaplib.Time2Internaldate(date), msg(n, size))[0] == "OK"
for _ in range(3): put("Sager", AUG, 0)
put("Sager", AUG, 1 << 20)
for _ in range(10): put("INBOX", AUG, 0)
put("INBOX", OCT, 1 << 20)
for _ in range(5): put("INBOX", AUG, 0)
m.logout()
PY

# shas BOX: SHA-256 of every message in BOX.
shas() {
    python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" "$1" <<'PY'
import hashlib, imaplib, ssl, sys
host, port, ca, user, pwf, box = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip()); m.select(box, readonly=True)
for uid in m.uid("SEARCH", None, "ALL")[1][0].split():
    print(hashlib.sha256(m.uid("FETCH", uid, "(BODY.PEEK[])")[1][0][1]).hexdigest())
PY
}
all_server() { { shas INBOX; shas Sager; } | sort; }
invariant() {
    all_server > "$T/now-server.sha"
    archived_shas > "$T/now-archive.sha" || fail "restore failed"
    sort "$T/now-server.sha" "$T/now-archive.sha" > "$T/now-all.sha"
    cmp -s "$T/now-all.sha" "$T/original.sha" ||
        fail "$1: server $(wc -l < "$T/now-server.sha") + archive $(wc -l < "$T/now-archive.sha") != original $(wc -l < "$T/original.sha")"
}
all_server > "$T/original.sha"
[ "$(wc -l < "$T/original.sha")" = 20 ] || fail "setup: $(wc -l < "$T/original.sha") messages"
inbox_uids() {
    python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" <<'PY'
import imaplib, ssl, sys
host, port, ca, user, pwf = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip()); m.select("INBOX", readonly=True)
print(" ".join(u.decode() for u in m.uid("SEARCH", None, "ALL")[1][0].split()))
PY
}
read -r -a uids <<< "$(inbox_uids)"
behind="${uids[*]:11:5}"          # the 5 old messages behind the large one

python3 "$MAILRET_SOURCE_DIR/tests/tools/faultproxy.py" --target-port "$IMAPS_PORT" \
    --mode cut --after 200000 --lifetime 300 --port-file "$T/proxy.port" > /dev/null &
proxy_pid=$!
trap 'kill "$proxy_pid" 2>/dev/null || true; rm -rf "$T"' EXIT
for _ in $(seq 300); do [ -s "$T/proxy.port" ] && break; sleep 0.1; done
[ -s "$T/proxy.port" ] || fail "proxy did not start"
sed -i -e "s/^port = .*/port = $(cat "$T/proxy.port")/" "$T/mailret.conf"

# ---- ingest: Sager's cut does not stop INBOX ---------------------------------------------
if mailret ingest --json > "$T/i1.json" 2> "$T/i1.log"; then fail "ingest exit 0 through a cutting proxy"; fi
[ "$(json_field "$T/i1.json" '[m["status"] for m in j["mailboxes"] if m["mailbox"]=="Sager"][0]')" != ok ] || fail "Sager reported ok"
[ "$(json_field "$T/i1.json" '[m["fetched"] for m in j["mailboxes"] if m["mailbox"]=="INBOX"][0]')" = 10 ] ||
    { cat "$T/i1.json"; fail "INBOX not ingested up to the large message after Sager broke"; }

# ---- purge: Sager fails, INBOX purged around what ingest has not seen --------------------
set +e; mailret purge --cutoff "$CUTOFF" --json > "$T/p1.json" 2> "$T/p1.log"; rc=$?; set -e
[ "$rc" = 1 ] || fail "purge through a cutting proxy: exit $rc"
ib='[m for m in j["mailboxes"] if m["mailbox"]=="INBOX"][0]'
sb='[m for m in j["mailboxes"] if m["mailbox"]=="Sager"][0]'
[ "$(json_field "$T/p1.json" "$sb['status']")" != ok ] || fail "Sager purge reported ok"
[ "$(json_field "$T/p1.json" "$ib['status']")" = ok ] || fail "INBOX not purged after Sager broke: $(json_field "$T/p1.json" "$ib['error']")"
[ "$(json_field "$T/p1.json" "$ib['expunged']")" = 10 ] || fail "INBOX expunged $(json_field "$T/p1.json" "$ib['expunged']") of 10"
[ "$(json_field "$T/p1.json" "' '.join(str(h['uid']) for h in $ib['held'] if h['why'] == 'not-ingested')")" = "$behind" ] ||
    { cat "$T/p1.json"; fail "the messages ingest has not seen were not held back"; }
[ "$(shas Sager | wc -l)" = 4 ] || fail "Sager lost messages"
grep '"event":"purge.held"' "$T/state/audit.log" | grep -q "not-ingested" || fail "not-ingested hold not audited"
grep '"event":"purge.failed"' "$T/state/audit.log" | grep -q Sager || fail "Sager's failure not audited"
invariant "after the cut purge"

# check (directly, not through the proxy): INBOX says not ingested, Sager says purge failed.
kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
sed -i -e "s/^port = .*/port = $IMAPS_PORT/" "$T/mailret.conf"
set +e; mailret check --at 2026-10-10 --json > "$T/c1.json" 2> "$T/c1.log"; rc=$?; set -e
[ "$rc" = 2 ] || fail "check: exit $rc"
json_field "$T/c1.json" "[m['detail'] for m in j['mailboxes'] if m['mailbox']=='INBOX'][0]" | grep -q "5 not ingested" ||
    { cat "$T/c1.json"; fail "check does not say INBOX's old mail is not ingested"; }
json_field "$T/c1.json" "[m['detail'] for m in j['mailboxes'] if m['mailbox']=='Sager'][0]" | grep -q "purge failed: " ||
    { cat "$T/c1.json"; fail "check does not say Sager's purge failed"; }

# ---- a healthy run finishes both ---------------------------------------------------------
mailret purge --cutoff "$CUTOFF" --json > "$T/p2.json" 2> "$T/p2.log" || fail "healthy purge: $(tail -3 "$T/p2.log")"
[ "$(shas Sager | wc -l)" = 0 ] || fail "Sager not purged"
[ "$(shas INBOX | wc -l)" = 1 ] || fail "INBOX: $(shas INBOX | wc -l) left, want the newer large one"
invariant "after the healthy purge"
mailret check --at 2026-10-10 > "$T/c2.out" 2> "$T/c2.log" || { cat "$T/c2.out"; fail "check after the healthy purge"; }
echo "PASS purge_reconnect"
