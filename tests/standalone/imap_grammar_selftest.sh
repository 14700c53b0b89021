#!/bin/bash
# The wire checker (tests/tools/imap_grammar.py) accepts client transcripts that follow the
# RFC 3501 grammar and rejects each kind of deviation: a trailing blank, a bare LF, an
# unquoted blank or 8-bit byte, a bad escape, a mailbox name that is not modified UTF-7,
# an impossible date, \Recent in APPEND, a literal shorter than announced, a reused tag,
# an unknown command.  The wire_grammar integration test relies on it failing.
set -euo pipefail
: "${MAILRET_SOURCE_DIR:?}"
python3 - "$MAILRET_SOURCE_DIR/tests/tools" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import imap_grammar as g

good = [
    b"1 CAPABILITY\r\n",
    b"a1 STARTTLS\r\n",
    b'1 LOGIN user "pass word \\"x\\\\"\r\n',
    b"1 LOGIN {4}\r\nuser {2}\r\npw\r\n",
    b"2 EXAMINE INBOX\r\n3 SELECT \"Sager &AOYA+ADl-\"\r\n",
    b"2 SELECT &AOY-\r\n",
    b"2 CREATE \"R&-D\"\r\n",
    b"2 SELECT \"&2D3eAQ-\"\r\n",                       # U+1F601, a surrogate pair
    b'2 LIST "" "Sager/%"\r\n',
    b"4 UID SEARCH UID 1:* BEFORE 8-Dec-2026\r\n",
    b"4 UID SEARCH (UID 5:* BEFORE \"29-Feb-2024\")\r\n",
    b"4 UID SEARCH DELETED\r\n",
    b"5 UID FETCH 1:* (UID INTERNALDATE RFC822.SIZE FLAGS BODY.PEEK[])\r\n",
    b"5 UID FETCH 3,5:7,9 (BODY[HEADER.FIELDS (From To)])\r\n",
    b"6 UID STORE 1:3,5 +FLAGS.SILENT (\\Deleted)\r\n",
    b"7 UID EXPUNGE 1:3,5\r\n",
    b'8 APPEND "Sager" (\\Seen $Forwarded) " 7-Dec-2026 01:02:03 +0100" {3}\r\nabc\r\n',
    b'8 APPEND INBOX () "17-Dec-2026 23:59:60 -1400" {1+}\r\nx\r\n',
    b"8 APPEND INBOX {2}\r\nab\r\n",
    b'8 APPEND "Restored" (\\Seen) " 7-Dec-2026 01:02:03 +0100" ~{3+}\r\na\x00c\r\n',
    b"9 NAMESPACE\r\n10 ENABLE UTF8=ACCEPT\r\n11 SELECT \"Sager \xc3\xa6\"\r\n",
    b"12 AUTHENTICATE PLAIN AHUAcA==\r\n13 AUTHENTICATE XOAUTH2\r\nAAAA\r\n14 LOGOUT\r\n",
    b"1 NOOP\r\n2 EXPUNGE\r\n3 LOGOUT\r\n",
]
bad = [
    (b"1 CAPABILITY \r\n", "blank before the line end"),
    (b"1 CAPABILITY\n", "bare LF"),
    (b"1  CAPABILITY\r\n", "two blanks"),
    (b"1 LOGIN user pass word\r\n", "unquoted blank"),
    (b'1 LOGIN user "p\\w"\r\n', "bad escape"),
    (b'1 LOGIN user "p\xc3\xa6"\r\n', "8-bit quoted without UTF8=ACCEPT"),
    (b"2 SELECT Sager \xc3\xa6\r\n", "8-bit atom"),
    (b'2 SELECT "Sager \xc3\xa6"\r\n', "raw UTF-8 mailbox"),
    (b'2 SELECT "R&D"\r\n', "bare & in mailbox"),
    (b'2 SELECT "&AGE-"\r\n', "printable ASCII in base64"),
    (b'2 SELECT "&2D0-"\r\n', "lone surrogate"),
    (b'2 SELECT "&AOYA5w"\r\n', "unterminated shift"),
    (b'2 SELECT "&AOY-&AOc-"\r\n', "adjacent runs"),
    (b"2 SELECT INBOX \r\n", "trailing blank after mailbox"),
    (b"4 UID SEARCH UID 0:* BEFORE 8-Dec-2026\r\n", "UID 0"),
    (b"4 UID SEARCH UID 1:* BEFORE 30-Feb-2026\r\n", "no such day"),
    (b"4 UID SEARCH UID 1:* BEFORE 8-dec-2026\r\n", "month case"),
    (b"5 UID FETCH 1:* (UID FLAGS )\r\n", "blank before )"),
    (b"5 UID FETCH 01:* (UID)\r\n", "leading zero"),
    (b"6 UID STORE 1 +FLAGS.SILENT (\\Deleted \\Recent)\r\n", "\\Recent stored"),
    (b'8 APPEND INBOX (\\Seen) "7-Dec-2026 01:02:03 +0100" {3}\r\nabc\r\n', "date-day-fixed"),
    (b'8 APPEND INBOX (\\Seen) " 7-Dec-2026 1:02:03 +0100" {3}\r\nabc\r\n', "one-digit hour"),
    (b'8 APPEND INBOX (\\Seen) " 7-Dec-2026 01:02:03 0100" {3}\r\nabc\r\n', "zone sign"),
    (b'8 APPEND INBOX (\\Seen) " 7-Dec-2026 24:02:03 +0100" {3}\r\nabc\r\n', "hour 24"),
    (b"8 APPEND INBOX (\\Seen) {5}\r\nabc\r\n", "short literal"),
    (b"8 APPEND INBOX {3}\r\na\x00c\r\n", "NUL in literal"),
    (b"8 APPEND INBOX ~{5+}\r\na\x00c\r\n", "short literal8"),
    (b"8 APPEND INBOX ~ {3}\r\na\x00c\r\n", "blank inside literal8"),
    (b"8 SELECT ~{3}\r\nabc\r\n", "literal8 outside APPEND"),
    (b"8 APPEND INBOX (\\Seen ) {1}\r\na\r\n", "blank before ) in flags"),
    (b"1 NOOP\r\n1 NOOP\r\n", "tag reused"),
    (b"+1 NOOP\r\n", "tag with +"),
    (b"1 XYZZY\r\n", "unknown command"),
    (b"7 UID EXPUNGE\r\n", "UID EXPUNGE without a set"),
    (b"12 AUTHENTICATE PLAIN AHUAcA== \r\n", "blank after SASL-IR"),
]
errors = 0
for t in good:
    _, err = g.check_file("good", t)
    if err:
        print("FAIL: rejected a valid transcript %r: %s" % (t, err))
        errors += 1
for t, why in bad:
    _, err = g.check_file("bad", t)
    if not err:
        print("FAIL: accepted %r (%s)" % (t, why))
        errors += 1
sys.exit(1 if errors else 0)
PY
echo "imap_grammar: every valid transcript accepted, every deviation rejected"
