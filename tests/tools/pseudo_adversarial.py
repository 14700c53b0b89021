#!/usr/bin/env python3
"""pseudo_adversarial.py: adversarial recall suite for the pseudonymiser.

  pseudo_adversarial.py gen OUT_DIR          write OUT_DIR/eml/*.eml and OUT_DIR/truth.jsonl
  pseudo_adversarial.py check OUT_DIR PSEUDO_DIR

gen plants identifiers in the places real mail puts them (after '_', letters, no-break and
thin spaces, typographic quotes and dashes, other punctuation; phone numbers grouped with
no-break spaces; CPR with an en dash; names in HTML character references, forwarded header
blocks, reply attributions, sign-offs, the genitive; folded iCalendar / vCard lines; IPs in
spam-report and authentication headers and in reverse-DNS host names; non-ASCII addresses),
each class in every encoding it can take: raw UTF-8, raw windows-1252, quoted-printable with
a soft break inside the identifier, base64, HTML with character references, RFC 2047 B and
Q, RFC 2231 continued file names and nested message/rfc822.

check decodes every message independently of mailret (Python's email package, its own HTML
unescaping and RFC 5545 unfolding) and looks for each planted identifier with its own
patterns (nothing here is shared with the C scanner).  It also runs the reference scanner
over the decoded input, so a planted identifier the oracle itself cannot see is reported
as a broken case, not as a recall.  Prints recall per class and encoding; exits 1 when an
e-mail, CPR or phone number, or a claimed name or IP, survives anywhere, or when a value
that must stay (calendar date-times) was replaced.
"""
import base64
import json
import os
import quopri
import re
import sys
import urllib.parse
import zlib
from collections import defaultdict

from pseudo_views import views

FUND = "post@akasse.example"
SENDER_NAME = "Mette Mølgaard"
SENDER = "mette.molgaard@eksempel.dk"

# Separators written before/after/inside identifiers: (label, text, cp1252-encodable).
SEPS = [
    ("nbsp", "\u00a0", True), ("narrow-nbsp", "\u202f", False), ("figure-space", "\u2007", False),
    ("thin-space", "\u2009", False), ("zwsp", "\u200b", False), ("soft-hyphen", "\u00ad", True),
    ("ldquo", "\u201c", True), ("rdquo", "\u201d", True), ("lsquo", "\u2018", True),
    ("rsquo", "\u2019", True), ("bdquo", "\u201e", True), ("laquo", "\u00ab", True),
    ("raquo", "\u00bb", True), ("ndash", "\u2013", True), ("mdash", "\u2014", True),
    ("middot", "\u00b7", True), ("bullet", "\u2022", True), ("sect", "\u00a7", True),
    ("pilcrow", "\u00b6", True), ("copy", "\u00a9", True), ("underscore", "_", True),
]

CPRS = ["0101901234", "3112851238", "2902001234", "1507734321", "0506072345", "1210880017"]
PHONES = ["20123456", "31415926", "42424242", "51525354", "60616263", "71727374", "88990011",
          "93949596"]


def fmt_cpr(c, sep="-"):
    return c[:6] + sep + c[6:]


class Case:
    def __init__(self, cls, kind, value, text, where="body", html_text=None, cp1252=True,
                 encodings=None):
        self.cls, self.kind, self.value, self.text = cls, kind, value, text
        self.where, self.html_text, self.cp1252 = where, html_text, cp1252
        self.encodings = encodings


def body_cases():
    cases = []
    k = 0

    def cpr():
        nonlocal k
        k += 1
        return CPRS[k % len(CPRS)]

    def phone():
        nonlocal k
        k += 1
        return PHONES[k % len(PHONES)]

    # Word boundaries before and after CPR, phone and e-mail.
    for label, s, cp in SEPS:
        c = cpr()
        cases.append(Case("cpr-after-" + label, "cpr", c, "Se venligst " + s + c + s + " tak.", cp1252=cp))
        p = phone()
        cases.append(Case("phone-after-" + label, "phone", p, "Ring til" + s + p + s + " i dag.", cp1252=cp))
        if label != "underscore":
            cases.append(Case("email-after-" + label, "email", "k.holm@eksempel.dk",
                              "Skriv til" + s + "k.holm@eksempel.dk" + s + " venligst.", cp1252=cp))
    c = cpr()
    cases.append(Case("cpr-filename-underscore", "cpr", c, "Vedh\u00e6ftet l\u00e6geerkl\u00e6ring_" + c + ".pdf"))
    c = cpr()
    cases.append(Case("cpr-letters-before", "cpr", c, "Fil: CPR" + c + ".pdf og cprnr" + c))
    c = cpr()
    cases.append(Case("cpr-letters-after", "cpr", c, "Fil: " + c + "lon.pdf"))
    c = cpr()
    cases.append(Case("cpr-dash-letters", "cpr", c, "Fil: loenseddel-" + fmt_cpr(c) + "-2026.pdf"))
    p = phone()
    cases.append(Case("phone-letters-before", "phone", p, "Tlf" + p + " eller mobil" + p))
    # Separators inside the numbers.
    for label, s, cp in SEPS[:5] + [("space", " ", True)]:
        c = cpr()
        cases.append(Case("cpr-sep-" + label, "cpr", c, "CPR: " + fmt_cpr(c, s) + " slut", cp1252=cp))
        p = phone()
        cases.append(Case("phone-grouped2-" + label, "phone", p,
                          "Tlf. " + s.join([p[0:2], p[2:4], p[4:6], p[6:8]]) + " slut", cp1252=cp))
        p = phone()
        cases.append(Case("phone-grouped4-" + label, "phone", p,
                          "Tlf. " + p[:4] + s + p[4:] + " slut", cp1252=cp))
        p = phone()
        cases.append(Case("phone-intl-" + label, "phone", p,
                          "Tlf. +45" + s + s.join([p[0:2], p[2:4], p[4:6], p[6:8]]) + " slut", cp1252=cp))
    for label, s in [("ndash", "\u2013"), ("mdash", "\u2014"), ("hyphen", "\u2010"),
                     ("nb-hyphen", "\u2011"), ("minus", "\u2212")]:
        c = cpr()
        cases.append(Case("cpr-sep-" + label, "cpr", c, "CPR " + fmt_cpr(c, s) + ".",
                          cp1252=label in ("ndash", "mdash")))
    p = phone()
    cases.append(Case("phone-grouped2-dash", "phone", p, "Tlf. " + "-".join([p[0:2], p[2:4], p[4:6], p[6:8]])))
    p = phone()
    cases.append(Case("phone-grouped2-dot", "phone", p, "Tlf. " + ".".join([p[0:2], p[2:4], p[4:6], p[6:8]])))
    # Non-ASCII addresses (RFC 6531) and IDNA.
    cases.append(Case("email-utf8-local", "email", "s\u00f8ren.\u00f8rum@eksempel.dk",
                      "Mail: s\u00f8ren.\u00f8rum@eksempel.dk."))
    cases.append(Case("email-utf8-domain", "email", "j\u00f8rgen@bl\u00e5b\u00e6r.dk",
                      "Mail j\u00f8rgen@bl\u00e5b\u00e6r.dk i dag", cp1252=True))
    cases.append(Case("email-idna", "email", "kontakt@xn--blbr-qoa.dk", "Mail kontakt@xn--blbr-qoa.dk nu"))
    cases.append(Case("email-apostrophe", "email", "o'brien@eksempel.ie", "Mail o'brien@eksempel.ie nu"))
    cases.append(Case("email-underscore", "email", "anne_marie@eksempel.dk", "Mail anne_marie@eksempel.dk nu"))
    # Names the design claims: the sender's, written with references, quotes, genitive.
    for label, s, cp in [("ldquo", "\u201c", True), ("laquo", "\u00ab", True), ("nbsp", "\u00a0", True),
                         ("underscore", "_", True), ("bdquo", "\u201e", True), ("ndash", "\u2013", True)]:
        cases.append(Case("name-after-" + label, "name", "M\u00f8lgaard",
                          "Sagen " + s + "M\u00f8lgaard" + s + " er lukket.", cp1252=cp))
    cases.append(Case("name-nbsp-between", "name", SENDER_NAME, "Kontakt Mette\u00a0M\u00f8lgaard her."))
    cases.append(Case("name-genitive-s", "name", "M\u00f8lgaard", "Det er M\u00f8lgaards sag."))
    cases.append(Case("name-genitive-apos", "name", "M\u00f8lgaard", "Det er M\u00f8lgaard's sag."))
    cases.append(Case("name-genitive-rsquo", "name", "M\u00f8lgaard", "Det er M\u00f8lgaard\u2019s sag."))
    cases.append(Case("name-html-named", "name", SENDER_NAME, None,
                      html_text="Hilsen Mette M&oslash;lgaard og mere", encodings=["html"]))
    cases.append(Case("name-html-dec", "name", SENDER_NAME, None,
                      html_text="Hilsen Mette M&#248;lgaard og mere", encodings=["html"]))
    cases.append(Case("name-html-hex", "name", SENDER_NAME, None,
                      html_text="Hilsen Mette M&#xF8;lgaard og mere", encodings=["html"]))
    cases.append(Case("name-html-upper", "name", "\u00d8stergaard", None,
                      html_text="<p>Fra: Lone &Oslash;stergaard &lt;lone.oe@eksempel.dk&gt;</p>"
                                "<p>Vi ses, &Oslash;stergaard</p>", encodings=["html"]))
    # Names in inline-forwarded header blocks and attributions (new persons).
    cases.append(Case("name-fwd-fra", "name", "Karen \u00d8stergaard",
                      "-----Oprindelig meddelelse-----\nFra: Karen \u00d8stergaard <karen.oe@eksempel.org>\n"
                      "Sendt: 5. oktober 2026 10:00\nTil: A-kassen <post@akasse.example>\n"
                      "Emne: Sag\n\nHej, Karen \u00d8stergaard skrev det."))
    cases.append(Case("name-fwd-til", "name", "Bent Kj\u00e6r",
                      "Fra: A-kassen\nSendt: 5. oktober 2026\nTil: Bent Kj\u00e6r <bent.kjaer@eksempel.org>\n"
                      "Cc: Lis Bach <lis@eksempel.org>\n\nBent Kj\u00e6r har ringet."))
    cases.append(Case("name-fwd-outlook-mailto", "name", "Hanne Friis",
                      "From: Hanne Friis [mailto:hanne.friis@eksempel.org]\nSent: Monday\nTo: post\n\n"
                      "Ring til Hanne Friis."))
    cases.append(Case("name-attrib-da", "name", "Ole Bruun",
                      "Den 5. okt. 2026 kl. 10.00 skrev Ole Bruun <ole.bruun@eksempel.org>:\n> tekst\n"
                      "Vi har talt med Ole Bruun."))
    cases.append(Case("name-attrib-en", "name", "Ida Lund",
                      "On Mon, Oct 5, 2026 at 10:00 AM Ida Lund <ida.lund@eksempel.org> wrote:\n> text\n"
                      "Ida Lund called."))
    cases.append(Case("name-mvh-one-line", "name", "Per Holm", "Tak for hj\u00e6lpen.\nMvh Per Holm\n"))
    cases.append(Case("name-mvh-dot-one-line", "name", "Rikke Dahl", "Tak.\nMvh. Rikke Dahl\n"))
    return cases


def cal_cases():
    """Folded text/calendar and text/vcard parts (folds inside the identifiers)."""
    ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\nBEGIN:VEVENT\r\n"
           "UID:abc-1\r\nDTSTAMP:20261001T080000Z\r\nDTSTART:20261015T100000\r\n"
           "DTEND:20261015T110000\r\n"
           "ORGANIZER;CN=A-kassen:mailto:post@akasse.example\r\n"
           "ATTENDEE;CN=Deltager;RSVP=TRUE:mailto:lars.vinther.pede\r\n rsen@eksempel.dk\r\n"
           "DESCRIPTION:M\u00f8de om sag. CPR 150773\r\n 4321 og tlf 42 42 \r\n\t42 42.\r\n"
           "END:VEVENT\r\nEND:VCALENDAR\r\n")
    vcf = ("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Kontakt\r\n"
           "EMAIL:sofie.b\r\n ech@eksempel.dk\r\nTEL;TYPE=cell:+45 51 52\r\n  53 54\r\n"
           "NOTE:cpr 05060\r\n 72345\r\nEND:VCARD\r\n")
    return [
        ("calendar", "text/calendar", ics, [("email", "lars.vinther.pedersen@eksempel.dk"),
                                            ("cpr", "1507734321"), ("phone", "42424242")],
         ["20261015T100000", "20261015T110000", "20261001T080000Z"]),
        ("vcard", "text/vcard", vcf, [("email", "sofie.bech@eksempel.dk"), ("phone", "51525354"),
                                      ("cpr", "0506072345")], []),
    ]


HEADER_IPS = [
    ("x-forefront", "X-Forefront-Antispam-Report",
     "CIP:188.162.151.16;CTRY:DK;LANG:da;SCL:1;SRV:;IPV:NLI;SFV:NSPM;H:mail.eksempel.dk;PTR:mail.eksempel.dk;CAT:NONE",
     "188.162.151.16"),
    ("x-spam-report", "X-Spam-Report",
     "Content analysis details: (0.1 points)\r\n\t* 0.1 RCVD_IN_X [Received: from 77.68.12.34]", "77.68.12.34"),
    ("x-spam-status", "X-Spam-Status",
     "No, score=-0.1 required=5.0 tests=RDNS_DYNAMIC relay=91.100.20.30 autolearn=no", "91.100.20.30"),
    ("x-originating-ip", "X-Originating-IP", "[85.191.2.3]", "85.191.2.3"),
    ("x-sender-ip", "X-Sender-IP", "62.107.9.8", "62.107.9.8"),
    ("auth-results-remote", "Authentication-Results",
     "mx.akasse.example; spf=pass smtp.mailfrom=x.dk smtp.remote-ip=93.176.4.5;", "93.176.4.5"),
    ("auth-results-client", "Authentication-Results",
     "mx.akasse.example; iprev=pass policy.iprev=2001:db8:1:2::42 client-ip=94.18.7.6", "94.18.7.6"),
    ("auth-results-v6", "Authentication-Results",
     "mx.akasse.example; iprev=pass policy.iprev=2001:db8:1:2::42", "2001:db8:1:2::42"),
    ("received-spf", "Received-SPF",
     "Pass (mx: domain of x.dk designates 80.62.1.2 as permitted sender) client-ip=80.62.1.2;", "80.62.1.2"),
    ("arc-auth", "ARC-Authentication-Results",
     "i=1; mx.microsoft.com 1; spf=pass (sender ip is 87.116.3.4) smtp.mailfrom=x.dk", "87.116.3.4"),
    ("rdns-dashed", "Received",
     "from 188-162-151-17.dynamic.eksempel.net (unknown [10.0.0.1]) by mx.akasse.example; Mon, 5 Oct 2026 10:00:00 +0200",
     "188.162.151.17"),
    ("rdns-comcast", "Received",
     "from c-73-1-2-3.hsd1.ca.comcast.net (HELO x) by mx.akasse.example; Mon, 5 Oct 2026 10:00:00 +0200",
     "73.1.2.3"),
    ("rdns-host-dotted", "Received",
     "from host188.162.151.18.eksempel.net by mx.akasse.example; Mon, 5 Oct 2026 10:00:00 +0200",
     "188.162.151.18"),
    ("received-v6", "Received",
     "from mail.x.dk ([IPv6:2a02:aa1:1001:abcd::5]) by mx.akasse.example; Mon, 5 Oct 2026 10:00:00 +0200",
     "2a02:aa1:1001:abcd::5"),
    ("x-ms-client-ip", "X-MS-Exchange-CrossTenant-OriginalClientIP", "81.19.2.1", "81.19.2.1"),
]

ENCODINGS = ["raw-utf8", "raw-cp1252", "qp", "b64", "html", "2047-B", "2047-Q", "rfc2231", "rfc822"]


def qp_soft(data, split_at):
    """Quoted-printable of data with a soft break before byte split_at (and elsewhere as
    needed), lines <= 76."""
    enc = quopri.encodestring(data).replace(b"\r\n", b"\n")
    # encode again by hand so that we can force the soft break inside the identifier
    out, line = [], b""
    for i, b in enumerate(data):
        ch = bytes([b])
        if ch == b"\n":
            out.append(line + b"\n")
            line = b""
            continue
        if b == 61 or b > 126 or (b < 32 and b != 9):
            piece = b"=%02X" % b
        else:
            piece = ch
        if i == split_at or len(line) + len(piece) > 75:
            out.append(line + b"=\n")
            line = b""
        line += piece
    out.append(line)
    del enc
    return b"".join(out)


def html_escape(s):
    """HTML with character references: every non-ASCII character and some ASCII ones."""
    o = []
    for i, ch in enumerate(s):
        if ch == "\n":
            o.append("<br>\n")
        elif ch == "<":
            o.append("&lt;")
        elif ch == ">":
            o.append("&gt;")
        elif ch == "&":
            o.append("&amp;")
        elif ch == "\u00a0":
            o.append("&nbsp;")
        elif ord(ch) > 127:
            o.append("&#%d;" % ord(ch) if i % 2 else "&#x%X;" % ord(ch))
        elif ch == "@":
            o.append("&#64;")
        else:
            o.append(ch)
    return "".join(o)


def headers(subject_raw, extra=""):
    return ("From: =?utf-8?q?Mette_M=C3=B8lgaard?= <%s>\r\nTo: A-kassen <%s>\r\n"
            "Subject: %s\r\nDate: Mon, 05 Oct 2026 10:00:00 +0200\r\n"
            "Message-ID: <adv-%s@eksempel.dk>\r\nMIME-Version: 1.0\r\n%s" %
            (SENDER, FUND, subject_raw, zlib.crc32(subject_raw.encode()), extra))


def build(case, enc, n):
    text = case.text
    if enc == "html":
        body = case.html_text if case.html_text is not None else html_escape(text)
        data = ("<html><body><p>" + body + "</p></body></html>\r\n").encode("utf-8")
        return (headers("Sag %d" % n) + "Content-Type: text/html; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + data
    if text is None:
        return None
    if enc == "raw-utf8":
        return (headers("Sag %d" % n) + "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + text.replace("\n", "\r\n").encode() + b"\r\n"
    if enc == "raw-cp1252":
        if not case.cp1252:
            return None
        try:
            data = text.replace("\n", "\r\n").encode("cp1252")
        except UnicodeEncodeError:
            return None
        return (headers("Sag %d" % n) + "Content-Type: text/plain; charset=windows-1252\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + data + b"\r\n"
    if enc == "qp":
        data = text.encode()
        v = case.value.encode()
        at = data.find(v[:4]) if case.kind != "name" else data.find(case.value.split()[0].encode())
        split = at + 3 if at >= 0 else len(data) // 2
        return (headers("Sag %d" % n) + "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + \
            qp_soft(data, split).replace(b"\n", b"\r\n") + b"\r\n"
    if enc == "b64":
        data = base64.encodebytes(text.replace("\n", "\r\n").encode()).replace(b"\n", b"\r\n")
        return (headers("Sag %d" % n) + "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n").encode() + data
    if enc in ("2047-B", "2047-Q"):
        if "\n" in text:
            return None
        if enc == "2047-B":
            b = base64.b64encode(text.encode()).decode()
            # two adjacent words, split in the middle of the identifier's bytes
            words = [b]
            raw_t = text.encode()
            cut = len(raw_t) // 2
            words = [base64.b64encode(raw_t[:cut]).decode(), base64.b64encode(raw_t[cut:]).decode()]
            subj = " ".join("=?utf-8?B?%s?=" % w for w in words)
        else:
            raw_t = text.encode()
            q = "".join(chr(c) if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122) else
                        ("_" if c == 32 else "=%02X" % c) for c in raw_t)
            subj = "=?utf-8?Q?%s?=" % q
        return (headers(subj) + "Content-Type: text/plain; charset=utf-8\r\n\r\nTom.\r\n").encode()
    if enc == "rfc2231":
        if "\n" in text or len(text) > 200:
            return None
        pct = urllib.parse.quote(text.encode(), safe="")
        # sections of 14 encoded characters, cut inside the identifier, never inside %XX
        secs, i = [], 0
        while i < len(pct):
            j = min(i + 14, len(pct))
            while j < len(pct) and (pct[j - 1] == "%" or (j >= 2 and pct[j - 2] == "%")):
                j += 1
            secs.append(pct[i:j])
            i = j
        params = ";\r\n ".join("filename*%d*=%s%s" % (k, "utf-8''" if k == 0 else "", s)
                               for k, s in enumerate(secs))
        return (headers("Sag %d" % n) + "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
                "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSe bilag.\r\n"
                "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Disposition: attachment;\r\n " + params + "\r\n\r\nbilag\r\n--b1--\r\n").encode()
    if enc == "rfc822":
        inner = (headers("Videresendt %d" % n) + "Content-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + \
            text.replace("\n", "\r\n").encode() + b"\r\n"
        return (headers("Fwd %d" % n) + "Content-Type: multipart/mixed; boundary=\"b2\"\r\n\r\n"
                "--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nVideresendt.\r\n"
                "--b2\r\nContent-Type: message/rfc822\r\n\r\n").encode() + inner + b"\r\n--b2--\r\n"
    raise ValueError(enc)


def gen(out):
    os.makedirs(os.path.join(out, "eml"), exist_ok=True)
    truth = []
    n = 0

    def write(data, cls, enc, idents, keep=()):
        nonlocal n
        n += 1
        name = "adv-%04d.eml" % n
        with open(os.path.join(out, "eml", name), "wb") as f:
            f.write(data)
        truth.append({"file": "eml/" + name, "class": cls, "encoding": enc,
                      "identifiers": [{"kind": k, "value": v} for k, v in idents],
                      "keep": list(keep)})

    for case in body_cases():
        for enc in (case.encodings or ENCODINGS):
            data = build(case, enc, n + 1)
            if data is None:
                continue
            write(data, case.cls, enc, [(case.kind, case.value)])
    for cls, ctype, text, idents, keep in cal_cases():
        for enc in ("raw-utf8", "qp", "b64"):
            raw = text.encode()
            if enc == "raw-utf8":
                body, cte = raw, "8bit"
            elif enc == "qp":
                body, cte = qp_soft(raw.replace(b"\r\n", b"\n"), len(raw) // 3).replace(b"\n", b"\r\n"), "quoted-printable"
            else:
                body, cte = base64.encodebytes(raw).replace(b"\n", b"\r\n"), "base64"
            data = (headers("Invitation") + "Content-Type: multipart/alternative; boundary=\"c1\"\r\n\r\n"
                    "--c1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nInvitation.\r\n"
                    "--c1\r\nContent-Type: %s; charset=utf-8; method=REQUEST\r\n"
                    "Content-Transfer-Encoding: %s\r\n\r\n" % (ctype, cte)).encode() + body + b"\r\n--c1--\r\n"
            write(data, cls, enc, idents, keep)
    for cls, name, value, ip in HEADER_IPS:
        data = ("Received: from mx.akasse.example by store; Mon, 5 Oct 2026 10:00:01 +0200\r\n" +
                headers("Rapport", "%s: %s\r\n" % (name, value)) +
                "Content-Type: text/plain; charset=utf-8\r\n\r\nHej.\r\n").encode()
        write(data, "ip-" + cls, "header", [("ip", ip)])
        if cls not in ("received-v6", "auth-results-v6"):
            # the same header inside a forwarded message/rfc822
            inner = ("%s: %s\r\n" % (name, value) + headers("Indre") +
                     "Content-Type: text/plain\r\n\r\nHej.\r\n").encode()
            data = (headers("Fwd") + "Content-Type: multipart/mixed; boundary=\"b3\"\r\n\r\n"
                    "--b3\r\nContent-Type: message/rfc822\r\n\r\n").encode() + inner + b"\r\n--b3--\r\n"
            write(data, "ip-" + cls, "rfc822", [("ip", ip)])
    with open(os.path.join(out, "truth.jsonl"), "w", encoding="utf-8") as f:
        for t in truth:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    return n


# ---- the oracle: reference patterns (decoding in pseudo_views.py; neither shares the C code)

# Separators a person may put between the groups of a number: any blank or dash
# (Unicode categories Zs, Pd), format characters (soft hyphen, zero-width space), '.'.
SEP_CHARS = "".join(chr(c) for c in list(range(0x2000, 0x200C)) + [0x20, 0xA0, 0xAD, 0x202F, 0x205F,
                                                                  0x2010, 0x2011, 0x2012, 0x2013,
                                                                  0x2014, 0x2015, 0x2212, 0x2D, 0x2E, 0x09])


def digits_present(d, blob):
    """Is the digit string d written in blob as a number of its own: its digits in order,
    at most one separator between two of them, no digit right before or after?"""
    sep = "[" + re.escape(SEP_CHARS) + "]?"
    pat = r"(?<!\d)" + sep.join(re.escape(c) for c in d) + r"(?!\d)"
    return re.search(pat, blob) is not None


def ip_present(ip, blob):
    if ":" in ip:
        return ip.lower() in blob.lower()
    g = ip.split(".")
    return re.search(r"(?<!\d)" + r"[.\-]".join(g) + r"(?!\d)", blob) is not None


def present(kind, value, blob):
    if kind == "email":
        low = blob.lower()
        if value.lower() in low:
            return True
        try:
            local, dom = value.split("@")
            return (local + "@" + dom.encode("idna").decode()).lower() in low
        except Exception:
            return False
    if kind == "cpr":
        return digits_present(value, blob)
    if kind == "phone":
        return digits_present(value[-8:], blob)
    if kind == "ip":
        return ip_present(value, blob)
    # names: each word as a whole word, any case, any blanks between (incl. no-break)
    pat = r"(?<![^\W_])" + r"[\s\u00a0\u202f]+".join(re.escape(w) for w in value.split()) + r"(?![^\W_])"
    return re.search(pat, blob, re.IGNORECASE) is not None


STRICT = ("email", "cpr", "phone", "name", "ip")


def check(corpus, pseudo):
    total, hit = defaultdict(int), defaultdict(int)
    broken, survivors, kept_bad = [], [], []
    n = 0
    with open(os.path.join(corpus, "truth.jsonl"), encoding="utf-8") as f:
        recs = [json.loads(line) for line in f]
    for rec in recs:
        with open(os.path.join(corpus, rec["file"]), "rb") as g:
            orig = views(g.read())
        with open(os.path.join(pseudo, rec["file"]), "rb") as g:
            out = views(g.read())
        n += 1
        for ident in rec["identifiers"]:
            kind, value = ident["kind"], ident["value"]
            if not present(kind, value, orig):
                broken.append("%s: oracle does not see %s %r in the input" % (rec["file"], kind, value))
                continue
            for key in ((kind, "*", "*"), (kind, rec["class"], "*"), (kind, "*", rec["encoding"])):
                total[key] += 1
            if present(kind, value, out):
                for key in ((kind, "*", "*"), (kind, rec["class"], "*"), (kind, "*", rec["encoding"])):
                    hit[key] += 1
                survivors.append("%s %s (%s, %s)" % (rec["file"], kind, rec["class"], rec["encoding"]))
        for k in rec.get("keep", []):
            if k not in out:
                kept_bad.append("%s: %r was replaced (%s)" % (rec["file"], k, rec["encoding"]))
    print("adversarial suite: %d messages" % n)
    print("recall per kind and encoding:")
    for key in sorted(k for k in total if k[1] == "*"):
        t, h = total[key], hit[key]
        label = key[0] + ("" if key[2] == "*" else "/" + key[2])
        print("  %-22s %5d planted %5d survived  recall %7.2f %%" % (label, t, h, 100.0 * (t - h) / t))
    print("recall per class (below 100 % only):")
    below = 0
    for key in sorted(k for k in total if k[1] != "*"):
        t, h = total[key], hit[key]
        if h:
            below += 1
            print("  %-36s %4d planted %4d survived  recall %7.2f %%" %
                  (key[0] + " " + key[1], t, h, 100.0 * (t - h) / t))
    if not below:
        print("  (none)")
    for s in survivors[:60]:
        print("  survivor: " + s)
    for s in broken + kept_bad:
        print("  " + s)
    fail = bool(broken or kept_bad or any(hit[k] for k in hit if k[0] in STRICT))
    return 1 if fail else 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "gen":
        print("wrote %d messages" % gen(sys.argv[2]))
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "check":
        return check(sys.argv[2], sys.argv[3])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
