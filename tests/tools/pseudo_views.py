"""pseudo_views.py: every decoding of a message, as one string: the decoding side of the
pseudonymiser's oracles (pseudo_recall.py, pseudo_adversarial.py), written with Python's
email package and sharing nothing with the C code under test.

The views: the raw bytes as UTF-8, windows-1252 and Latin-1; RFC 2047 encoded-words found
anywhere (also inside quoted parameters), alone and as runs; every header decoded; file
names (RFC 2231 too); every leaf part's payload after its transfer encoding, in its
charset and as Latin-1, with folded iCalendar / vCard lines joined and HTML entities
decoded; and the whole with HTML entities and %XX decoded.  A checker that searches for a
value that must be gone finds it in any of them.
"""
import email
import email.header
import email.policy
import email.utils
import html
import re
import urllib.parse

ENCODED_WORD = rb"=\?[^?\s]+\?[BbQq]\?[^?\s]*\?="


def text_of(b, cs):
    """b decoded in its charset, else the first of UTF-8, windows-1252, Latin-1 that fits."""
    for c in (cs, "utf-8", "cp1252", "latin-1"):
        if not c:
            continue
        try:
            return b.decode(c)
        except (LookupError, UnicodeDecodeError):
            continue
    return b.decode("latin-1")


def dec_header(v):
    """A header value with its encoded-words decoded: joined as RFC 2047 joins them, and
    with a blank between the words."""
    try:
        parts = email.header.decode_header(v)
    except Exception:
        return v
    words = [text_of(s, cs) if isinstance(s, bytes) else s for s, cs in parts]
    return "".join(words) + " " + " ".join(words)


def unfold_ical(s):
    return re.sub(r"\r?\n[ \t]", "", s)


def views(raw, binary=True):
    """Every decoding of the message raw (bytes), as one string.  binary=False leaves out
    the payloads of parts that are neither text nor message (random bytes of an attachment
    would give false hits)."""
    out = [raw.decode("utf-8", "replace"), raw.decode("cp1252", "replace"),
           raw.decode("latin-1")]
    for rx in (ENCODED_WORD, ENCODED_WORD + rb"(?:\s+" + ENCODED_WORD + rb")*"):
        for m in re.finditer(rx, raw):
            out.append(dec_header(m.group(0).decode("latin-1")))
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:
        return "\n".join(out)
    for part in msg.walk():
        for _, v in part.items():
            out.append(dec_header(str(v)))
        for getter in (part.get_filename, lambda: part.get_param("name")):
            try:
                fn = getter()
            except Exception:
                fn = None
            if fn:
                if isinstance(fn, tuple):
                    fn = email.utils.collapse_rfc2231_value(fn)
                out.append(dec_header(str(fn)))
        if part.is_multipart():
            continue
        if not binary and part.get_content_maintype() not in ("text", "message"):
            continue
        try:
            payload = part.get_payload(decode=True)
        except Exception:
            payload = None
        if payload is None:
            p = part.get_payload()
            if not isinstance(p, str):
                continue
            payload = p.encode("latin-1", "replace")
        t = text_of(payload, part.get_content_charset())
        out.append(t)
        out.append(payload.decode("latin-1"))
        out.append(unfold_ical(t))
        if part.get_content_subtype() == "html":
            out.append(html.unescape(t))
    blob = "\n".join(out)
    return blob + "\n" + html.unescape(blob) + "\n" + urllib.parse.unquote(blob, errors="replace")
