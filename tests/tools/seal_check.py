#!/usr/bin/env python3
"""Independent check of sealed parts in pseudonymised messages.

    seal_check.py ORIG_DIR PSEUDO_DIR [--planted FILE | --planted-any FILE]
                  [--expect-sealed N]

For every ORIG_DIR/X.eml with PSEUDO_DIR/X.eml (the pseudonymised form), decodes both with
Python's email package (not mailret's code) and checks:
  * the MIME trees have the same shape (multipart and message/rfc822 nodes, number of
    parts; a nested message in base64 is decoded and walked here);
  * every leaf part of the output is either text the scanner reads (text/* in an
    ASCII-compatible charset or in UTF-16, which must still decode;
    identity/base64/quoted-printable) or a sealed placeholder: no other body reaches the
    output;
  * a placeholder states the original's type, decoded size and SHA-256 (recomputed here
    from the original part), is text/plain us-ascii 7bit and has no identifier;
  * with --planted (values per file) or --planted-any (every value in every file), no
    planted value occurs in the raw output, in any decoded part, or in
    any decoded part read as UTF-16/UTF-32 (the values are also searched for in those
    encodings).
Exit 1 with a line per failure.
"""
import base64
import email
import email.policy
import hashlib
import json
import os
import re
import sys

WIDE = ("utf-16", "utf16", "utf-32", "utf32", "ucs-2", "ucs2", "ucs-4", "ucs4", "utf-7",
        "utf7", "unicode", "iso-10646-ucs", "csunicode", "x-unicode")
UTF16 = ("utf-16", "utf-16le", "utf-16be", "unicode")
WALKED_MESSAGES = ("message/rfc822", "message/global", "message/news",
                   "message/global-headers")


def cte(part):
    return (part.get("Content-Transfer-Encoding") or "").strip().lower()


def nested_message(part):
    """The message inside a message/rfc822 part, decoding base64 here."""
    inner = part.get_payload()
    if isinstance(inner, list) and inner:
        inner = inner[0]
    if cte(part) == "base64":
        raw = inner.get_payload() if not isinstance(inner, str) else inner
        if isinstance(raw, list):
            return None
        return email.message_from_bytes(base64.b64decode(raw.encode("ascii", "replace"),
                                                         validate=False))
    return inner


def leaves(msg, path="0"):
    """(path, leaf part) in tree order; message/rfc822 and multipart are walked."""
    ctype = msg.get_content_type()
    if msg.is_multipart() and ctype.startswith("multipart/"):
        for i, sub in enumerate(msg.get_payload()):
            yield from leaves(sub, path + "." + str(i))
    elif ctype in WALKED_MESSAGES or ctype == "text/rfc822-headers":
        inner = nested_message(msg) if ctype != "text/rfc822-headers" else None
        if inner is None:
            yield path, msg
        else:
            yield from leaves(inner, path + ".m")
    else:
        yield path, msg


def decoded(part):
    data = part.get_payload(decode=True)
    if data is None:
        data = part.get_payload()
        data = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else b""
    return data


def variants(value):
    out = {value.encode("utf-8"), value.lower().encode("utf-8")}
    for enc in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        out.add(value.encode(enc))
    return out


SEALED_RE = re.compile(r"type=([^;\s]+);(?:\s*charset=([^;\s]+);)?\s*encoding=([^;\s]+);"
                       r"\s*size=(\d+);\s*sha256=([0-9a-f]{64})")


def check_file(name, orig_bytes, out_bytes, planted, fails):
    orig = email.message_from_bytes(orig_bytes)
    out = email.message_from_bytes(out_bytes)
    ol, pl = list(leaves(orig)), list(leaves(out))
    if [p for p, _ in ol] != [p for p, _ in pl]:
        fails.append(f"{name}: MIME shape differs: {[p for p, _ in ol]} -> {[p for p, _ in pl]}")
        return 0
    sealed = 0
    for (path, op), (_, pp) in zip(ol, pl):
        hdr = pp.get("X-Mailret-Sealed")
        if hdr is not None:
            sealed += 1
            m = SEALED_RE.search(" ".join(hdr.split()))
            if m is None:
                fails.append(f"{name} {path}: unreadable X-Mailret-Sealed: {hdr!r}")
                continue
            ctype, _charset, enc, size, sha = m.groups()
            body = decoded(op)
            if enc == "not-decoded":   # an encoding mailret does not decode: as written
                body = op.get_payload(decode=False)
                try:
                    body = body.encode("ascii", "surrogateescape")
                except UnicodeEncodeError:
                    body = body.encode("latin-1")
            if ctype != op.get_content_type():
                fails.append(f"{name} {path}: placeholder type {ctype}, "
                             f"original {op.get_content_type()}")
            if int(size) != len(body) or sha != hashlib.sha256(body).hexdigest():
                fails.append(f"{name} {path}: placeholder size/sha256 {size}/{sha[:12]} "
                             f"!= original {len(body)}/{hashlib.sha256(body).hexdigest()[:12]}")
            if pp.get_content_type() != "text/plain" or \
                    (pp.get_content_charset() or "us-ascii") != "us-ascii" or \
                    cte(pp) not in ("", "7bit"):
                fails.append(f"{name} {path}: placeholder is not 7bit us-ascii text/plain")
            text = decoded(pp)
            if size not in text.decode("ascii") or sha not in text.decode("ascii"):
                fails.append(f"{name} {path}: placeholder text lacks size or sha256")
            continue
        # Not sealed: it must be text the scanner reads: an ASCII-compatible charset, or
        # UTF-16 (pseudonymised in place), which must still decode as UTF-16.
        maintype = pp.get_content_maintype()
        charset = (pp.get_content_charset() or "").lower()
        body = decoded(pp)
        utf16 = charset in UTF16
        if maintype not in ("text", "message") or (charset.startswith(WIDE) and not utf16) or \
                cte(pp) not in ("", "7bit", "8bit", "binary", "base64", "quoted-printable"):
            fails.append(f"{name} {path}: {pp.get_content_type()} ({charset or '-'}, "
                         f"{cte(pp) or '-'}) left unsealed")
        if utf16:
            try:
                body.decode("utf-16" if charset in ("utf-16", "unicode") else charset)
            except (UnicodeDecodeError, LookupError) as e:
                fails.append(f"{name} {path}: {charset} part no longer decodes: {e}")
        elif body[:2] in (b"\xff\xfe", b"\xfe\xff") or body[:512].count(b"\x00") * 8 >= \
                max(len(body[:512]), 16):
            fails.append(f"{name} {path}: UTF-16/32 text left unsealed")
    for value in planted:
        for v in variants(value):
            if v in out_bytes or v.lower() in out_bytes.lower():
                fails.append(f"{name}: planted {value!r} in the raw output")
                break
        for path, pp in pl:
            body = decoded(pp)
            hay = [body.lower()]
            for enc in ("utf-16", "utf-16-le", "utf-16-be", "utf-32"):
                try:
                    hay.append(body.decode(enc).lower().encode("utf-8"))
                except UnicodeDecodeError:
                    pass
            if any(v.lower() in h for v in variants(value) for h in hay):
                fails.append(f"{name} {path}: planted {value!r} in a decoded part")
    return sealed


def main(argv):
    orig_dir, out_dir = argv[1], argv[2]
    planted, expect = {}, None
    if "--planted" in argv:
        with open(argv[argv.index("--planted") + 1]) as f:
            planted = json.load(f)
    if "--planted-any" in argv:   # every value for every file (names not kept)
        with open(argv[argv.index("--planted-any") + 1]) as f:
            values = sorted({v for vs in json.load(f).values() for v in vs})
        planted = {name: values for name in os.listdir(orig_dir)}
    if "--expect-sealed" in argv:
        expect = int(argv[argv.index("--expect-sealed") + 1])
    fails, total, files = [], 0, 0
    for name in sorted(os.listdir(orig_dir)):
        po = os.path.join(out_dir, name)
        if not name.endswith(".eml") or not os.path.exists(po):
            continue
        with open(os.path.join(orig_dir, name), "rb") as f:
            ob = f.read()
        with open(po, "rb") as f:
            pb = f.read()
        total += check_file(name, ob, pb, planted.get(name, []), fails)
        files += 1
    for line in fails:
        print("seal_check: " + line)
    print(f"seal_check: {files} messages, {total} sealed parts, {len(fails)} failures")
    if files == 0 or (expect is not None and total != expect):
        print(f"seal_check: expected {expect} sealed parts in >0 messages")
        return 1
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
