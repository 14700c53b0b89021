#!/usr/bin/env python3
"""imap_grammar.py — check an IMAP client's byte stream against the RFC 3501 / 9051 grammar.

    imap_grammar.py [--expect CMD ...] [--quiet] FILE...

Each FILE holds every byte one client sent on one connection (TLS removed, e.g. by
tests/tools/wireproxy.py).  Every command must match the ABNF of RFC 3501 (with UIDPLUS
UID EXPUNGE, RFC 2342 NAMESPACE, RFC 5161 ENABLE, RFC 4959 SASL-IR), byte for byte: no
extra or missing blanks, CRLF line ends only, strings quoted or sent as literals as the
grammar says, 7-bit quoted strings unless UTF8=ACCEPT was enabled, mailbox names valid
modified UTF-7 (RFC 3501 5.1.3), dates that exist, tags unique per connection.  Commands
outside that list are errors, so a command the client starts to use is noticed here.

--expect CMD (repeatable) fails unless some file used that command ("UID FETCH",
"LOGIN", ...).  Prints one line per deviation (file, byte offset, what) and exits 1, or
prints the commands seen and exits 0.

Written from the RFCs' ABNF alone; it shares no code or tables with the client it checks.
"""
import argparse
import base64
import re
import sys

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DAYS_IN = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


class Deviation(Exception):
    def __init__(self, pos, what):
        super().__init__(what)
        self.pos = pos
        self.what = what


def is_char(b):          # CHAR = %x01-7F
    return 0x01 <= b <= 0x7F


def is_ctl(b):           # CTL = %x00-1F / %x7F
    return b <= 0x1F or b == 0x7F


ATOM_SPECIALS = set(b'(){ %*"\\]')     # plus CTL; "]" is a resp-special


def is_atom_char(b):
    return is_char(b) and not is_ctl(b) and b not in ATOM_SPECIALS


def is_astring_char(b):  # ATOM-CHAR / resp-specials
    return is_atom_char(b) or b == ord("]")


def is_list_char(b):     # ATOM-CHAR / list-wildcards / resp-specials
    return is_atom_char(b) or b in b"%*]"


class Parser:
    """Recursive descent over one connection's client bytes."""

    def __init__(self, data, name):
        self.d = data
        self.i = 0
        self.name = name
        self.utf8 = False        # ENABLE UTF8=ACCEPT was sent
        self.tags = set()
        self.seen = []           # command names, in order

    # ---- primitives
    def fail(self, what):
        raise Deviation(self.i, what)

    def peek(self, n=1):
        return self.d[self.i:self.i + n]

    def expect(self, lit, what=None):
        if self.d[self.i:self.i + len(lit)] != lit:
            self.fail("expected %r%s, found %r" % (lit, " (" + what + ")" if what else "",
                                                   self.d[self.i:self.i + 20]))
        self.i += len(lit)

    def sp(self):
        self.expect(b" ", "one blank")

    def keyword(self, words):
        """One of words (case-insensitive), followed by a delimiter; returns it upper-cased."""
        for w in sorted(words, key=len, reverse=True):
            got = self.d[self.i:self.i + len(w)]
            nxt = self.d[self.i + len(w):self.i + len(w) + 1]
            # A keyword ends where an atom would: at a blank, a parenthesis, the line
            # end, or (BODY[...], BODY.PEEK[...]) a section's bracket.
            if got.upper() == w.encode() and nxt in (b"", b" ", b"\r", b"(", b")", b"["):
                self.i += len(w)
                return w
        self.fail("expected one of %s, found %r" % ("/".join(words),
                                                    self.d[self.i:self.i + 20]))

    def crlf(self):
        if self.peek() == b" ":
            self.fail("blank before the line end")
        self.expect(b"\r\n", "CRLF")

    def number(self, nz=False):
        m = re.match(rb"[0-9]+", self.d[self.i:])
        if not m:
            self.fail("expected a number")
        s = m.group(0)
        v = int(s)
        if v >= 2 ** 32:
            self.fail("number out of range")
        if nz and (s[0:1] == b"0"):
            self.fail("nz-number must not be 0 or start with 0")
        self.i += len(s)
        return v

    def atom(self):
        start = self.i
        while self.i < len(self.d) and is_atom_char(self.d[self.i]):
            self.i += 1
        if self.i == start:
            self.fail("expected an atom, found %r" % self.d[self.i:self.i + 20])
        return self.d[start:self.i]

    def quoted(self):
        self.expect(b'"')
        out = bytearray()
        while True:
            if self.i >= len(self.d):
                self.fail("unterminated quoted string")
            b = self.d[self.i]
            if b == ord('"'):
                self.i += 1
                return bytes(out)
            if b == ord("\\"):
                nxt = self.d[self.i + 1:self.i + 2]
                if nxt not in (b'"', b"\\"):
                    self.fail("backslash in a quoted string not before \" or \\")
                out += nxt
                self.i += 2
                continue
            if b in (0x0A, 0x0D, 0x00):
                self.fail("CR, LF or NUL inside a quoted string")
            if b >= 0x80 and not self.utf8:
                self.fail("8-bit byte in a quoted string without UTF8=ACCEPT")
            out.append(b)
            self.i += 1

    def literal(self):
        self.expect(b"{")
        n = self.number()
        if self.peek() == b"+":
            self.i += 1
        self.expect(b"}")
        self.expect(b"\r\n", "CRLF after a literal's length")
        body = self.d[self.i:self.i + n]
        if len(body) != n:
            self.fail("literal shorter than announced")
        if 0 in body:
            self.fail("NUL in a literal (CHAR8 excludes it)")
        self.i += n
        return body

    def literal8(self):
        # RFC 3516: "~{" number ["+"] "}" CRLF *OCTET -- any octet, NUL included.
        self.expect(b"~{")
        n = self.number()
        if self.peek() == b"+":
            self.i += 1
        self.expect(b"}")
        self.expect(b"\r\n", "CRLF after a literal8's length")
        body = self.d[self.i:self.i + n]
        if len(body) != n:
            self.fail("literal8 shorter than announced")
        self.i += n
        return body

    def string(self):
        if self.peek() == b'"':
            return self.quoted()
        if self.peek() == b"{":
            return self.literal()
        self.fail("expected a string, found %r" % self.d[self.i:self.i + 20])

    def astring(self):
        if self.peek() in (b'"', b"{"):
            return self.string()
        start = self.i
        while self.i < len(self.d) and is_astring_char(self.d[self.i]):
            self.i += 1
        if self.i == start:
            self.fail("expected an astring, found %r" % self.d[self.i:self.i + 20])
        return self.d[start:self.i]

    def mailbox(self, pattern=False):
        start = self.i
        if pattern:
            if self.peek() in (b'"', b"{"):
                name = self.string()
            else:
                while self.i < len(self.d) and is_list_char(self.d[self.i]):
                    self.i += 1
                if self.i == start:
                    self.fail("expected a list-mailbox")
                name = self.d[start:self.i]
        else:
            name = self.astring()
        if not self.utf8:
            err = mutf7_error(name)
            if err:
                raise Deviation(start, "mailbox name %r is not modified UTF-7: %s" % (name, err))
        else:
            try:
                name.decode("utf-8")
            except UnicodeDecodeError:
                raise Deviation(start, "mailbox name is not UTF-8")
        return name

    # ---- sets, flags, dates
    def seq_number(self):
        if self.peek() == b"*":
            self.i += 1
        else:
            self.number(nz=True)

    def sequence_set(self):
        while True:
            self.seq_number()
            if self.peek() == b":":
                self.i += 1
                self.seq_number()
            if self.peek() != b",":
                return
            self.i += 1

    def flag(self, fetch=False):
        if self.peek() == b"\\":
            self.i += 1
            name = self.atom()
            if name.lower() == b"recent" and not fetch:
                self.fail("\\Recent may not be stored or appended")
            return
        self.atom()

    def flag_list(self):
        self.expect(b"(")
        if self.peek() == b")":
            self.i += 1
            return
        while True:
            self.flag()
            if self.peek() == b")":
                self.i += 1
                return
            self.sp()

    def date_day_month_year(self, fixed):
        if fixed:
            if self.peek() == b" ":
                self.i += 1
                m = re.match(rb"[1-9]", self.d[self.i:])
                if not m:
                    self.fail("date-day-fixed: blank then one digit")
                day = int(m.group(0))
                self.i += 1
            else:
                m = re.match(rb"[0-9]{2}", self.d[self.i:])
                if not m:
                    self.fail("date-day-fixed: two digits")
                day = int(m.group(0))
                self.i += 2
        else:
            m = re.match(rb"[0-9]{1,2}", self.d[self.i:])
            if not m:
                self.fail("date-day: one or two digits")
            day = int(m.group(0))
            self.i += len(m.group(0))
        self.expect(b"-")
        mon = self.d[self.i:self.i + 3].decode("latin-1")
        if mon not in MONTHS:
            self.fail("date-month %r" % mon)
        self.i += 3
        self.expect(b"-")
        m = re.match(rb"[0-9]{4}", self.d[self.i:])
        if not m:
            self.fail("date-year: four digits")
        year = int(m.group(0))
        self.i += 4
        mi = MONTHS.index(mon)
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        if not 1 <= day <= (DAYS_IN[mi] if mi != 1 or leap else 28):
            self.fail("no such day %d-%s-%d" % (day, mon, year))

    def date(self):
        if self.peek() == b'"':
            self.i += 1
            self.date_day_month_year(False)
            self.expect(b'"')
        else:
            self.date_day_month_year(False)

    def date_time(self):
        self.expect(b'"')
        self.date_day_month_year(True)
        self.sp()
        m = re.match(rb"([0-9]{2}):([0-9]{2}):([0-9]{2})", self.d[self.i:])
        if not m:
            self.fail("time: 2DIGIT:2DIGIT:2DIGIT")
        h, mi, s = (int(x) for x in m.groups())
        if h > 23 or mi > 59 or s > 60:
            self.fail("no such time")
        self.i += 8
        self.sp()
        m = re.match(rb"[+-]([0-9]{2})([0-9]{2})", self.d[self.i:])
        if not m:
            self.fail("zone: (+/-) 4DIGIT")
        if int(m.group(2)) > 59:
            self.fail("zone minutes over 59")
        self.i += 5
        self.expect(b'"')

    # ---- FETCH
    def section(self):
        self.expect(b"[")
        if self.peek() == b"]":
            self.i += 1
            return
        while re.match(rb"[1-9]", self.peek()):
            self.number(nz=True)
            if self.peek() != b".":
                self.expect(b"]")
                return
            self.i += 1
        w = self.keyword(["HEADER.FIELDS.NOT", "HEADER.FIELDS", "HEADER", "TEXT", "MIME"])
        if w.startswith("HEADER.FIELDS"):
            self.sp()
            self.expect(b"(")
            while True:
                self.astring()
                if self.peek() == b")":
                    self.i += 1
                    break
                self.sp()
        self.expect(b"]")

    def fetch_att(self):
        w = self.keyword(["ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822.HEADER", "RFC822.SIZE",
                          "RFC822.TEXT", "RFC822", "BODYSTRUCTURE", "BODY.PEEK", "BODY", "UID"])
        if w in ("BODY", "BODY.PEEK") and (w == "BODY.PEEK" or self.peek() == b"["):
            self.section()
            if self.peek() == b"<":
                self.i += 1
                self.number()
                self.expect(b".")
                self.number(nz=True)
                self.expect(b">")

    def fetch_items(self):
        if self.peek() == b"(":
            self.i += 1
            while True:
                self.fetch_att()
                if self.peek() == b")":
                    self.i += 1
                    return
                self.sp()
        if re.match(rb"(ALL|FULL|FAST)(?=[ \r])", self.d[self.i:], re.I):
            self.keyword(["ALL", "FULL", "FAST"])
            return
        self.fetch_att()

    # ---- SEARCH
    def search_key(self):
        if self.peek() == b"(":
            self.i += 1
            while True:
                self.search_key()
                if self.peek() == b")":
                    self.i += 1
                    return
                self.sp()
        if re.match(rb"[0-9*]", self.peek()):
            self.sequence_set()
            return
        w = self.keyword(["ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD",
                          "RECENT", "SEEN", "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED",
                          "UNSEEN", "BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO",
                          "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE",
                          "KEYWORD", "UNKEYWORD", "LARGER", "SMALLER", "HEADER", "NOT", "OR",
                          "UID"])
        if w in ("BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"):
            self.sp()
            self.astring()
        elif w in ("BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"):
            self.sp()
            self.date()
        elif w in ("KEYWORD", "UNKEYWORD"):
            self.sp()
            self.atom()
        elif w in ("LARGER", "SMALLER"):
            self.sp()
            self.number()
        elif w == "HEADER":
            self.sp()
            self.astring()
            self.sp()
            self.astring()
        elif w == "NOT":
            self.sp()
            self.search_key()
        elif w == "OR":
            self.sp()
            self.search_key()
            self.sp()
            self.search_key()
        elif w == "UID":
            self.sp()
            self.sequence_set()

    def search(self):
        self.sp()
        if self.d[self.i:self.i + 8].upper() == b"CHARSET ":
            self.i += 8
            self.astring()
            self.sp()
        while True:
            self.search_key()
            if self.peek() != b" ":
                return
            self.sp()

    def store(self):
        self.sp()
        self.sequence_set()
        self.sp()
        if self.peek() in (b"+", b"-"):
            self.i += 1
        self.keyword(["FLAGS.SILENT", "FLAGS"])
        self.sp()
        if self.peek() == b"(":
            self.flag_list()
        else:
            while True:
                self.flag()
                if self.peek() != b" ":
                    break
                self.sp()

    # ---- commands
    def tag(self):
        start = self.i
        while self.i < len(self.d) and is_astring_char(self.d[self.i]) and self.d[self.i] != ord("+"):
            self.i += 1
        if self.i == start:
            self.fail("expected a tag")
        t = self.d[start:self.i]
        if t in self.tags:
            raise Deviation(start, "tag %r used twice" % t)
        self.tags.add(t)

    def sasl_lines(self):
        # Client responses to the server's continuations: base64 or "*", one per line.
        while re.match(rb"(\*|[A-Za-z0-9+/]*=*)\r\n", self.d[self.i:]):
            line = re.match(rb"(\*|[A-Za-z0-9+/]*=*)\r\n", self.d[self.i:]).group(1)
            if line != b"*":
                try:
                    base64.b64decode(line, validate=True)
                except ValueError:
                    self.fail("SASL response is not base64")
            self.i += len(line) + 2
            if line == b"*":
                return

    def command(self):
        self.tag()
        self.sp()
        w = self.keyword(["CAPABILITY", "LOGOUT", "NOOP", "STARTTLS", "AUTHENTICATE", "LOGIN",
                          "SELECT", "EXAMINE", "CREATE", "DELETE", "LIST", "LSUB", "STATUS",
                          "APPEND", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "NAMESPACE",
                          "ENABLE", "ID", "UID", "FETCH", "SEARCH", "STORE"])
        name = w
        if w in ("CAPABILITY", "LOGOUT", "NOOP", "STARTTLS", "CHECK", "CLOSE", "UNSELECT",
                 "EXPUNGE", "NAMESPACE"):
            pass
        elif w == "LOGIN":
            self.sp()
            self.astring()
            self.sp()
            self.astring()
        elif w == "AUTHENTICATE":
            self.sp()
            self.atom()
            if self.peek() == b" ":
                self.sp()
                m = re.match(rb"=|[A-Za-z0-9+/]+=*", self.d[self.i:])
                if not m:
                    self.fail("SASL-IR initial response: base64 or \"=\"")
                self.i += len(m.group(0))
            self.crlf()
            self.sasl_lines()
            self.seen.append(name)
            return
        elif w in ("SELECT", "EXAMINE", "CREATE", "DELETE"):
            self.sp()
            self.mailbox()
        elif w in ("LIST", "LSUB"):
            self.sp()
            self.mailbox()
            self.sp()
            self.mailbox(pattern=True)
        elif w == "STATUS":
            self.sp()
            self.mailbox()
            self.sp()
            self.expect(b"(")
            while True:
                self.keyword(["MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN"])
                if self.peek() == b")":
                    self.i += 1
                    break
                self.sp()
        elif w == "APPEND":
            self.sp()
            self.mailbox()
            self.sp()
            if self.peek() == b"(":
                self.flag_list()
                self.sp()
            if self.peek() == b'"':
                self.date_time()
                self.sp()
            if self.peek() == b"~":
                self.literal8()     # BINARY (RFC 3516), for a message holding NUL
            else:
                self.literal()
        elif w == "ENABLE":
            while True:
                self.sp()
                cap = self.atom()
                if cap.upper() == b"UTF8=ACCEPT":
                    self.utf8 = True
                if self.peek() != b" ":
                    break
        elif w == "ID":
            self.sp()
            if self.d[self.i:self.i + 3].upper() == b"NIL":
                self.i += 3
            else:
                self.expect(b"(")
                while self.peek() != b")":
                    self.string()
                    self.sp()
                    if self.d[self.i:self.i + 3].upper() == b"NIL":
                        self.i += 3
                    else:
                        self.string()
                    if self.peek() == b" ":
                        self.sp()
                self.i += 1
        elif w in ("UID", "FETCH", "SEARCH", "STORE"):
            sub = w
            if w == "UID":
                self.sp()
                sub = self.keyword(["FETCH", "SEARCH", "STORE", "EXPUNGE", "COPY", "MOVE"])
                name = "UID " + sub
            if sub == "FETCH":
                self.sp()
                self.sequence_set()
                self.sp()
                self.fetch_items()
            elif sub == "SEARCH":
                self.search()
            elif sub == "STORE":
                self.store()
            elif sub == "EXPUNGE":
                self.sp()
                self.sequence_set()
            elif sub in ("COPY", "MOVE"):
                self.sp()
                self.sequence_set()
                self.sp()
                self.mailbox()
        self.crlf()
        self.seen.append(name)

    def run(self):
        while self.i < len(self.d):
            self.command()


# ---- modified UTF-7 (RFC 3501 5.1.3), written from the RFC's text
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"


def mutf7_error(name):
    """None if name is valid modified UTF-7, else why not."""
    i = 0
    n = len(name)
    while i < n:
        b = name[i]
        if b < 0x20 or b > 0x7E:
            return "byte 0x%02x outside printable US-ASCII" % b
        if b != ord("&"):
            i += 1
            continue
        j = name.find(b"-", i + 1)
        if j < 0:
            return "'&' shift without a closing '-'"
        run = name[i + 1:j].decode("ascii")
        if run == "":
            i = j + 1
            continue
        if any(c not in B64 for c in run):
            return "character outside modified BASE64 in %r" % run
        bits = 0
        nbits = 0
        units = []
        for c in run:
            bits = (bits << 6) | B64.index(c)
            nbits += 6
            if nbits >= 16:
                nbits -= 16
                units.append((bits >> nbits) & 0xFFFF)
                bits &= (1 << nbits) - 1
        if nbits >= 6 or bits != 0:
            return "BASE64 run %r ends with stray bits" % run
        k = 0
        chars = []
        while k < len(units):
            u = units[k]
            if 0xD800 <= u <= 0xDBFF:
                if k + 1 >= len(units) or not 0xDC00 <= units[k + 1] <= 0xDFFF:
                    return "unpaired high surrogate"
                k += 2
                chars.append(0x10000)
                continue
            if 0xDC00 <= u <= 0xDFFF:
                return "unpaired low surrogate"
            chars.append(u)
            k += 1
        if any(0x20 <= c <= 0x7E for c in chars):
            return "printable US-ASCII encoded in BASE64"
        if not chars:
            return "empty BASE64 run"
        i = j + 1
        # Two shifts back to back must be one run.
        if i < n and name[i] == ord("&") and name[i + 1:i + 2] != b"-":
            return "two adjacent BASE64 runs"
    return None


def check_file(path, data):
    p = Parser(data, path)
    try:
        p.run()
    except Deviation as e:
        k = data.rfind(b"\r\n", 0, e.pos)
        line_start = k + 2 if k >= 0 else 0
        line = data[line_start:data.find(b"\r\n", e.pos) if data.find(b"\r\n", e.pos) >= 0
                    else len(data)]
        # Never print a LOGIN line: it holds the test password.
        shown = b"(LOGIN line)" if re.match(rb"\S+ LOGIN ", line, re.I) else line[:160]
        return p.seen, "%s: byte %d: %s; line %r" % (path, e.pos, e.what, shown)
    return p.seen, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    seen = set()
    bad = 0
    for f in a.files:
        with open(f, "rb") as fh:
            cmds, err = check_file(f, fh.read())
        seen.update(cmds)
        if err:
            print(err)
            bad += 1
    for e in a.expect:
        if e.upper() not in seen:
            print("command %s never sent" % e)
            bad += 1
    if not a.quiet:
        print("commands: %s" % " ".join(sorted(seen)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
