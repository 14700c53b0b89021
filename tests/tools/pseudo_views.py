"""pseudo_views.py: every decoding of a message, as one string: the decoding side of the
pseudonymiser's oracles (pseudo_recall.py, pseudo_adversarial.py), written with Python's
email package and sharing nothing with the C code under test.

The views: the raw bytes as UTF-8, windows-1252 and Latin-1; RFC 2047 encoded-words found
anywhere (also inside quoted parameters), alone and as runs; every header decoded; file
names (RFC 2231 too); every leaf part's payload after its transfer encoding, in its
charset and as Latin-1, with folded iCalendar / vCard lines joined, HTML entities decoded
and HTML rendered as a reader sees it (html.parser: tags and comments removed, block
elements a line break); the whole with HTML entities and %XX decoded; and all of that in
NFKC with every decimal digit of any script as its ASCII digit.  A checker that searches
for a value that must be gone finds it in any of them.
"""
import email
import email.header
import email.policy
import email.utils
import html
import html.parser
import re
import unicodedata
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


# Elements a browser lays out as blocks, line breaks or table cells (HTML Living Standard,
# "Rendering"): the text on either side is not one run.  Every other element and every
# comment or declaration is read as if it were not there.
RENDER_BREAKS = {
    "html", "body", "head", "title", "address", "blockquote", "center", "dialog", "div",
    "figure", "figcaption", "footer", "form", "header", "hr", "legend", "listing", "main",
    "p", "plaintext", "pre", "search", "xmp", "article", "aside", "h1", "h2", "h3", "h4",
    "h5", "h6", "hgroup", "nav", "section", "dir", "dd", "dl", "dt", "menu", "ol", "ul",
    "li", "table", "caption", "colgroup", "col", "thead", "tbody", "tfoot", "tr", "td",
    "th", "br", "fieldset", "details", "summary", "optgroup", "option", "select",
    "textarea", "iframe", "frameset", "frame", "noframes", "noscript", "script", "style",
}


class Rendered(html.parser.HTMLParser):
    """The text of an HTML document as a reader sees it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out = []

    def handle_data(self, data):
        self.out.append(data)

    def handle_starttag(self, tag, attrs):
        if tag in RENDER_BREAKS:
            self.out.append("\n")

    def handle_endtag(self, tag):
        self.handle_starttag(tag, [])


def rendered(t):
    r = Rendered()
    try:
        r.feed(t)
        r.close()
    except Exception:
        pass
    return "".join(r.out)


def compat(t):
    """NFKC, and every decimal digit of any script as its ASCII digit."""
    t = unicodedata.normalize("NFKC", t)
    return "".join(str(unicodedata.decimal(c)) if ord(c) > 127 and unicodedata.category(c) == "Nd"
                   else c for c in t)


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
            out.append(rendered(t))
    blob = "\n".join(out)
    blob = blob + "\n" + html.unescape(blob) + "\n" + urllib.parse.unquote(blob, errors="replace")
    return blob + "\n" + compat(blob)
