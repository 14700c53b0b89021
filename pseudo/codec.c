/* codec.c — transfer encodings: base64, quoted-printable, RFC 2047 words.
 * Decoders are lenient (mail in the wild is broken; the exact original is restored from
 * the reid data anyway), encoders produce conforming output so the pseudonymised message
 * stays valid MIME. */
#include "pseudo/codec.h"

#include <stdlib.h>
#include <string.h>

#ifdef PFIND_SSE2
#include <emmintrin.h>
#endif

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char HEX[] = "0123456789ABCDEF";

/* Value of a base64 character, 64 for '=', 255 for anything else (skipped). */
#define X255 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255
static const unsigned char B64V[256] = {
    X255, X255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 62, 255, 255, 255, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 255, 255, 255, 64, 255, 255,
    255, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 255, 255, 255, 255, 255,
    255, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 255, 255, 255, 255, 255,
    X255, X255, X255, X255, X255, X255, X255, X255,
};
#undef X255

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

const char *pcodec_eol_of(const unsigned char *p, size_t len)
{
    const unsigned char *nl = memchr(p, '\n', len);

    if (nl != NULL && nl > p && nl[-1] == '\r')
        return "\r\n";
    if (nl == NULL) {
        /* No line break at all: a message's own convention is unknown; CRLF is the
         * RFC 5322 form. */
        return "\r\n";
    }
    return "\n";
}

int pcodec_b64_decode(const unsigned char *in, size_t len, pbuf *out, mr_error *err)
{
    unsigned acc = 0;
    int bits = 0, rc;
    size_t i = 0;
    unsigned char *o;

    rc = pbuf_reserve(out, len / 4 * 3 + 3, err);
    if (rc != 0)
        return rc;
    o = out->p + out->len;
    /* Whole groups of four data characters (the bulk of every line) at once; the rest
     * (line ends, junk, padding, a short tail) byte by byte below. */
    while (len - i >= 4) {
        unsigned a = B64V[in[i]], b = B64V[in[i + 1]], c = B64V[in[i + 2]], d = B64V[in[i + 3]];
        if ((a | b | c | d) >= 64)
            break;
        unsigned v = a << 18 | b << 12 | c << 6 | d;
        o[0] = (unsigned char)(v >> 16);
        o[1] = (unsigned char)(v >> 8);
        o[2] = (unsigned char)v;
        o += 3;
        i += 4;
        if (len - i >= 4 && B64V[in[i]] >= 64) {
            /* A line break or junk: take it byte by byte until the next group. */
            while (i < len && B64V[in[i]] == 255)
                i++;
        }
    }
    for (; i < len; i++) {
        unsigned v = B64V[in[i]];
        if (v == 64)
            break;     /* padding: the rest is not data */
        if (v == 255)
            continue;  /* line breaks and junk are skipped */
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    out->len = (size_t)(o - out->p);
    return 0;
}

/* What the '=' at in[i] of a quoted-printable body stands for: the number of input bytes
 * it takes, and in *byte the decoded byte, or -1 for a soft line break ('=', optional
 * blanks, a line end; or '=' at the very end of the body).  1 with *byte '=' when it is
 * neither (a lone '=' is kept, leniently).  It never looks past a '\n', so a body decodes
 * line by line: pqp_patch relies on that to re-encode only the lines that changed. */
static inline size_t qp_escape(const unsigned char *in, size_t len, size_t i, int *byte)
{
    size_t j = i + 1;

    if (j + 1 < len && hex_val(in[j]) >= 0 && hex_val(in[j + 1]) >= 0) {
        *byte = hex_val(in[j]) * 16 + hex_val(in[j + 1]);
        return 3;
    }
    while (j < len && (in[j] == ' ' || in[j] == '\t'))
        j++;
    *byte = -1;
    if (j < len && in[j] == '\n')
        return j + 1 - i;
    if (j + 1 < len && in[j] == '\r' && in[j + 1] == '\n')
        return j + 2 - i;
    if (j == len)
        return j - i;
    *byte = '=';
    return 1;
}

static int line_push(pqp_lines *lines, size_t enc_end, size_t dec_end, mr_error *err)
{
    if (lines->partial)
        return 0;
    if (lines->n == lines->max) {
        lines->partial = true;   /* see pqp_lines: such a body is re-encoded whole */
        return 0;
    }
    if (lines->n == lines->cap) {
        size_t cap = lines->cap ? lines->cap * 2 : 64;
        struct pqp_line *nv = realloc(lines->v, cap * sizeof *nv);
        if (nv == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory for quoted-printable lines");
        lines->v = nv;
        lines->cap = cap;
    }
    lines->v[lines->n++] = (struct pqp_line){.enc_end = enc_end, .dec_end = dec_end};
    return 0;
}

int pcodec_qp_decode(const unsigned char *in, size_t len, pbuf *out, pqp_lines *lines,
                     mr_error *err)
{
    int rc = pbuf_reserve(out, len, err);
    unsigned char *o;

    if (rc != 0)
        return rc;
    if (lines != NULL) {
        lines->n = 0;
        lines->partial = false;
        lines->max = len / PQP_LINE_MIN + 1;
    }
    o = out->p + out->len;
    /* Byte by byte (text in Danish has an escape every few bytes, too often for memchr to
     * pay), the output through a local pointer; with SSE2 16 bytes without '=' or a line
     * end are copied at once, which is about half of them.  The 16-byte store may run
     * ahead of what is kept: decoding never lengthens, so o + 16 <= out->p + out->len +
     * i + 16, within the len reserved. */
    for (size_t i = 0; i < len;) {
        unsigned char c;
        int byte;
#ifdef PFIND_SSE2
        if (len - i >= 16) {
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
            unsigned m = (unsigned)_mm_movemask_epi8(
                _mm_or_si128(_mm_cmpeq_epi8(b, _mm_set1_epi8('=')),
                             _mm_cmpeq_epi8(b, _mm_set1_epi8('\n'))));
            _mm_storeu_si128((__m128i *)(void *)o, b);
            if (m == 0) {
                o += 16;
                i += 16;
                continue;
            }
            unsigned k = (unsigned)__builtin_ctz(m);
            o += k;
            i += k;
        }
#endif
        c = in[i];
        if (c != '=') {
            *o++ = c;
            i++;
            if (c == '\n' && lines != NULL &&
                (rc = line_push(lines, i, (size_t)(o - out->p), err)) != 0)
                break;
            continue;
        }
        i += qp_escape(in, len, i, &byte);
        if (byte >= 0)
            *o++ = (unsigned char)byte;
        else if (in[i - 1] == '\n' && lines != NULL &&
                 (rc = line_push(lines, i, (size_t)(o - out->p), err)) != 0)
            break;
    }
    out->len = (size_t)(o - out->p);
    /* The last line, when the body does not end with a line end (room is left for it). */
    if (rc == 0 && lines != NULL && len > 0 && !lines->partial &&
        (lines->n == 0 || lines->v[lines->n - 1].enc_end != len))
        rc = line_push(lines, len, out->len, err);
    return rc;
}

void pqp_lines_free(pqp_lines *lines)
{
    free(lines->v);
    memset(lines, 0, sizeof *lines);
}

int pcodec_q_decode(const unsigned char *in, size_t len, pbuf *out, mr_error *err)
{
    int rc = pbuf_reserve(out, len, err);

    if (rc != 0)
        return rc;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = in[i];
        if (c == '_') {
            out->p[out->len++] = ' ';
        } else if (c == '=' && i + 2 < len && hex_val(in[i + 1]) >= 0 &&
                   hex_val(in[i + 2]) >= 0) {
            out->p[out->len++] = (unsigned char)(hex_val(in[i + 1]) * 16 + hex_val(in[i + 2]));
            i += 2;
        } else {
            out->p[out->len++] = c;
        }
    }
    return 0;
}

int pcodec_b64_encode(const unsigned char *in, size_t len, const char *eol, bool final_eol,
                      pbuf *out, mr_error *err)
{
    size_t eol_len = strlen(eol), lines = len / 57 + 1;
    size_t i = 0;
    unsigned char *o;
    int rc = pbuf_reserve(out, (len + 2) / 3 * 4 + lines * eol_len + eol_len, err);

    if (rc != 0)
        return rc;
    /* Whole lines of 57 bytes (76 characters), then the rest; through a local pointer
     * (stores through out->p would make the compiler reload it after each). */
    o = out->p + out->len;
    while (i < len) {
        size_t line_end = len - i > 57 ? i + 57 : len;
        if (i > 0) {
            memcpy(o, eol, eol_len);
            o += eol_len;
        }
        for (; line_end - i >= 3; i += 3) {
            unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
            o[0] = (unsigned char)B64[v >> 18];
            o[1] = (unsigned char)B64[(v >> 12) & 63];
            o[2] = (unsigned char)B64[(v >> 6) & 63];
            o[3] = (unsigned char)B64[v & 63];
            o += 4;
        }
        if (i < line_end) {   /* the last one or two bytes of the whole input */
            unsigned v = (unsigned)in[i] << 16 | (line_end - i > 1 ? (unsigned)in[i + 1] << 8 : 0);
            o[0] = (unsigned char)B64[v >> 18];
            o[1] = (unsigned char)B64[(v >> 12) & 63];
            o[2] = line_end - i > 1 ? (unsigned char)B64[(v >> 6) & 63] : '=';
            o[3] = '=';
            o += 4;
            i = line_end;
        }
    }
    if (final_eol && len > 0) {
        memcpy(o, eol, eol_len);
        o += eol_len;
    }
    out->len = (size_t)(o - out->p);
    return 0;
}

/* Is in[i] written as it is: printable and not '=', or a blank that does not end a line
 * (it would be stripped there)?  The same decision as the general case below. */
static inline bool qp_literal(const unsigned char *in, size_t len, size_t i, bool crlf)
{
    unsigned char c = in[i];

    if (c >= 33 && c <= 126)
        return c != '=';
    if (c != ' ' && c != '\t')
        return false;
    return !(i + 1 == len || (crlf ? (in[i + 1] == '\r' && i + 2 < len && in[i + 2] == '\n')
                                   : in[i + 1] == '\n'));
}

/* Quoted-printable per RFC 2045: hard breaks where the text has the part's line ending,
 * soft breaks to keep lines at most 76 characters. */
int pcodec_qp_encode(const unsigned char *in, size_t len, const char *eol, pbuf *out,
                     mr_error *err)
{
    size_t eol_len = strlen(eol), col = 0;
    size_t reserved_to = 0;
    bool crlf = eol_len == 2;
    int rc;

    for (size_t i = 0; i < len; i++) {
        /* Space for the next block of input reserved at once (no check per byte): every
         * byte "=XX", a soft break ("=" eol) at most every 73 output columns, hard
         * breaks no longer than their input, slack for a CRLF across the block end. */
        if (i >= reserved_to) {
            size_t blk = len - i < 4096 ? len - i : 4096;
            rc = pbuf_reserve(out, blk * 3 + (blk / 24 + 2) * (1 + eol_len) + 16, err);
            if (rc != 0)
                return rc;
            reserved_to = i + blk;
        }
        unsigned char c = in[i];
        char enc[3];
        size_t n;
        bool hard = false;

        if (col < 75 && qp_literal(in, len, i, crlf)) {
            /* The common case, as below but without checks: a run of characters written
             * as they are, up to the line's soft limit (or the reserved block's end). */
            size_t room = 75 - col, r = 1;
            if (room > reserved_to - i)
                room = reserved_to - i;
            while (r < room && qp_literal(in, len, i + r, crlf))
                r++;
            memcpy(out->p + out->len, in + i, r);
            out->len += r;
            col += r;
            i += r - 1;
            continue;
        }
        if (crlf && c == '\r' && i + 1 < len && in[i + 1] == '\n') {
            hard = true;
            i++;
        } else if (!crlf && c == '\n') {
            hard = true;
        }
        if (hard) {
            memcpy(out->p + out->len, eol, eol_len);
            out->len += eol_len;
            col = 0;
            continue;
        }
        /* Blanks stay literal unless they would end a line (they would be stripped). */
        bool line_end_next = i + 1 == len || (crlf ? (in[i + 1] == '\r' && i + 2 < len &&
                                                       in[i + 2] == '\n')
                                                    : in[i + 1] == '\n');
        if ((c >= 33 && c <= 126 && c != '=') ||
            ((c == ' ' || c == '\t') && !line_end_next)) {
            enc[0] = (char)c;
            n = 1;
        } else {
            enc[0] = '=';
            enc[1] = HEX[c >> 4];
            enc[2] = HEX[c & 15];
            n = 3;
        }
        if (col + n > 75) {
            out->p[out->len++] = '=';
            memcpy(out->p + out->len, eol, eol_len);
            out->len += eol_len;
            col = 0;
        }
        memcpy(out->p + out->len, enc, n);
        out->len += n;
        col += n;
    }
    return 0;
}

static bool q_safe(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

static bool utf8_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

int pcodec_2047_encode(const unsigned char *in, size_t len, const unsigned char *charset,
                       size_t charset_len, char enc, const char *eol, pbuf *out,
                       mr_error *err)
{
    /* A word is at most 75 characters: "=?" cs "?X?" text "?=". */
    size_t overhead = charset_len + 7, room = overhead < 60 ? 75 - overhead : 16;
    bool utf8 = charset_len == 5 && (memcmp(charset, "utf-8", 5) == 0 ||
                                     memcmp(charset, "UTF-8", 5) == 0);
    bool b = enc == 'B' || enc == 'b';
    size_t i = 0;
    int rc;

    if (len == 0) {
        /* An empty word keeps the header's shape ("=?cs?Q??="). */
        rc = pbuf_append(out, "=?", 2, err);
        if (rc == 0)
            rc = pbuf_append(out, charset, charset_len, err);
        if (rc == 0)
            rc = pbuf_append(out, b ? "?B?\?=" : "?Q?\?=", 5, err);
        return rc;
    }
    while (i < len) {
        size_t take = 0, width = 0;
        /* How many input bytes fit into this word. */
        if (b) {
            take = room / 4 * 3;
            if (take == 0)
                take = 3;
            if (take > len - i)
                take = len - i;
        } else {
            while (i + take < len) {
                size_t w = q_safe(in[i + take]) || in[i + take] == ' ' ? 1 : 3;
                if (width + w > room && take > 0)
                    break;
                width += w;
                take++;
            }
        }
        /* Never split a UTF-8 character across words (RFC 2047 section 5). */
        if (utf8 && i + take < len) {
            size_t t = take;
            while (t > 0 && utf8_cont(in[i + t]))
                t--;
            if (t > 0)
                take = t;
        }
        if (i > 0) {
            rc = pbuf_append(out, eol, strlen(eol), err);
            if (rc == 0)
                rc = pbuf_append(out, " ", 1, err);
            if (rc != 0)
                return rc;
        }
        rc = pbuf_append(out, "=?", 2, err);
        if (rc == 0)
            rc = pbuf_append(out, charset, charset_len, err);
        if (rc == 0)
            rc = pbuf_append(out, b ? "?B?" : "?Q?", 3, err);
        if (rc != 0)
            return rc;
        if (b) {
            rc = pcodec_b64_encode(in + i, take, "", false, out, err);
            if (rc != 0)
                return rc;
        } else {
            rc = pbuf_reserve(out, take * 3, err);
            if (rc != 0)
                return rc;
            for (size_t k = i; k < i + take; k++) {
                unsigned char c = in[k];
                if (c == ' ') {
                    out->p[out->len++] = '_';
                } else if (q_safe(c)) {
                    out->p[out->len++] = c;
                } else {
                    out->p[out->len++] = '=';
                    out->p[out->len++] = (unsigned char)HEX[c >> 4];
                    out->p[out->len++] = (unsigned char)HEX[c & 15];
                }
            }
        }
        rc = pbuf_append(out, "?=", 2, err);
        if (rc != 0)
            return rc;
        i += take;
    }
    return 0;
}
