#!/usr/bin/env python3
"""jwt_hs256.py — the test suite's own JWT maker (HS256), independent of mailret's code.

    jwt_hs256.py --key-file FILE --sub USER [--exp-in SECONDS] [--wrong-key] [--typ T]

FILE holds the base64 HMAC key (the test server's DIR/oauth2.key).  Prints the compact
token (header.payload.signature, base64url without padding) on stdout.  --exp-in may be
negative (an expired token); --wrong-key signs with a different random key.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--key-file", required=True)
    ap.add_argument("--sub", required=True)
    ap.add_argument("--exp-in", type=int, default=3600)
    ap.add_argument("--wrong-key", action="store_true")
    args = ap.parse_args()

    with open(args.key_file, "rb") as f:
        key = base64.b64decode(f.read().strip(), validate=True)
    if args.wrong_key:
        key = os.urandom(len(key))
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {"sub": args.sub, "iat": now - 60, "nbf": now - 60, "exp": now + args.exp_in,
               "jti": b64url(os.urandom(12))}
    if args.exp_in < 0:
        # An expired token must still be self-consistent (iat <= exp) so that the server
        # rejects it for its age, not for conflicting times.
        payload["iat"] = payload["nbf"] = now + args.exp_in - 60
    signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        b64url(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    sys.stdout.write(signing_input + "." + b64url(sig) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
