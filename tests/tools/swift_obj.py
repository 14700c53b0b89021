#!/usr/bin/env python3
"""swift_obj.py — the test Swift's objects through Swift's own API (tempauth token), not
through S3: the tests' independent view of the bucket, to list, read, replace and delete
what mailret stored.

    swift_obj.py list PREFIX          keys (one a line) and sizes, tab-separated
    swift_obj.py get KEY FILE         the object's bytes into FILE
    swift_obj.py put KEY FILE         FILE's bytes as the object
    swift_obj.py delete KEY

The server is the one in $MAILRET_TEST_SWIFT_DIR/env (scripts/swift-test-server)."""
import json
import os
import sys
import urllib.parse
import urllib.request


def env():
    d = os.environ.get("MAILRET_TEST_SWIFT_DIR")
    if not d:
        sys.exit("swift_obj.py: MAILRET_TEST_SWIFT_DIR is not set")
    out = {}
    with open(os.path.join(d, "env")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            out[k] = v
    return out


def session(e):
    base = "http://127.0.0.1:%s" % e["PROXY_PORT"]
    req = urllib.request.Request(base + "/auth/v1.0",
                                 headers={"X-Auth-User": e["ACCESS_KEY"],
                                          "X-Auth-Key": e["SECRET_KEY"]})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.headers["X-Auth-Token"], r.headers["X-Storage-Url"] + "/" + e["BUCKET"]


def call(method, url, token, data=None, query=None):
    if query:
        url += "?" + urllib.parse.urlencode(query)
    req = urllib.request.Request(url, method=method, data=data,
                                 headers={"X-Auth-Token": token})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    e = env()
    token, bucket = session(e)
    cmd, key = sys.argv[1], sys.argv[2]
    obj = bucket + "/" + urllib.parse.quote(key, safe="/")
    if cmd == "list":
        marker = ""
        while True:
            page = json.loads(call("GET", bucket, token,
                                   query={"format": "json", "prefix": key, "marker": marker}))
            if not page:
                break
            for o in page:
                print("%s\t%d" % (o["name"], o["bytes"]))
            marker = page[-1]["name"]
    elif cmd == "get":
        with open(sys.argv[3], "wb") as f:
            f.write(call("GET", obj, token))
    elif cmd == "put":
        with open(sys.argv[3], "rb") as f:
            call("PUT", obj, token, data=f.read())
    elif cmd == "delete":
        call("DELETE", obj, token)
    else:
        sys.exit("swift_obj.py: unknown command %s" % cmd)


if __name__ == "__main__":
    main()
