#!/usr/bin/env python3
"""Check a corpus written by scripts/gen-corpus against its own truth.

  python3 scripts/corpus/verify.py DIR [--count N] [--members K] [--fund-domain D]

Checks: members.csv parses; truth.jsonl has one valid record per message; every file's
SHA-256/size (and the IMAP view: bare LF -> CRLF) matches; Maildir name S=/W=/flags and mtime
agree with the truth; Message-ID unique and equal to the header; Date header shortly before
INTERNALDATE; an independent reference router reproduces every truth route; every planted
identifier is found where and in the encoding the truth says (decoded with Python's email
package and a small RFC 2047 decoder); messages not marked malformed are clean (CRLF only,
no 8-bit header bytes, no line over 998 octets).  Exit 1 with one line per failure (first 50).
"""
import argparse
import base64
import csv
import email
import email.header
import hashlib
import html
import json
import os
import re
import sys
from collections import Counter
from datetime import date, datetime, timezone
from email.policy import compat32
from email.utils import parseaddr, parsedate_to_datetime

EW = re.compile(r"=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=")
CASE_RE = re.compile(r"\bSag (\d{4}-\d{5})\b")
CASE_NUM_RE = re.compile(r"\[Sag #(\d{5})\]")
CPR_RE = re.compile(r"(?<![\d])(\d{6})[- ]?(\d{4})(?![\d])")
ROUTE_RULES = {"case", "sender", "cpr", "none", "own", "auto"}

failures = []


def fail(msg):
    failures.append(msg)


def ew_decode_one(cs, kind, text):
    if kind in "Bb":
        raw = base64.b64decode(text + "=" * (-len(text) % 4))
    else:
        raw = re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]),
                     text.replace("_", " ").encode("ascii"))
    return raw.decode(cs.split("*")[0], "replace")


def decode_ews(s, kind=None):
    """Decode RFC 2047 encoded-words (only those of `kind` if given); whitespace between
    adjacent decoded words is dropped.  Returns (text, n_words_of_kind)."""
    out, pos, prev_ew, n = [], 0, False, 0
    for m in EW.finditer(s):
        if kind and m.group(2).upper() != kind:
            continue
        gap = s[pos:m.start()]
        if not (prev_ew and gap.strip() == ""):
            out.append(gap)
        out.append(ew_decode_one(m.group(1), m.group(2), m.group(3)))
        n += 1
        pos, prev_ew = m.end(), True
    out.append(s[pos:])
    return "".join(out), n


def header_values(data, name):
    """Every occurrence of header `name` anywhere in the file (nested messages too), unfolded,
    as bytes."""
    pat = re.compile(rb"(?im)^" + re.escape(name.encode()) + rb":[ \t]*(.*(?:\r?\n[ \t].*)*)")
    return [re.sub(rb"\r?\n(?=[ \t])", b"", m.group(1)).rstrip(b"\r") for m in pat.finditer(data)]


def sur(s):
    """compat32 header str (surrogateescape'd bytes) -> real text."""
    if s is None:
        return ""
    s = str(s)
    if not any("\udc80" <= c <= "\udcff" for c in s):
        return s
    b = s.encode("utf-8", "surrogateescape")
    try:
        return b.decode("utf-8")
    except UnicodeError:
        return b.decode("latin-1")


def hstr(h):
    """A compat32 header value (str, or Header for 8-bit input) as surrogateescape'd str."""
    if h is None:
        return ""
    if isinstance(h, str):
        return h
    from email.header import Header
    if isinstance(h, Header):
        out = []
        for b, c in email.header.decode_header(h):
            if isinstance(b, str):
                out.append(b)
                continue
            try:
                out.append(b.decode("utf-8"))
            except UnicodeError:
                out.append(b.decode("latin-1"))
        return "".join(out)
    return str(h)


def leaf_parts(msg):
    for part in msg.walk():
        if part.is_multipart():
            continue
        yield part


def decoded_text(part):
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return None
    if payload is None:
        return None
    cs = part.get_content_charset() or "us-ascii"
    try:
        return payload.decode(cs, "replace")
    except LookupError:
        return payload.decode("latin-1")


class View:
    """Lazily decoded views of one message."""

    def __init__(self, data):
        self.data = data
        self.msg = email.message_from_bytes(data, policy=compat32)
        self._texts = None

    def texts(self):
        """[(cte, subtype, decoded str, raw payload str)] of text parts."""
        if self._texts is None:
            self._texts = []
            for p in leaf_parts(self.msg):
                if p.get_content_maintype() != "text":
                    continue
                cte = (p.get("Content-Transfer-Encoding") or "7bit").strip().lower()
                raw = p.get_payload(decode=False)
                raw = raw if isinstance(raw, str) else ""
                t = decoded_text(p)
                if t is not None:
                    self._texts.append((cte, p.get_content_subtype(), t, sur(raw)))
        return self._texts

    def filenames(self):
        out = []
        for p in leaf_parts(self.msg):
            ct = hstr(p.get("Content-Type"))
            cd = hstr(p.get("Content-Disposition"))
            if "name" not in ct and "name" not in cd:
                continue
            names = []
            for getter in (lambda: p.get_filename(), lambda: p.get_param("name")):
                try:
                    v = getter()
                except Exception:
                    v = None
                if isinstance(v, tuple):
                    v = email.utils.collapse_rfc2231_value(v)
                if v:
                    names.append(sur(v))
            out.append((sur(ct) + "\n" + sur(cd), names))
        return out


def check_identifier(v, ident, recno):
    kind, value, where, enc = ident["kind"], ident["value"], ident["where"], ident["encoding"]
    loc = where.split(":", 1)[1] if where.startswith("rfc822:") else where
    data = v.data

    def bad(why):
        fail("truth line %d: %s %r (%s, %s) %s" % (recno, kind, value, where, enc, why))

    if kind == "cpr":
        digits = re.sub(r"\D", "", value)
        if len(digits) != 10 or not re.fullmatch(r"\d{6}[- ]?\d{4}", value):
            return bad("is not a CPR as written")
        if "mod11" not in ident:
            return bad("has no mod11 field")
        m11 = sum(int(c) * w for c, w in zip(digits, (4, 3, 2, 7, 6, 5, 4, 3, 2, 1))) % 11 == 0
        if ident["mod11"] != m11:
            return bad("mod11 field is wrong")
        try:
            dd, mm, yy, c7 = int(digits[0:2]), int(digits[2:4]), int(digits[4:6]), int(digits[6])
            if c7 in (0, 1, 2, 3):
                yr = 1900 + yy
            elif c7 in (4, 9):
                yr = 2000 + yy if yy <= 36 else 1900 + yy
            else:
                yr = 2000 + yy if yy <= 57 else 1800 + yy
            date(yr, mm, dd)
        except ValueError:
            return bad("is not a valid calendar date")
    if loc.startswith("header:") or loc == "received":
        name = "Received" if loc == "received" else loc.split(":", 1)[1]
        vals = header_values(data, name)
        if not vals:
            return bad("header not present")
        if enc in ("raw", "raw-latin1"):
            needle = value.encode("utf-8" if enc == "raw" else "latin-1")
            if not any(needle in x for x in vals):
                return bad("not found raw in header")
            return
        if enc in ("2047-B", "2047-Q"):
            for x in vals:
                t, n = decode_ews(x.decode("latin-1"), enc[-1])
                if n and value in t:
                    return
            return bad("not found in %s encoded-words" % enc[-1])
        return bad("unknown encoding for a header")
    if loc == "dsn":
        if value.encode() not in data:
            bad("not in delivery-status")
        return
    if loc == "filename":
        fns = v.filenames()
        if enc == "raw":
            needle = value.encode("utf-8")
            if not any(needle in (h.encode("utf-8", "replace")) for h, _ in fns):
                bad("not raw in a filename parameter")
            return
        if enc == "rfc2231":
            if not any("*=" in h and any(value in n for n in names) for h, names in fns):
                bad("not in an RFC 2231 filename/name parameter")
            return
        if enc in ("2047-B", "2047-Q"):
            for h, _ in fns:
                t, n = decode_ews(h, enc[-1])
                if n and value in t:
                    return
            return bad("not in %s encoded-words of a filename/name parameter" % enc[-1])
        return bad("unknown encoding for filename")
    if loc.startswith("body:") or loc == "html":
        texts = v.texts()
        want_html = loc == "html"
        if enc in ("raw", "raw-latin1"):
            needle = value.encode("utf-8" if enc == "raw" else "latin-1")
            if needle not in data:
                return bad("not found raw in the file")
            if not any(value in t for cte, st, t, _ in texts
                       if cte in ("7bit", "8bit", "binary") and (st == "html") == want_html):
                return bad("not found in an unencoded %s part" % ("html" if want_html else "text"))
            return
        if enc in ("qp", "base64"):
            cte_w = "quoted-printable" if enc == "qp" else "base64"
            cands = [(t, raw) for cte, st, t, raw in texts
                     if cte == cte_w and (st == "html") == want_html]
            if not any(value in t for t, _ in cands):
                return bad("not found in a %s %s part" % (cte_w, "html" if want_html else "text"))
            if ident.get("split") and not any(raw.count(value) < t.count(value) for t, raw in cands):
                return bad("marked split but never split by a soft line break")
            if enc == "qp" and ident.get("split") and not re.search(rb"=\r?\n", data):
                return bad("no soft line break")
            return
        if enc == "html-entity":
            for cte, st, t, _ in texts:
                if st == "html" and value in html.unescape(t) and value not in t:
                    return
            return bad("not found entity-encoded in an html part")
        return bad("unknown encoding for a body")
    bad("unknown where")


EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
IPV4_RE = re.compile(r"(?<![\d.])(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?![\d.])")
IPV6_RE = re.compile(r"(?<![0-9A-Za-z:])([0-9a-f]{1,4}(?::[0-9a-f]{1,4})*::[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)")
CPR_LOOSE_RE = re.compile(r"(?<![\dA-Za-z])(\d{6})[- ]?(\d{4})(?![\dA-Za-z])")
PHONE_RE = re.compile(r"(?<![\d+])((?:\+45 ?|0045 ?)?\d{2} ?\d{2} ?\d{2} ?\d{2})(?!\d)")
SKIP_HEADERS = re.compile(rb"(?im)^(message-id|references|in-reply-to|dkim-signature|"
                          rb"arrival-date|date):.*(?:\r?\n[ \t].*)*")


def check_complete(v, rec, fund_domain, recno):
    """Everything that looks like an address, CPR, phone or IP must be in the truth."""
    known = {}
    for i in rec["identifiers"]:
        known.setdefault(i["kind"], set()).add(i["value"])
    emails = {e.lower() for e in known.get("email", ())}
    cprs = known.get("cpr", set())
    hdr = SKIP_HEADERS.sub(b"", v.data)
    hay = [decode_ews(hdr.decode("latin-1"))[0]]
    hay += [t for _, _, t, _ in v.texts()]
    hay += [html.unescape(t) for _, st, t, _ in v.texts() if st == "html"]
    hay += [n for _, names in v.filenames() for n in names]
    for h in hay:
        for e in EMAIL_RE.findall(h):
            el = e.lower().strip(".")
            dom = el.split("@")[1]
            if dom == fund_domain or el.startswith("mailer-daemon@") or el in emails:
                continue
            if any(el in x for x in emails):    # a substring of a longer listed address
                continue
            fail("truth line %d: address %r in the message is not in the truth" % (recno, e))
        for m in CPR_LOOSE_RE.finditer(h):
            if h[max(0, m.start() - 1):m.start()] == "+":   # +45 and eight digits: a phone
                continue
            if m.group(0) not in cprs:
                fail("truth line %d: CPR-like %r in the message is not in the truth" % (recno, m.group(0)))
    for h in [x.decode("latin-1") for x in header_values(v.data, "Received")] + \
            [x.decode("latin-1") for x in header_values(v.data, "X-Originating-IP")] + \
            [x.decode("latin-1") for x in header_values(v.data, "Authentication-Results")]:
        for ip in IPV4_RE.findall(h) + IPV6_RE.findall(h):
            if ip not in known.get("ip", ()):
                fail("truth line %d: IP %r in a header is not in the truth" % (recno, ip))
    phones = known.get("phone", set())
    for _, st, t, _ in v.texts():
        if st == "rfc822-headers":
            continue
        for m in PHONE_RE.finditer(t):
            p = m.group(1)
            if p not in phones and not any(p in c for c in cprs):
                fail("truth line %d: phone-like %r in the message is not in the truth" % (recno, p))


def ref_route(v, reg, fund_domain):
    """An independent implementation of the routing rules (see docs/CORPUS.md)."""
    msg = v.msg
    frm = sur(hstr(msg.get("From")))
    addr = parseaddr(decode_ews(frm)[0])[1].lower()
    local, _, dom = addr.partition("@")
    if dom == fund_domain.lower():
        return {"rule": "own", "member": None, "case": None}
    auto = (msg.get("Auto-Submitted", "no").strip().lower() != "no"
            or local in ("mailer-daemon", "postmaster")
            or msg.get_content_type() == "multipart/report"
            or msg.get("X-Autoreply") is not None
            or (msg.get("Precedence") or "").strip().lower() in ("auto_reply", "bulk", "junk"))
    if auto:
        return {"rule": "auto", "member": None, "case": None}
    subj = decode_ews(sur(hstr(msg.get("Subject"))))[0]
    for m in CASE_RE.finditer(subj):
        if m.group(1) in reg["case_owner"]:
            return {"rule": "case", "member": reg["case_owner"][m.group(1)], "case": m.group(1)}
    for m in CASE_NUM_RE.finditer(subj):
        if m.group(1) in reg["casenum"]:
            c = reg["casenum"][m.group(1)]
            return {"rule": "case", "member": reg["case_owner"][c], "case": c}
    if addr in reg["email_owner"]:
        return {"rule": "sender", "member": reg["email_owner"][addr], "case": None}
    hay = [subj] + [t for cte, st, t, _ in v.texts_top()]
    for h in hay:
        for m in CPR_RE.finditer(h):
            c = m.group(1) + m.group(2)
            if c in reg["cpr_owner"]:
                return {"rule": "cpr", "member": reg["cpr_owner"][c], "case": None}
    return {"rule": "none", "member": None, "case": None}


def texts_top(self):
    """Text parts of the message itself (not of attached message/rfc822 parts)."""
    out = []

    def walk(p):
        if p.get_content_maintype() == "message":
            return
        if p.is_multipart():
            for c in p.get_payload():
                walk(c)
        elif p.get_content_maintype() == "text" and p.get_content_type() != "text/rfc822-headers":
            t = decoded_text(p)
            if t is not None:
                out.append((None, p.get_content_subtype(), t, None))
    walk(self.msg)
    return out


View.texts_top = texts_top


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--count", type=int)
    ap.add_argument("--members", type=int)
    ap.add_argument("--fund-domain", default="akasse.example")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    d = a.dir

    # ---- members.csv
    reg = {"case_owner": {}, "casenum": {}, "email_owner": {}, "cpr_owner": {}}
    ids = set()
    try:
        with open(os.path.join(d, "members.csv"), encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeError, csv.Error) as e:
        print("corpus verify: members.csv: %s" % e)
        return 1
    if not rows or rows[0] != ["member_id", "cpr", "name", "emails", "cases"]:
        fail("members.csv: bad header row %r" % (rows[:1],))
    for n, r in enumerate(rows[1:], 2):
        if len(r) != 5:
            fail("members.csv line %d: %d fields" % (n, len(r)))
            continue
        mid, cpr, name, emails, cases = r
        if not re.fullmatch(r"M\d{5}", mid) or mid in ids:
            fail("members.csv line %d: bad or duplicate member_id %r" % (n, mid))
        ids.add(mid)
        if not re.fullmatch(r"\d{6}-\d{4}", cpr):
            fail("members.csv line %d: bad cpr %r" % (n, cpr))
        reg["cpr_owner"][cpr.replace("-", "")] = mid
        if not name.strip():
            fail("members.csv line %d: empty name" % n)
        for e in filter(None, emails.split(";")):
            if "@" not in e or e.lower() in reg["email_owner"]:
                fail("members.csv line %d: bad or duplicate address %r" % (n, e))
            reg["email_owner"][e.lower()] = mid
        for c in filter(None, cases.split(";")):
            if not re.fullmatch(r"\d{4}-\d{5}", c) or c.split("-")[1] in reg["casenum"]:
                fail("members.csv line %d: bad or duplicate case %r" % (n, c))
            reg["case_owner"][c] = mid
            reg["casenum"][c.split("-")[1]] = c
    if a.members is not None and len(ids) != a.members:
        fail("members.csv: %d members, expected %d" % (len(ids), a.members))

    # ---- truth and messages
    try:
        tf = open(os.path.join(d, "truth.jsonl"), encoding="utf-8")
    except OSError as e:
        print("corpus verify: %s" % e)
        return 1
    mbox = None
    mids = set()
    stats = Counter()
    n = 0
    total = 0
    sizes = []
    for recno, line in enumerate(tf, 1):
        n += 1
        try:
            rec = json.loads(line)
        except ValueError as e:
            fail("truth line %d: not JSON: %s" % (recno, e))
            continue
        for k in ("file", "message_id", "internaldate", "size", "sha256", "route", "malformed",
                  "identifiers"):
            if k not in rec:
                fail("truth line %d: missing %s" % (recno, k))
        if any(k not in rec for k in ("file", "sha256", "size")):
            continue
        path = rec["file"] if os.path.isabs(rec["file"]) else os.path.join(d, rec["file"])
        try:
            if "mbox_offset" in rec:
                if mbox is None:
                    mbox = open(path, "rb")
                mbox.seek(rec["mbox_offset"])
                q = mbox.read(rec["mbox_length"])
                data = re.sub(rb"(?m)^>(>*From )", rb"\1", q)
                mbox.seek(rec["mbox_offset"] - 200 if rec["mbox_offset"] > 200 else 0)
            else:
                with open(path, "rb") as f:
                    data = f.read()
        except OSError as e:
            fail("truth line %d: %s" % (recno, e))
            continue
        total += len(data)
        sizes.append(len(data))
        if hashlib.sha256(data).hexdigest() != rec["sha256"] or len(data) != rec["size"]:
            fail("truth line %d: sha256/size mismatch for %s" % (recno, rec["file"]))
        ib = re.sub(rb"(?<!\r)\n", b"\r\n", data)
        if rec.get("imap_sha256") != hashlib.sha256(ib).hexdigest() or rec.get("imap_size") != len(ib):
            fail("truth line %d: imap_sha256/imap_size mismatch" % recno)
        try:
            idate = datetime.strptime(rec["internaldate"], "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=timezone.utc)
        except (ValueError, KeyError):
            fail("truth line %d: bad internaldate" % recno)
            continue
        its = int(idate.timestamp())
        if "mbox_offset" not in rec:
            st = os.stat(path)
            if int(st.st_mtime) != its:
                fail("truth line %d: mtime %d != internaldate %d" % (recno, st.st_mtime, its))
            base = os.path.basename(path)
            if ":2," in base:
                mS = re.search(r",S=(\d+)", base)
                mW = re.search(r",W=(\d+)", base)
                if not mS or int(mS.group(1)) != len(data) or not mW or int(mW.group(1)) != len(ib):
                    fail("truth line %d: maildir S=/W= wrong in %s" % (recno, base))
                fl = base.split(":2,")[1]
                want = "".join(c for c, f in (("F", "\\Flagged"), ("R", "\\Answered"),
                                               ("S", "\\Seen")) if f in rec.get("flags", []))
                if fl != want:
                    fail("truth line %d: maildir flags %r, truth %r" % (recno, fl, want))
        v = View(data)
        hm = sur(hstr(v.msg.get("Message-ID"))).strip()
        if hm != rec["message_id"]:
            fail("truth line %d: Message-ID header %r != truth %r" % (recno, hm, rec["message_id"]))
        if rec["message_id"] in mids:
            fail("truth line %d: duplicate Message-ID %s" % (recno, rec["message_id"]))
        mids.add(rec["message_id"])
        try:
            dh = parsedate_to_datetime(v.msg.get("Date"))
            lag = (idate - dh).total_seconds()
            if not (0 <= lag <= 3600):
                fail("truth line %d: Date header %s is %ds from internaldate" % (recno, v.msg.get("Date"), lag))
        except (TypeError, ValueError):
            fail("truth line %d: bad Date header" % recno)
        route = rec["route"]
        if route.get("rule") not in ROUTE_RULES:
            fail("truth line %d: bad route rule %r" % (recno, route.get("rule")))
        want = ref_route(v, reg, a.fund_domain)
        got = {k: route.get(k) for k in ("rule", "member", "case")}
        if want != got:
            fail("truth line %d: route %s but the reference router says %s" % (recno, got, want))
        stats["route:" + str(route.get("rule"))] += 1
        # cleanliness of messages not marked malformed
        defects = set(rec.get("defects", []))
        if rec["malformed"] != bool(defects):
            fail("truth line %d: malformed flag and defects disagree" % recno)
        hdr_end = data.find(b"\r\n\r\n")
        if not rec["malformed"]:
            if re.search(rb"(?<!\r)\n", data):
                fail("truth line %d: bare LF but not marked malformed" % recno)
            if hdr_end < 0 or re.search(rb"[\x80-\xff]", data[:hdr_end]):
                fail("truth line %d: 8-bit header bytes but not marked malformed" % recno)
            if any(len(x) > 998 for x in data.split(b"\r\n")):
                fail("truth line %d: line over 998 octets but not marked malformed" % recno)
        else:
            stats["malformed"] += 1
            for dfc in defects:
                stats["defect:" + dfc] += 1
            if "bare-lf" in defects and not re.search(rb"(?<!\r)\n", data):
                fail("truth line %d: bare-lf defect without a bare LF" % recno)
            if "long-line" in defects and not any(len(x) > 998 for x in data.split(b"\n")):
                fail("truth line %d: long-line defect without a long line" % recno)
        check_complete(v, rec, a.fund_domain, recno)
        for ident in rec["identifiers"]:
            stats["id:%s/%s" % (ident.get("kind"), ident.get("encoding"))] += 1
            if ident.get("kind") == "cpr" and ident.get("mod11") is False:
                stats["cpr:mod11-fail"] += 1
            check_identifier(v, ident, recno)
    if a.count is not None and n != a.count:
        fail("truth.jsonl: %d records, expected %d" % (n, a.count))
    if n == 0:
        fail("truth.jsonl: empty")
    if not a.quiet:
        sizes.sort()
        print("corpus verify: %d messages, %d members, %.1f MB, median %d B, max %d B" % (
            n, len(ids), total / 1e6, sizes[len(sizes) // 2] if sizes else 0,
            sizes[-1] if sizes else 0))
        print("  " + ", ".join("%s=%d" % kv for kv in sorted(stats.items())))
    if failures:
        for x in failures[:50]:
            print("corpus verify: FAIL: " + x)
        if len(failures) > 50:
            print("corpus verify: ... %d more failures" % (len(failures) - 50))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
