# purge_lib.sh — sourced by the purge_*.sh tests (not a test itself: it exits 0 when run
# alone).  A fresh test-server user with a generated corpus spread over several months,
# IT's key pair and the host keys, a configuration, and the invariant check: every
# original message is on the server or in a verified batch, by SHA-256, exactly once.
[ -n "${BASH_SOURCE[1]:-}" ] || { echo "purge_lib.sh: helper, nothing to test"; exit 0; }
TEST_PREFIX=purge-test
# shellcheck source=tests/integration/server_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/server_lib.sh"

# write_config [PORT] [extra lines...]
write_config() {
    local port="${1:-$IMAPS_PORT}"
    shift || true
    {
        echo "[imap]"
        echo "host = $HOST"
        echo "port = $port"
        echo "ca_file = $CA_FILE"
        echo "user = $USER_NAME"
        echo "password_file = $T/password"
        echo "[mailboxes]"
        echo "mailbox = INBOX"
        echo "[members]"
        echo "own_domains = akasse.example"
        # A generated corpus leaves a third of its mail unrouted: the queue's warnings
        # would turn these tests' checks yellow (unrouted_queue.sh tests them).
        echo "unrouted_warn_count = 0"
        echo "unrouted_warn_days = 0"
        echo "[archive]"
        echo "dir = $T/archive"
        echo "volume_size = 1M"
        echo "workers = 2"
        echo "[keys]"
        echo "vault_dir = $T/vault"
        echo "it_cert = $T/it.crt"
        echo "[state]"
        echo "dir = $T/state"
        for l in "$@"; do echo "$l"; done
    } > "$T/mailret.conf"
}

mailret() { "$MAILRET_BIN" -c "$T/mailret.conf" "$@"; }

# setup_keys: IT's key pair (as IT would make it on its own machine; one already made in
# this test is kept, as IT keeps its key across hosts) and the host keys.
setup_keys() {
    if [ ! -s "$T/it.key" ] || [ ! -s "$T/it-handover.crt" ]; then
        printf 'it-test-passphrase\n' > "$T/it.pass"
        chmod 600 "$T/it.pass"
        "$MAILRET_BIN" keys init-it --key "$T/it.key" --cert "$T/it-handover.crt" \
            --passphrase-file "$T/it.pass" > /dev/null
    fi
    mkdir -p "$T/state" && chmod 700 "$T/state"
    mailret keys init-host --it-cert "$T/it-handover.crt" > /dev/null
}

# setup PREFIX COUNT SEED: user, corpus (COUNT generated messages over the three months
# before today, and RECENT=3 appended now, newer than any cutoff), config, keys, and the
# original set of SHA-256s as IMAP serves them ($T/original.sha, sorted, one per line);
# TOTAL is the number of messages.
RECENT=3
setup() {
    new_user "$1"
    gen_corpus "$2" "$3"
    append_recent "$RECENT"
    TOTAL=$(( $2 + RECENT ))
    write_config
    setup_keys
    server_shas > "$T/original.sha"
    [ "$(wc -l < "$T/original.sha")" -eq "$TOTAL" ] || fail "corpus: $(wc -l < "$T/original.sha") of $TOTAL"
}

# server_shas: SHA-256 of every message now in the INBOX, as BODY.PEEK[] returns it.
server_shas() {
    python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" <<'PY'
import hashlib, imaplib, ssl, sys
host, port, ca, user, pwf = sys.argv[1:]
ctx = ssl.create_default_context(cafile=ca)
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx)
m.login(user, open(pwf).read().strip())
m.select("INBOX", readonly=True)
typ, data = m.uid("SEARCH", None, "ALL")
uids = data[0].split()
out = []
for i in range(0, len(uids), 200):
    typ, resp = m.uid("FETCH", b",".join(uids[i:i + 200]), "(BODY.PEEK[])")
    for part in resp:
        if isinstance(part, tuple):
            out.append(hashlib.sha256(part[1]).hexdigest())
m.logout()
for s in sorted(out):
    print(s)
PY
}

# server_older CUTOFF_EPOCH: number of messages with INTERNALDATE before the cutoff.
server_older() {
    python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" "$1" <<'PY'
import imaplib, ssl, sys, time
host, port, ca, user, pwf, cut = sys.argv[1:]
ctx = ssl.create_default_context(cafile=ca)
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx)
m.login(user, open(pwf).read().strip())
m.select("INBOX", readonly=True)
typ, data = m.uid("FETCH", "1:*", "(INTERNALDATE)")
n = 0
for d in data:
    if d is None:
        continue
    t = imaplib.Internaldate2tuple(d if isinstance(d, bytes) else d[0])
    if t is not None and time.mktime(t) < int(cut):
        n += 1
m.logout()
print(n)
PY
}

# setup_reid_holder PREFIX COUNT SEED: as setup, with a re-identification holder apart from
# IT (its key $T/reid.key, passphrase $T/reid.pass; [keys] reid_cert), the corpus over four
# months, and the host keys made with both certificates; archived_shas then restores with
# both holders' keys.
setup_reid_holder() {
    new_user "$1"
    gen_corpus "$2" "$3" 4
    append_recent "$RECENT"
    TOTAL=$(( $2 + RECENT ))
    write_config "$IMAPS_PORT" "[keys]" "reid_cert = $T/reid.crt"
    printf 'reid-holder-passphrase\n' > "$T/reid.pass"
    printf 'it-test-passphrase\n' > "$T/it.pass"
    chmod 600 "$T/reid.pass" "$T/it.pass"
    "$MAILRET_BIN" keys init-it --key "$T/reid.key" --cert "$T/reid-handover.crt" \
        --cn "re-identification holder" --passphrase-file "$T/reid.pass" > /dev/null
    "$MAILRET_BIN" keys init-it --key "$T/it.key" --cert "$T/it-handover.crt" \
        --passphrase-file "$T/it.pass" > /dev/null
    mkdir -p "$T/state" && chmod 700 "$T/state"
    server_shas > "$T/original.sha"
    mailret keys init-host --it-cert "$T/it-handover.crt" --reid-cert "$T/reid-handover.crt" \
        > "$T/init-host.out" || fail "init-host"
    REID_ARGS=(--reid-key "$T/reid.key" --reid-passphrase-file "$T/reid.pass")
}

# address_on_both_sides OLDER NEWER: "ADDRESS N1 N2", the outside address with the most
# messages (by the corpus's truth) both before OLDER and between OLDER and NEWER.
address_on_both_sides() {
    python3 - "$T/corpus/truth.jsonl" "$1" "$2" <<'PY'
import collections, datetime, json, sys
c2, c1 = int(sys.argv[2]), int(sys.argv[3])
a1, a2 = collections.Counter(), collections.Counter()
for l in open(sys.argv[1], encoding="utf-8"):
    t = json.loads(l)
    ts = datetime.datetime.strptime(t["internaldate"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    side = a1 if ts < c2 else a2 if ts < c1 else None
    if side is None:
        continue
    for a in {i["value"].lower() for i in t.get("identifiers", [])
              if i.get("kind") == "email" and "akasse.example" not in i["value"]}:
        side[a] += 1
best = max(set(a1) & set(a2), key=lambda a: (min(a1[a], a2[a]), a))
print(best, a1[best], a2[best])
PY
}

# archived_shas: IT restores every batch (byte for byte) and hashes the result.
REID_ARGS=()
archived_shas() {
    rm -rf "$T/restored"
    [ -n "$(find "$T/archive" -name manifest.json 2>/dev/null | head -1)" ] || return 0
    mailret restore --reason "purge test" --it-key "$T/it.key" \
        --it-passphrase-file "$T/it.pass" "${REID_ARGS[@]}" --maildir "$T/restored" \
        > "$T/restore.out" 2>&1 ||
        { cat "$T/restore.out" >&2; return 1; }
    if [ -d "$T/restored" ]; then
        find "$T/restored" -type f \( -path '*/cur/*' -o -path '*/new/*' \) -print0 |
            xargs -0 -r sha256sum | awk '{print $1}' | sort
    fi
}

# check_invariant: server ∪ verified archive == original, as multisets of SHA-256.
check_invariant() {
    server_shas > "$T/now-server.sha"
    archived_shas > "$T/now-archive.sha" || fail "restore failed"
    sort "$T/now-server.sha" "$T/now-archive.sha" > "$T/now-all.sha"
    if ! cmp -s "$T/now-all.sha" "$T/original.sha"; then
        echo "server $(wc -l < "$T/now-server.sha"), archive $(wc -l < "$T/now-archive.sha"), original $(wc -l < "$T/original.sha")" >&2
        diff "$T/original.sha" "$T/now-all.sha" | head -5 >&2
        fail "${1:-invariant}: server + archive != original set"
    fi
}

json_field() {  # json_field FILE EXPR  (python expression over j)
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"
}
