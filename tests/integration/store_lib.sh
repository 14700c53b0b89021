# store_lib.sh — sourced by the shell tests that mirror batches to the Swift test server
# (fixture swift_server, scripts/swift-test-server; not a test itself: it exits 0 when run
# alone).  Such a test carries a line "# fixtures: swift" (tests/CMakeLists.txt).
#
#   store_init NAME        a key prefix of this test's own in the shared bucket
#                          ($STORE_PREFIX); exits 77 (skipped) without the fixture
#   store_lines [ENDPOINT] the [archive] lines of a configuration mirroring to Swift
#                          (or to ENDPOINT, e.g. a fault proxy in front of it), for
#                          purge_lib.sh's write_config
#   swift_list PREFIX      "KEY SIZE" of every object under PREFIX, sorted
#   swift_get KEY FILE     an object's bytes into FILE
#   swift_put KEY FILE     replace an object (a tampered copy)
#   swift_delete KEY       remove an object
# The swift_* helpers are the test oracle: they speak Swift's own API (tempauth token,
# /v1/AUTH_test/<container>/<object>) with Python's urllib, sharing no code with
# mailret's S3 driver.  The secret is read from the fixture's env file inside Python:
# never in argv or a child's environment.
[ -n "${BASH_SOURCE[1]:-}" ] || { echo "store_lib.sh: helper, nothing to test"; exit 0; }

SWIFT_ENV_FILE="${MAILRET_TEST_SWIFT_DIR:-}/env"

store_env() {  # store_env KEY: a value from the fixture's env file
    sed -n "s/^$1=//p" "$SWIFT_ENV_FILE" | head -1
}

store_init() {
    [ -n "${MAILRET_TEST_SWIFT_DIR:-}" ] && [ -s "$SWIFT_ENV_FILE" ] ||
        { echo "SKIP: no Swift test server (fixture swift_server)"; exit 77; }
    STORE_ENDPOINT="$(store_env ENDPOINT)"
    STORE_REGION="$(store_env REGION)"
    STORE_BUCKET="$(store_env BUCKET)"
    STORE_CREDENTIALS="$(store_env CREDENTIALS_FILE)"
    STORE_PROXY_PORT="$(store_env PROXY_PORT)"
    # Tests share the bucket: each one under a prefix of its own.
    STORE_PREFIX="itest/$1-$$-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
}

store_lines() {
    echo "[archive]"
    echo "store = s3"
    echo "store_endpoint = ${1:-$STORE_ENDPOINT}"
    echo "store_region = $STORE_REGION"
    echo "store_bucket = $STORE_BUCKET"
    echo "store_prefix = $STORE_PREFIX"
    echo "store_credentials_file = $STORE_CREDENTIALS"
    echo "store_timeout = 60"
}

swift_api() {  # swift_api OP KEY [FILE]
    python3 - "$SWIFT_ENV_FILE" "$@" <<'PY'
import json, sys, urllib.parse, urllib.request
env = dict(l.rstrip("\n").split("=", 1) for l in open(sys.argv[1]) if "=" in l)
op, key = sys.argv[2], sys.argv[3]
base = "http://127.0.0.1:%s" % env["PROXY_PORT"]
req = urllib.request.Request(base + "/auth/v1.0", headers={
    "X-Auth-User": env["ACCESS_KEY"], "X-Auth-Key": env["SECRET_KEY"]})
with urllib.request.urlopen(req, timeout=30) as r:
    token, url = r.headers["X-Auth-Token"], r.headers["X-Storage-Url"]
cont = url + "/" + env["BUCKET"]
hdr = {"X-Auth-Token": token}
if op == "list":
    out, marker = [], ""
    while True:
        q = urllib.parse.urlencode({"prefix": key, "format": "json", "marker": marker})
        with urllib.request.urlopen(urllib.request.Request(cont + "?" + q, headers=hdr),
                                    timeout=30) as r:
            page = json.load(r)
        if not page:
            break
        out += [(o["name"], o["bytes"]) for o in page]
        marker = page[-1]["name"]
    for name, size in sorted(out):
        print(name, size)
    sys.exit(0)
obj = cont + "/" + urllib.parse.quote(key, safe="/")
if op == "get":
    with urllib.request.urlopen(urllib.request.Request(obj, headers=hdr), timeout=60) as r:
        open(sys.argv[4], "wb").write(r.read())
elif op == "put":
    data = open(sys.argv[4], "rb").read()
    urllib.request.urlopen(urllib.request.Request(obj, data=data, method="PUT", headers=hdr),
                           timeout=60).close()
elif op == "delete":
    urllib.request.urlopen(urllib.request.Request(obj, method="DELETE", headers=hdr),
                           timeout=60).close()
PY
}

swift_list() { swift_api list "$1"; }
swift_get() { swift_api get "$1" "$2"; }
swift_put() { swift_api put "$1" "$2"; }
swift_delete() { swift_api delete "$1"; }

# store_equals_archive: every file under $T/archive is an object under $STORE_PREFIX with
# the same bytes, and there is no other object (fails naming the first difference).
store_equals_archive() {
    local f rel got
    ( cd "$T/archive" && find . -type f ! -name '*.tmp.*' | sed 's|^\./||' | sort ) \
        > "$T/store-local.list"
    swift_list "$STORE_PREFIX/" | sed "s|^$STORE_PREFIX/||" | awk '{print $1}' | sort \
        > "$T/store-remote.list"
    cmp -s "$T/store-local.list" "$T/store-remote.list" ||
        { diff "$T/store-local.list" "$T/store-remote.list" | head -5 >&2
          fail "${1:-store}: the bucket's objects are not the archive's files"; }
    while read -r rel; do
        got="$T/store-object"
        swift_get "$STORE_PREFIX/$rel" "$got" || fail "cannot read $rel from Swift"
        cmp -s "$got" "$T/archive/$rel" || fail "${1:-store}: $rel differs in the bucket"
    done < "$T/store-local.list"
}
