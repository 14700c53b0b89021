# ingest_lib.sh — sourced by the ingest_*.sh tests (not a test itself: it exits 0 when
# run alone).  A fresh test-server user with a generated corpus, a configuration for it,
# and the routing check against the corpus's truth.
[ -n "${BASH_SOURCE[1]:-}" ] || { echo "ingest_lib.sh: helper, nothing to test"; exit 0; }
TEST_PREFIX=ingest-test
# shellcheck source=tests/integration/server_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/server_lib.sh"

# write_config [extra [members] lines...]: $T/mailret.conf for the current user.
write_config() {
    {
        echo "[imap]"
        echo "host = $HOST"
        echo "port = $IMAPS_PORT"
        echo "ca_file = $CA_FILE"
        echo "user = $USER_NAME"
        echo "password_file = $T/password"
        echo "[mailboxes]"
        echo "mailbox = INBOX"
        echo "[members]"
        echo "own_domains = akasse.example"
        for l in "$@"; do echo "$l"; done
        echo "[archive]"
        echo "dir = $T/archive"
        echo "[keys]"
        echo "vault_dir = $T/vault"
        echo "it_cert = $T/it.crt"
        echo "[state]"
        echo "dir = $T/state"
    } > "$T/mailret.conf"
}

mailret() { "$MAILRET_BIN" -c "$T/mailret.conf" "$@"; }

# Flags as Dovecot keeps them in Maildir file names: "<unique> <flags>" per message; on
# another server as it reports them over IMAP ("<sha256> <flags>").
flag_snapshot() {
    if [ -z "$USER_MAILDIR" ]; then
        imap_flags INBOX
        return
    fi
    (cd "$USER_MAILDIR" && find cur new -type f | sed -e 's#^[a-z]*/##' \
        -e 's/,S=[0-9]*,W=[0-9]*//' -e 's/:2,/ /' | sort)
}

# check_routing: every message of the corpus is where its truth says, exactly once;
# prints per-rule counts.  Also checks that no planted identifier reached the state
# database or the log file given as $1.
check_routing() {
    python3 - "$T/corpus/truth.jsonl" "$T/state/members.sqlite" \
        "$T/state/ingest-state.sqlite" "$1" <<'PY'
import collections, json, sqlite3, sys
truth = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
mdb = sqlite3.connect(sys.argv[2]); sdb = sqlite3.connect(sys.argv[3])
docs = collections.defaultdict(list)
for sha, rule, member, case in mdb.execute(
        "SELECT sha256, rule, member_id, case_id FROM documents"):
    docs[sha].append((rule, member, case))
unr = collections.Counter(s for (s,) in mdb.execute("SELECT sha256 FROM unrouted"))
seen = dict(sdb.execute("SELECT sha256, outcome FROM seen"))
bad, per_rule = [], collections.Counter()
for t in truth:
    sha, r = t.get("imap_sha256") or t["sha256"], t["route"]
    per_rule[r["rule"]] += 1
    want = (r["rule"], r["member"], r["case"])
    if r["rule"] in ("case", "sender", "cpr"):
        ok = docs.get(sha) == [want] and sha not in unr
    elif r["rule"] == "none":
        ok = unr.get(sha) == 1 and sha not in docs
    else:
        ok = seen.get(sha) == r["rule"] and sha not in docs and sha not in unr
    if not ok:
        bad.append("%s want %s got docs=%s unrouted=%s seen=%s" % (
            t["message_id"][-12:], want, docs.get(sha), unr.get(sha), seen.get(sha)))
n_docs = sum(len(v) for v in docs.values())
want_docs = sum(per_rule[k] for k in ("case", "sender", "cpr"))
if n_docs != want_docs:
    bad.append("documents: %d rows, want %d" % (n_docs, want_docs))
if sum(unr.values()) != per_rule["none"]:
    bad.append("unrouted: %d rows, want %d" % (sum(unr.values()), per_rule["none"]))
# No planted identifier in the state database or the log.
needles = set()
for t in truth:
    for ident in t.get("identifiers", []):
        v = ident.get("value")
        if isinstance(v, str) and len(v) >= 6 and ident.get("kind") in ("email", "cpr", "phone", "name"):
            needles.add(v.encode("utf-8"))
for path in (sys.argv[3], sys.argv[4]):
    data = open(path, "rb").read()
    for n in needles:
        if n in data:
            bad.append("identifier of kind found in %s" % path)
            break
for b in bad[:20]:
    print("MISMATCH", b)
print("routing:", dict(per_rule), "mismatches:", len(bad))
sys.exit(1 if bad else 0)
PY
}

json_field() {  # json_field FILE EXPR  (python expression over j = the report)
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"
}
