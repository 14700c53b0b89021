#!/usr/bin/env python3
"""pseudo_recall.py: recall of the pseudonymiser on a generated corpus.

Usage: pseudo_recall.py CORPUS_DIR PSEUDO_DIR

CORPUS_DIR is what scripts/gen-corpus wrote (truth.jsonl + the messages); PSEUDO_DIR holds
the pseudonymised messages under the same relative paths.  Every output message is decoded
independently of mailret (pseudo_views.py: raw bytes, every header with its RFC 2047
words decoded, every text part's payload after its transfer encoding in its charset, HTML
entities, %XX and RFC 2231 parameters).  Each planted identifier is searched for in all of
that.  Prints recall per kind and per (kind, encoding); exits 1 if e-mail, CPR or phone
recall is below 100 %, 0 otherwise (names and IPs are reported).
"""
import json
import os
import re
import sys
from collections import defaultdict

from pseudo_views import views

STRICT = ("email", "cpr", "phone")


def found(kind, value, blob, blob_lower):
    if kind in ("email", "ip"):
        return value.lower() in blob_lower
    if kind in ("cpr", "phone"):
        if value in blob:
            return True
        d = re.sub(r"\D", "", value)
        if kind == "phone":
            d = d[-8:]
            forms = [d, "%s %s" % (d[:4], d[4:]), "%s %s %s %s" % (d[:2], d[2:4], d[4:6], d[6:])]
        else:
            forms = [d, d[:6] + "-" + d[6:], d[:6] + " " + d[6:]]
        for f in forms:
            if f in blob and re.search(r"(?<!\d)" + re.escape(f) + r"(?!\d)", blob):
                return True
        return False
    # names: whole words, any case, any whitespace between words (substring test first:
    # the regular expression is slow on large messages)
    if any(w.lower() not in blob_lower for w in value.split()):
        return False
    pat = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in value.split()) + r"(?!\w)"
    return re.search(pat, blob, re.IGNORECASE) is not None


def main():
    corpus, pseudo = sys.argv[1], sys.argv[2]
    total = defaultdict(int)
    hit = defaultdict(int)
    examples = defaultdict(list)
    n = 0
    with open(os.path.join(corpus, "truth.jsonl"), encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            path = os.path.join(pseudo, rec["file"])
            with open(path, "rb") as g:
                raw = g.read()
            n += 1
            blob = views(raw, binary=False)
            low = blob.lower()
            for ident in rec["identifiers"]:
                kind, enc = ident["kind"], ident["encoding"]
                for key in ((kind, "*"), (kind, enc)):
                    total[key] += 1
                if found(kind, ident["value"], blob, low):
                    for key in ((kind, "*"), (kind, enc)):
                        hit[key] += 1
                    if len(examples[kind]) < 5:
                        examples[kind].append("%s (%s, %s)" % (rec["file"], ident["where"], enc))
    fail = False
    print("pseudonymiser recall on %d messages (planted identifiers no longer present)" % n)
    for key in sorted(total):
        t, h = total[key], hit[key]
        rec = 100.0 * (t - h) / t if t else 100.0
        label = "%s/%s" % key if key[1] != "*" else "%s (all)" % key[0]
        print("  %-24s %6d planted  %6d survived  recall %7.3f %%" % (label, t, h, rec))
        if key[1] == "*" and key[0] in STRICT and h > 0:
            fail = True
    for kind, ex in sorted(examples.items()):
        for e in ex:
            print("  survivor: %s %s" % (kind, e))
    return 1 if fail else 0


if __name__ == "__main__":
    sys.exit(main())
