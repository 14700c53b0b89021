#!/usr/bin/env python3
"""Adversarial messages for the sealing of parts the pseudonymiser cannot read.

    seal_corpus.py OUTDIR

writes OUTDIR/NN-name.eml and OUTDIR/planted.json ({file: [identifier, ...]}): values that
must not survive anywhere in the pseudonymised message, in any part, however decoded.
Built here with Python's own encoders and the openssl command (a real S/MIME signature
whose certificate carries the signer's name and address), sharing nothing with mailret.
"""
import base64
import json
import os
import quopri
import subprocess
import sys
import tempfile
import zlib

CPR = "010203-1234"
CPR_BARE = "0102031234"
NAME = "Mette Hansen"
ADDR = "mette.hansen@example.dk"
SIGNER = "Signe Gormsen"
SIGNER_ADDR = "signe.gormsen@example.dk"
CRLF = b"\r\n"


def b64(data):
    return base64.encodebytes(data).replace(b"\n", CRLF)


def pdf(text):
    """A small, uncompressed PDF whose page stream shows text in the clear."""
    stream = b"BT /F1 12 Tf 72 720 Td (" + text.encode() + b") Tj ET"
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream +
            b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    offs = []
    for i, o in enumerate(objs, 1):
        offs.append(len(out))
        out += str(i).encode() + b" 0 obj\n" + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 6\n0000000000 65535 f \n"
    for o in offs:
        out += b"%010d 00000 n \n" % o
    out += b"trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n" + str(xref).encode() + b"\n%%EOF\n"
    return out


def png_with_text(text):
    """A 1x1 PNG with a tEXt chunk (cameras and scanners write such metadata)."""
    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data +
                (zlib.crc32(kind + data) & 0xffffffff).to_bytes(4, "big"))
    ihdr = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"tEXt", b"Comment\x00" + text.encode()) + chunk(b"IDAT", idat) +
            chunk(b"IEND", b""))


def tnef(name, addr):
    """Bytes shaped like winmail.dat: the TNEF signature, attributes with the sender's
    name in ASCII and in UTF-16LE (as Outlook writes them)."""
    body = (b"\x78\x9f\x3e\x22" + b"\x01\x00" + b"\x01\x06\x90\x08\x00" +
            ("SMTP:" + addr.upper()).encode() + b"\x00" + name.encode("utf-16-le") +
            b"\x00\x00" + b"\x02\x01\x0d\x80" + ("CPR " + CPR).encode("utf-16-le"))
    return body


def head(subject, extra=b""):
    return (b"From: Kontor <post@fund.example>\r\nTo: sag@fund.example\r\n"
            b"Subject: " + subject.encode() + b"\r\nMIME-Version: 1.0\r\n" + extra)


def mixed(subject, parts, boundary=b"=_seal_B"):
    out = head(subject, b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n')
    out += CRLF + b"Preamble." + CRLF
    for p in parts:
        out += b"--" + boundary + CRLF + p + CRLF
    return out + b"--" + boundary + b"--" + CRLF


def text_part(s):
    return b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + s.encode()


def attachment(ctype, filename, data, cte=b"base64"):
    h = (b"Content-Type: " + ctype + b'; name="' + filename + b'"\r\n'
         b'Content-Disposition: attachment; filename="' + filename + b'"\r\n')
    if cte == b"base64":
        return h + b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(data).rstrip(CRLF)
    if cte == b"quoted-printable":
        qp = quopri.encodestring(data).replace(b"\n", CRLF)
        return h + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + qp.rstrip(CRLF)
    if cte is None:
        return h + CRLF + data
    return h + b"Content-Transfer-Encoding: " + cte + CRLF + CRLF + data


def smime_signed(tmp):
    key, cert = os.path.join(tmp, "k.pem"), os.path.join(tmp, "c.pem")
    body = os.path.join(tmp, "body.txt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-keyout", key,
                    "-out", cert, "-subj", "/CN=" + SIGNER + "/emailAddress=" + SIGNER_ADDR],
                   check=True, capture_output=True)
    with open(body, "wb") as f:
        f.write(b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
                b"Hej, mit CPR er " + CPR.encode() + b" og min mail " + ADDR.encode() +
                b".\r\n")
    signed = subprocess.run(["openssl", "smime", "-sign", "-in", body, "-signer", cert,
                             "-inkey", key, "-binary"],
                            check=True, capture_output=True).stdout
    signed = signed.replace(b"\r\n", b"\n").replace(b"\n", CRLF)
    return (b"From: " + SIGNER.encode() + b" <" + SIGNER_ADDR.encode() + b">\r\n"
            b"To: sag@fund.example\r\nSubject: Signeret\r\n" + signed)


def build(out):
    msgs, planted = {}, {}
    base = [CPR, CPR_BARE, NAME, ADDR]

    msgs["01-pdf.eml"] = mixed("Attest", [
        text_part("Se vedhaeftede."),
        attachment(b"application/pdf", b"attest.pdf",
                   pdf("Patient " + NAME + " CPR " + CPR + " " + ADDR))])
    msgs["02-octet-stream.eml"] = mixed("Data", [
        text_part("Fil."),
        attachment(b"application/octet-stream", b"data.bin",
                   ("CPR: " + CPR_BARE + ", " + ADDR + ", " + NAME + "\n").encode() * 3)])
    msgs["03-winmail.eml"] = mixed("Outlook", [
        text_part("Outlook-besked."),
        attachment(b"application/ms-tnef", b"winmail.dat", tnef(NAME, ADDR))])
    with tempfile.TemporaryDirectory() as tmp:
        msgs["04-smime-signed.eml"] = smime_signed(tmp)
    planted["04-smime-signed.eml"] = base + [SIGNER, SIGNER_ADDR]
    utf16 = ("Kære " + NAME + ", CPR " + CPR + ", " + ADDR + "\r\n")
    msgs["05-utf16.eml"] = mixed("Tekst", [
        text_part("UTF-16."),
        attachment(b"text/plain; charset=utf-16", b"bom-le.txt",
                   b"\xff\xfe" + utf16.encode("utf-16-le")),
        attachment(b"text/plain; charset=UTF-16BE", b"be.txt", utf16.encode("utf-16-be")),
        attachment(b"text/plain; charset=utf-16le", b"le.txt", utf16.encode("utf-16-le")),
        # Declared nothing, found by its NULs.
        attachment(b"text/plain", b"undeclared.txt", utf16.encode("utf-16-le")),
        attachment(b"text/plain; charset=utf-32", b"u32.txt", utf16.encode("utf-32"))])
    msgs["06-no-cte.eml"] = mixed("Uden CTE", [
        text_part("Raw."),
        attachment(b"application/pdf", b"raw.pdf", pdf(NAME + " " + CPR), cte=None),
        attachment(b"application/octet-stream", b"x.uu",
                   b"begin 644 x\r\n" + ("CPR " + CPR_BARE + " " + ADDR).encode() +
                   b"\r\nend", cte=b"x-uuencode"),
        attachment(b"text/plain", b"t.uu",
                   ("CPR " + CPR + " " + ADDR).encode(), cte=b"x-uuencode"),
        attachment(b"application/octet-stream", b"qp.bin",
                   ("CPR=" + CPR + " " + ADDR + " " + NAME).encode(),
                   cte=b"quoted-printable")])
    inner = mixed("Indre", [text_part("Indre tekst."),
                            attachment(b"application/pdf", b"indre.pdf",
                                       pdf(NAME + " " + CPR + " " + ADDR))],
                  boundary=b"=_inner")
    inner_b64 = mixed("Indre 2", [attachment(b"image/png", b"scan.png",
                                             png_with_text(NAME + " " + CPR))],
                      boundary=b"=_inner2")
    msgs["07-rfc822-pdf.eml"] = mixed("Videresendt", [
        text_part("Videresendt."),
        b"Content-Type: message/rfc822\r\n\r\n" + inner,
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
        b64(inner_b64).rstrip(CRLF)])
    msgs["08-image.eml"] = mixed("Scan", [
        text_part("Scan."),
        attachment(b"image/png", b"scan.png", png_with_text(NAME + " " + CPR + " " + ADDR)),
        attachment(b"image/svg+xml", b"x.svg",
                   ("<svg><text>" + NAME + " " + CPR + "</text></svg>").encode())])
    enc_mp = (b"--E\r\nContent-Type: text/plain\r\n\r\nCPR " + CPR.encode() + b" " +
              ADDR.encode() + b" " + NAME.encode() + b"\r\n--E--\r\n")
    msgs["09-encoded-multipart.eml"] = mixed("Kodet", [
        text_part("Kodet multipart."),
        b'Content-Type: multipart/mixed; boundary="E"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(enc_mp).rstrip(CRLF)])
    # A top-level message that is itself an attachment type, LF line ends.
    msgs["10-toplevel-pdf.eml"] = (
        b"From: post@fund.example\nSubject: PDF\nMIME-Version: 1.0\n"
        b"Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n" +
        base64.encodebytes(pdf(NAME + " " + CPR)))
    # More UTF-16: raw (binary) with a byte order mark and a character outside the BMP
    # before the identifiers, HTML in UTF-16LE, and two that cannot be converted in place
    # (an odd length; quoted-printable), which are sealed.
    raw16 = ("Hej " + NAME + "\r\nCPR " + CPR_BARE + " \U0001F600 tlf 12 34 56 78\r\n")
    html16 = ("<p>K&aelig;re " + NAME + ", <a href=\"mailto:" + ADDR + "\">skriv</a> CPR " +
              CPR + "</p>\r\n")
    msgs["11-utf16-more.eml"] = mixed("Mere UTF-16", [
        text_part("Flere."),
        attachment(b"text/plain; charset=utf-16", b"raw.txt",
                   b"\xff\xfe" + raw16.encode("utf-16-le"), cte=b"binary"),
        attachment(b"text/html; charset=utf-16le", b"side.html", html16.encode("utf-16-le")),
        attachment(b"text/plain; charset=utf-16le", b"odd.txt",
                   utf16.encode("utf-16-le") + b"\x00"),
        attachment(b"text/plain; charset=utf-16be", b"qp.txt", utf16.encode("utf-16-be"),
                   cte=b"quoted-printable")])
    planted["11-utf16-more.eml"] = base + ["12 34 56 78"]
    for k in msgs:
        planted.setdefault(k, base)
    os.makedirs(out, exist_ok=True)
    for k, v in msgs.items():
        with open(os.path.join(out, k), "wb") as f:
            f.write(v)
    with open(os.path.join(out, "planted.json"), "w") as f:
        json.dump(planted, f, indent=1)


if __name__ == "__main__":
    build(sys.argv[1])
