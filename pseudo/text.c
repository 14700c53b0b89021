/* text.c — replacing identifiers in text: plain and HTML bodies, header values
 * with RFC 2047 encoded-words, and name/filename parameters (RFC 2231).
 *
 * The scanner runs over a "view" of the source: the source itself, or a decoded form
 * (HTML entities, %XX) with a map from every view byte back to the source bytes it came
 * from.  A match is replaced in the source, so everything around it stays byte for byte;
 * encoded-words are decoded, replaced and re-encoded as a whole (the edit then covers the
 * whole encoded span). */
#include "pseudo/text.h"
#include "pseudo/policy.h"
#include "pseudo/scan.h"

#include <errno.h>
#include <stdint.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <unistr.h>

/* ---- views ------------------------------------------------------------------------- */

/* HTML is scanned through its view in pieces of about this size (see ptext_plain). */
#define PTEXT_HTML_CHUNK (1u << 20)

struct pview {
    pbuf text;          /* what is scanned */
    size_t *vs, *ve;    /* per view byte: source start and end; NULL: identity */
    unsigned char *ext; /* per view byte: lies in an RFC 2231 extended value */
    size_t cap;
};

static void view_free(struct pview *v)
{
    pbuf_free(&v->text);
    free(v->vs);
    free(v->ve);
    free(v->ext);
    memset(v, 0, sizeof *v);
}

/* Room for n more view bytes (and their maps). */
static int view_reserve(struct pview *v, size_t n, mr_error *err)
{
    if (v->text.len + n > v->cap) {
        size_t cap = v->cap ? v->cap : 64;
        while (cap < v->text.len + n)
            cap *= 2;
        size_t *nvs = realloc(v->vs, cap * sizeof *nvs);
        if (nvs == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory for a text view");
        v->vs = nvs;
        size_t *nve = realloc(v->ve, cap * sizeof *nve);
        if (nve == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory for a text view");
        v->ve = nve;
        unsigned char *nx = realloc(v->ext, cap);
        if (nx == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory for a text view");
        v->ext = nx;
        v->cap = cap;
    }
    return pbuf_reserve(&v->text, n, err);
}

static int view_push(struct pview *v, const unsigned char *bytes, size_t n, size_t s, size_t e,
                     bool ext, mr_error *err)
{
    int rc = view_reserve(v, n, err);

    if (rc != 0)
        return rc;
    for (size_t k = 0; k < n; k++) {
        v->vs[v->text.len + k] = s;
        v->ve[v->text.len + k] = e;
        v->ext[v->text.len + k] = ext;
    }
    return pbuf_append(&v->text, bytes, n, err);
}

/* n source bytes src[i, i + n) as they are: each maps to itself. */
static int view_push_run(struct pview *v, const unsigned char *src, size_t i, size_t n,
                         mr_error *err)
{
    int rc = view_reserve(v, n, err);
    size_t base = v->text.len;

    if (rc != 0)
        return rc;
    /* Through restrict locals: the two maps cannot overlap, so the loop is vectorised
     * (through v->vs and v->ve the compiler must reload both pointers after every
     * store). */
    size_t *restrict vs = v->vs + base, *restrict ve = v->ve + base;
    for (size_t k = 0; k < n; k++) {
        vs[k] = i + k;
        ve[k] = i + k + 1;
    }
    memset(v->ext + base, 0, n);
    return pbuf_append(&v->text, src + i, n, err);
}

static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t utf8_put(unsigned long cp, unsigned char *o)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp < 0x110000) {
        o[0] = (unsigned char)(0xF0 | (cp >> 18));
        o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (unsigned char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

static const struct {
    const char *name;
    unsigned cp;
} ENTITIES[] = {
    {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''},
    {"nbsp", ' '},      /* a blank for matching "Mette&nbsp;Hansen" */
    {"commat", '@'}, {"period", '.'}, {"hyphen", '-'}, {"dash", '-'}, {"lowbar", '_'},
    {"plus", '+'}, {"aelig", 0xE6}, {"AElig", 0xC6}, {"oslash", 0xF8}, {"Oslash", 0xD8},
    {"aring", 0xE5}, {"Aring", 0xC5}, {"eacute", 0xE9}, {"Eacute", 0xC9}, {"auml", 0xE4},
    {"Auml", 0xC4}, {"ouml", 0xF6}, {"Ouml", 0xD6}, {"uuml", 0xFC}, {"Uuml", 0xDC},
    {"szlig", 0xDF}, {"aacute", 0xE1}, {"oacute", 0xF3}, {"iacute", 0xED},
    {"uacute", 0xFA}, {"egrave", 0xE8}, {"agrave", 0xE0},
};

/* HTML entity at src[i] == '&': code point and length, or 0. */
static size_t entity_at(const unsigned char *src, size_t len, size_t i, unsigned long *cp)
{
    size_t j = i + 1;

    if (j < len && src[j] == '#') {
        unsigned long v = 0;
        size_t digits = 0;
        bool hex = j + 1 < len && (src[j + 1] == 'x' || src[j + 1] == 'X');
        j += hex ? 2 : 1;
        while (j < len && digits < 8 && (hex ? hexv(src[j]) >= 0 : (src[j] >= '0' && src[j] <= '9'))) {
            v = v * (hex ? 16 : 10) + (unsigned long)(hex ? hexv(src[j]) : src[j] - '0');
            j++;
            digits++;
        }
        if (digits == 0)
            return 0;
        if (j < len && src[j] == ';')
            j++;
        *cp = v == 0xA0 ? ' ' : v;
        return j - i;
    }
    for (size_t e = 0; e < sizeof ENTITIES / sizeof ENTITIES[0]; e++) {
        size_t nl = strlen(ENTITIES[e].name);
        if (len - j > nl && memcmp(src + j, ENTITIES[e].name, nl) == 0 && src[j + nl] == ';') {
            *cp = ENTITIES[e].cp;
            return nl + 2;
        }
    }
    return 0;
}

/* View of HTML text with entities and %XX decoded. */
static size_t next_byte(const unsigned char *src, size_t len, size_t from, unsigned char c)
{
    const unsigned char *p = from < len ? memchr(src + from, c, len - from) : NULL;

    return p != NULL ? (size_t)(p - src) : len;
}

static int html_view(const unsigned char *src, size_t len, struct pview *v, mr_error *err)
{
    /* The next '&' and '%' at or after a position, each found by memchr and kept until
     * passed (most text is long runs between them). */
    size_t i = 0, run = 0, amp = 0, pct = 0;
    /* The view is never longer than the source: one allocation per map. */
    int rc = view_reserve(v, len, err);

    while (i < len && rc == 0) {
        unsigned char u[4];
        unsigned long cp;
        size_t el, ul;
        if (src[i] == '&' && (el = entity_at(src, len, i, &cp)) != 0 &&
            (ul = utf8_put(cp, u)) != 0) {
            rc = view_push(v, u, ul, i, i + el, false, err);
            i += el;
        } else if (src[i] == '%' && i + 2 < len && hexv(src[i + 1]) >= 0 &&
                   hexv(src[i + 2]) >= 0) {
            u[0] = (unsigned char)(hexv(src[i + 1]) * 16 + hexv(src[i + 2]));
            rc = view_push(v, u, 1, i, i + 3, false, err);
            i += 3;
        } else {
            /* Plain bytes in bulk up to the next '&' or '%'. */
            if (amp <= i)
                amp = next_byte(src, len, i + 1, '&');
            if (pct <= i)
                pct = next_byte(src, len, i + 1, '%');
            run = amp < pct ? amp : pct;
            rc = view_push_run(v, src, i, run - i, err);
            i = run;
        }
    }
    return rc;
}

/* HTML text with entities and %XX decoded as html_view decodes it, without the maps
 * (pass 1 only learns names from it: the maps cost 17 bytes a byte). */
static int html_text(const unsigned char *src, size_t len, pbuf *out, mr_error *err)
{
    size_t i = 0, amp = 0, pct = 0;
    int rc = pbuf_reserve(out, len, err);

    while (i < len && rc == 0) {
        unsigned char u[4];
        unsigned long cp;
        size_t el, ul, run;
        /* the next '&' and '%', each found once and kept until passed */
        if (amp < i || (amp == 0 && i == 0))
            amp = next_byte(src, len, i, '&');
        if (pct < i || (pct == 0 && i == 0))
            pct = next_byte(src, len, i, '%');
        run = amp < pct ? amp : pct;
        rc = pbuf_append(out, src + i, run - i, err);
        i = run;
        if (rc != 0 || i >= len)
            break;
        if (src[i] == '&' && (el = entity_at(src, len, i, &cp)) != 0 && (ul = utf8_put(cp, u)) != 0) {
            rc = pbuf_append(out, u, ul, err);
            i += el;
        } else if (src[i] == '%' && i + 2 < len && hexv(src[i + 1]) >= 0 && hexv(src[i + 2]) >= 0) {
            u[0] = (unsigned char)(hexv(src[i + 1]) * 16 + hexv(src[i + 2]));
            rc = pbuf_append(out, u, 1, err);
            i += 3;
        } else {
            rc = pbuf_append(out, src + i, 1, err);
            i++;
        }
    }
    return rc;
}

/* View of iCalendar / vCard text with its folds removed: a line break followed by one
 * blank or tab continues the line (RFC 5545 3.1, RFC 6350 3.2), so "mette.m\r\n olsen@…"
 * is one address.  Every other byte maps to itself. */
static bool has_fold(const unsigned char *src, size_t len)
{
    for (const unsigned char *p = src; (p = memchr(p, '\n', len - (size_t)(p - src))) != NULL; p++)
        if ((size_t)(p - src) + 1 < len && (p[1] == ' ' || p[1] == '\t'))
            return true;
    return false;
}

static int folded_view(const unsigned char *src, size_t len, struct pview *v, mr_error *err)
{
    size_t i = 0;
    int rc = view_reserve(v, len, err);

    while (i < len && rc == 0) {
        size_t e = i;
        /* the run up to the next fold */
        for (;;) {
            const unsigned char *nl = memchr(src + e, '\n', len - e);
            if (nl == NULL) {
                e = len;
                break;
            }
            e = (size_t)(nl - src);
            if (e + 1 < len && (src[e + 1] == ' ' || src[e + 1] == '\t'))
                break;
            e++;
        }
        size_t cut = e < len && e > i && src[e - 1] == '\r' ? e - 1 : e;
        rc = view_push_run(v, src, i, cut - i, err);
        i = e < len ? e + 2 : len;   /* past "\n" and the blank */
    }
    return rc;
}

/* ---- the emitter: scanner matches -> replacements in the source -------------------- */

struct emitter {
    struct pseudo_ctx *ctx;
    const unsigned char *src;   /* source region */
    size_t src_len;
    size_t cursor;              /* source bytes before this are written */
    const struct pview *view;   /* NULL: the scanned text is src itself */
    const unsigned char *text;  /* scanned text */
    pout *out;
};

static int replacement(struct pseudo_ctx *ctx, const unsigned char *text,
                       const struct pmatch *m, char rep[PSEUDO_SHAPE_MAX], size_t *rep_len,
                       bool *keep)
{
    const unsigned char *norm;
    unsigned char nbuf[256], *owned = NULL;
    size_t nlen;
    const char *tok;
    int rc;

    *keep = false;
    if (m->escape) {
        /* Text shaped like a token gets '-' -> '~' so that no token in the output is
         * anything but a token this key made. */
        size_t n = m->end - m->start;
        if (n >= PSEUDO_SHAPE_MAX)
            n = PSEUDO_SHAPE_MAX - 1;
        memcpy(rep, text + m->start, n);
        char *dash = memchr(rep, '-', n);
        if (dash != NULL)
            *dash = '~';
        *rep_len = n;
        return 0;
    }
    if (m->kind == PSEUDO_NAME && m->canon == SIZE_MAX) {
        /* A name found by position: learn it (and its parts) for the rest of the message. */
        rc = pnames_add(&ctx->names, text + m->start, m->end - m->start, ctx->err);
        if (rc != 0)
            return rc;
        rc = ptoken_normalise_buf(PSEUDO_NAME, text + m->start, m->end - m->start, nbuf,
                                  sizeof nbuf, &owned, &nlen, ctx->err);
        if (rc != 0)
            return rc;
        norm = owned;
    } else if (m->kind == PSEUDO_NAME) {
        norm = ctx->names.canon[m->canon];
        nlen = ctx->names.canon_len[m->canon];
    } else {
        rc = ptoken_normalise_buf(m->kind, text + m->start, m->end - m->start, nbuf,
                                  sizeof nbuf, &owned, &nlen, ctx->err);
        if (rc == MR_E_INVALID) {
            *keep = true;
            return 0;
        }
        if (rc != 0)
            return rc;
        norm = owned;
        if (m->kind == PSEUDO_EMAIL && pseudo_is_own(ctx->pol, norm, nlen)) {
            if (owned != nbuf)
                free(owned);
            *keep = true;
            return 0;
        }
    }
    rc = ptokens_get(&ctx->tokens, ctx->key, m->kind, norm, nlen, true, &tok, ctx->err);
    if (owned != nbuf)
        free(owned);
    if (rc != 0)
        return rc;
    *rep_len = ptoken_shape(m->kind, tok, rep);
    return 0;
}

static int emit_piece(struct emitter *em, size_t s, size_t e, const char *rep, size_t rep_len)
{
    int rc;

    if (s < em->cursor || e > em->src_len || e < s)
        return 0;   /* cannot go back (odd parameter order): leave the text as it is */
    rc = pout_copy(em->out, em->src + em->cursor, s - em->cursor, em->ctx->err);
    if (rc == 0)
        rc = pout_replace(em->out, em->src + s, e - s, (const unsigned char *)rep, rep_len,
                          em->ctx->err);
    if (rc == 0)
        em->cursor = e;
    return rc;
}

static int emit_cb(void *arg, const struct pmatch *m)
{
    struct emitter *em = arg;
    char rep[PSEUDO_SHAPE_MAX * 3];
    size_t rep_len = 0;
    bool keep;
    int rc = replacement(em->ctx, em->text, m, rep, &rep_len, &keep);

    if (rc != 0 || keep)
        return rc;
    if (em->view == NULL || em->view->vs == NULL)
        return emit_piece(em, m->start, m->end, rep, rep_len);
    /* Map to source.  A match is one piece of source where the view bytes come from
     * contiguous source (the bytes of one character reference, "&oslash;", are one span
     * for all the bytes they decode to); over a discontinuity (RFC 2231 sections, a
     * folded line) it is several, and the token is spread over them in order, so that
     * the parts read together (joined sections, unfolded lines) give the token, and no
     * source bytes are replaced by nothing. */
    const struct pview *v = em->view;
    struct { size_t s, e; bool ext; } pc[64];
    size_t np = 0;
    for (size_t i = m->start; i < m->end; i++) {
        if (np > 0 && (v->vs[i] == pc[np - 1].e ||
                       (v->vs[i] == v->vs[i - 1] && v->ve[i] == v->ve[i - 1]))) {
            if (v->ve[i] > pc[np - 1].e)
                pc[np - 1].e = v->ve[i];
            continue;
        }
        if (np == sizeof pc / sizeof pc[0])
            return 0;   /* absurdly fragmented: leave as is rather than half-replace */
        pc[np].s = v->vs[i];
        pc[np].e = v->ve[i];
        pc[np].ext = v->ext[i] != 0;
        np++;
    }
    for (size_t k = 0, used = 0; k < np; k++) {
        /* Piece k gets rep[used, next): an equal share, the last one the rest. */
        size_t next = k + 1 == np ? rep_len : (rep_len * (k + 1)) / np;
        char enc[PSEUDO_SHAPE_MAX * 3];
        size_t n = 0;
        if (next < used)
            next = used;
        for (size_t j = used; j < next; j++) {
            if (pc[k].ext && rep[j] == '@') {
                /* '@' is not allowed in an RFC 2231 extended value. */
                memcpy(enc + n, "%40", 3);
                n += 3;
            } else {
                enc[n++] = rep[j];
            }
        }
        used = next;
        rc = emit_piece(em, pc[k].s, pc[k].e, enc, n);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int ptext_piece(struct pseudo_ctx *ctx, const unsigned char *src, size_t len,
                       unsigned flags, pout *out)
{
    struct emitter em = {.ctx = ctx, .src = src, .src_len = len, .out = out, .text = src};
    unsigned scan = flags & 0xFFu;
    int rc;

    rc = pnames_prepare(&ctx->names, ctx->err);   /* names learnt from earlier text */
    if (rc != 0)
        return rc;
    if ((flags & PTEXT_HTML) && (memchr(src, '&', len) != NULL || memchr(src, '%', len) != NULL)) {
        struct pview v = {0};
        rc = html_view(src, len, &v, ctx->err);
        if (rc == 0) {
            em.view = &v;
            em.text = v.text.p;
            rc = pscan_run(ctx, v.text.p, v.text.len, scan, emit_cb, &em, ctx->err);
        }
        view_free(&v);
    } else if ((flags & PTEXT_FOLDED) && has_fold(src, len)) {
        struct pview v = {0};
        rc = folded_view(src, len, &v, ctx->err);
        if (rc == 0) {
            em.view = &v;
            em.text = v.text.p;
            rc = pscan_run(ctx, v.text.p, v.text.len, scan, emit_cb, &em, ctx->err);
        }
        view_free(&v);
    } else {
        rc = pscan_run(ctx, src, len, scan, emit_cb, &em, ctx->err);
    }
    if (rc == 0)
        rc = pout_copy(out, src + em.cursor, len - em.cursor, ctx->err);
    return rc;
}


int ptext_plain(struct pseudo_ctx *ctx, const unsigned char *src, size_t len, unsigned flags,
                pout *out)
{
    int rc;

    if (ctx->collecting) {
        if (!ctx->pol->names)
            return 0;
        /* Learn from the text the later passes read: HTML with its references decoded
         * ("Bj&oslash;rg" is one name), calendar lines unfolded. */
        if ((flags & PTEXT_HTML) && memchr(src, '&', len) != NULL) {
            pbuf dec = pscratch_get(ctx);
            rc = html_text(src, len, &dec, ctx->err);
            if (rc == 0)
                rc = pscan_learn(ctx, dec.p, dec.len);
            pscratch_put(ctx, &dec);
            return rc;
        }
        if ((flags & PTEXT_FOLDED) && has_fold(src, len)) {
            struct pview v = {0};
            rc = folded_view(src, len, &v, ctx->err);
            if (rc == 0)
                rc = pscan_learn(ctx, v.text.p, v.text.len);
            view_free(&v);
            return rc;
        }
        return pscan_learn(ctx, src, len);
    }
    if ((flags & PTEXT_HTML) && len > PTEXT_HTML_CHUNK) {
        /* The HTML view costs 17 bytes per byte: bound it by working in pieces that end
         * at a line break (identifiers other than names never span one). */
        size_t s = 0;
        while (s < len) {
            size_t e = len - s > PTEXT_HTML_CHUNK ? s + PTEXT_HTML_CHUNK : len;
            if (e < len) {
                /* End at a line break, else after a tag, within the next chunk's length;
                 * else (one enormous word) cut there. */
                size_t w = len - e < PTEXT_HTML_CHUNK ? len - e : PTEXT_HTML_CHUNK;
                const unsigned char *nl = memchr(src + e, '\n', w);
                if (nl == NULL)
                    nl = memchr(src + e, '>', w);
                e = nl ? (size_t)(nl - src) + 1 : e + w;
            }
            rc = ptext_piece(ctx, src + s, e - s, flags, out);
            if (rc != 0)
                return rc;
            s = e;
        }
        return 0;
    }
    return ptext_piece(ctx, src, len, flags, out);
}

/* ---- RFC 2047 ------------------------------------------------------------------------ */

struct eword {
    size_t start, end;          /* "=?" .. "?=" */
    size_t cs, cs_len;          /* charset */
    char enc;                   /* 'B' or 'Q' */
    size_t text, text_len;      /* encoded text */
};

/* A byte that may stand in an encoded-word's charset or text: printable, no blank, no '?'
 * (one subtraction covers the range 0x21..0x7E). */
static inline bool eword_byte(unsigned char c)
{
    return (unsigned char)(c - 0x21) < 0x5Eu && c != '?';
}

static bool eword_at(const unsigned char *s, size_t len, size_t i, struct eword *w)
{
    size_t j = i + 2;

    if (i + 2 > len || s[i] != '=' || s[i + 1] != '?')
        return false;
    w->start = i;
    w->cs = j;
    while (j < len && j - w->cs < 64 && eword_byte(s[j]))
        j++;
    if (j == w->cs || j + 2 >= len || s[j] != '?')
        return false;
    w->cs_len = j - w->cs;
    w->enc = (char)(s[j + 1] & ~0x20);
    if ((w->enc != 'B' && w->enc != 'Q') || s[j + 2] != '?')
        return false;
    j += 3;
    w->text = j;
    while (j < len && eword_byte(s[j]))
        j++;
    if (j + 1 >= len || s[j] != '?' || s[j + 1] != '=')
        return false;
    w->text_len = j - w->text;
    w->end = j + 2;
    return true;
}

static bool same_charset(const unsigned char *s, const struct eword *a, const struct eword *b)
{
    if (a->enc != b->enc || a->cs_len != b->cs_len)
        return false;
    for (size_t k = 0; k < a->cs_len; k++) {
        unsigned char x = s[a->cs + k], y = s[b->cs + k];
        if ((x | 0x20) != (y | 0x20))
            return false;
    }
    return true;
}

static bool only_space(const unsigned char *s, size_t a, size_t b)
{
    for (size_t k = a; k < b; k++)
        if (s[k] != ' ' && s[k] != '\t' && s[k] != '\r' && s[k] != '\n')
            return false;
    return true;
}

static int eword_decode(const unsigned char *s, const struct eword *w, pbuf *out, mr_error *err)
{
    if (w->enc == 'B')
        return pcodec_b64_decode(s + w->text, w->text_len, out, err);
    return pcodec_q_decode(s + w->text, w->text_len, out, err);
}

/* Next run of adjacent encoded-words (same charset and encoding, only blanks between)
 * at or after i: returns false if none. */
static bool next_run(const unsigned char *s, size_t len, size_t i, struct eword *first,
                     size_t *run_end, size_t *n_words)
{
    const unsigned char *p;

    while (i + 1 < len && (p = memchr(s + i, '=', len - i - 1)) != NULL) {
        size_t at = (size_t)(p - s);
        if (eword_at(s, len, at, first)) {
            struct eword w = *first, nx;
            size_t j = w.end;
            *n_words = 1;
            while (true) {
                size_t k = j;
                while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\n'))
                    k++;
                if (k == j && k < len && s[k] != '=')
                    break;
                if (!eword_at(s, len, k, &nx) || !same_charset(s, first, &nx) ||
                    !only_space(s, j, k))
                    break;
                j = nx.end;
                (*n_words)++;
            }
            *run_end = j;
            return true;
        }
        i = at + 1;
    }
    return false;
}

static int ptext_eword_run(struct pseudo_ctx *ctx, const unsigned char *s, size_t len,
                           const struct eword *first, size_t run_end, unsigned flags,
                           const char *eol, pout *out)
{
    pbuf dec = pscratch_get(ctx), enc = {0};
    pout tmp;
    size_t i = first->start;
    int rc = 0;

    pout_init(&tmp, NULL, 0);
    tmp.buf = pscratch_get(ctx);
    while (rc == 0 && i < run_end) {
        struct eword w;
        if (!eword_at(s, len, i, &w)) {
            i++;
            continue;
        }
        rc = eword_decode(s, &w, &dec, ctx->err);
        i = w.end;
    }
    if (rc == 0 && dec.len > 0)
        rc = ptext_plain(ctx, dec.p, dec.len, flags & ~PTEXT_HTML, &tmp);
    if (rc == 0) {
        if (dec.len == 0 || (tmp.buf.len == dec.len && memcmp(tmp.buf.p, dec.p, dec.len) == 0)) {
            rc = pout_copy(out, s + first->start, run_end - first->start, ctx->err);
        } else {
            enc = pscratch_get(ctx);
            rc = pcodec_2047_encode(tmp.buf.p, tmp.buf.len, s + first->cs, first->cs_len,
                                    first->enc, eol, &enc, ctx->err);
            if (rc == 0)
                rc = pout_replace(out, s + first->start, run_end - first->start, enc.p,
                                  enc.len, ctx->err);
        }
    }
    pscratch_put(ctx, &dec);
    pscratch_put(ctx, &enc);
    pscratch_put(ctx, &tmp.buf);
    pout_free(&tmp);
    return rc;
}

int ptext_header(struct pseudo_ctx *ctx, const unsigned char *src, size_t len, unsigned flags,
                 pout *out)
{
    const char *eol = NULL;     /* looked up at the first encoded-word: most have none */
    size_t i = 0, n_words, run_end;
    struct eword w;
    int rc = 0;

    if (ctx->collecting)
        return 0;
    while (rc == 0 && next_run(src, len, i, &w, &run_end, &n_words)) {
        if (eol == NULL)
            eol = pcodec_eol_of(src, len);
        rc = ptext_plain(ctx, src + i, w.start - i, flags, out);
        if (rc == 0)
            rc = ptext_eword_run(ctx, src, len, &w, run_end, flags, eol, out);
        i = run_end;
    }
    if (rc == 0)
        rc = ptext_plain(ctx, src + i, len - i, flags, out);
    return rc;
}

/* Decoded header text in UTF-8 (best effort), for collecting display names. */
int ptext_header_utf8(const unsigned char *src, size_t len, pbuf *out, mr_error *err)
{
    size_t i = 0, n_words, run_end;
    struct eword w;
    int rc = 0;

    while (rc == 0 && next_run(src, len, i, &w, &run_end, &n_words)) {
        pbuf dec = {0};
        char cs[72];
        size_t j = w.start;
        rc = pbuf_append(out, src + i, w.start - i, err);
        while (rc == 0 && j < run_end) {
            struct eword x;
            if (!eword_at(src, len, j, &x)) {
                j++;
                continue;
            }
            rc = eword_decode(src, &x, &dec, err);
            j = x.end;
        }
        memcpy(cs, src + w.cs, w.cs_len);
        cs[w.cs_len] = '\0';
        char *star = strchr(cs, '*');   /* RFC 2231 language suffix */
        if (star != NULL)
            *star = '\0';
        /* The common charsets are converted here; iconv (slow to open) for the rest. */
        bool utf8 = strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "us-ascii") == 0 ||
                    strcasecmp(cs, "utf8") == 0;
        bool latin1 = strcasecmp(cs, "iso-8859-1") == 0 || strcasecmp(cs, "latin1") == 0 ||
                      strcasecmp(cs, "iso8859-1") == 0;
        iconv_t cd = (rc == 0 && dec.len > 0 && !utf8 && !latin1) ? iconv_open("UTF-8", cs)
                                                                  : (iconv_t)-1;
        if (rc == 0 && latin1) {
            for (size_t k = 0; rc == 0 && k < dec.len; k++) {
                unsigned char c = dec.p[k], two[2];
                two[0] = (unsigned char)(0xC0 | (c >> 6));
                two[1] = (unsigned char)(0x80 | (c & 0x3F));
                rc = c < 0x80 ? pbuf_append(out, &c, 1, err) : pbuf_append(out, two, 2, err);
            }
        } else if (cd != (iconv_t)-1) {
            size_t cap = dec.len * 4 + 16, inl = dec.len, outl = cap;
            char *buf = malloc(cap), *ip = (char *)dec.p, *op = buf;
            if (buf != NULL && iconv(cd, &ip, &inl, &op, &outl) != (size_t)-1)
                rc = pbuf_append(out, buf, cap - outl, err);
            else if (rc == 0)
                rc = pbuf_append(out, dec.p, dec.len, err);
            free(buf);
            iconv_close(cd);
        } else if (rc == 0) {
            rc = pbuf_append(out, dec.p, dec.len, err);
        }
        pbuf_free(&dec);
        i = run_end;
    }
    if (rc == 0)
        rc = pbuf_append(out, src + i, len - i, err);
    if (rc == 0 && out->len > 0 && u8_check(out->p, out->len) != NULL) {
        /* Raw 8-bit header: Latin-1 is the usual reality. */
        pbuf conv = {0};
        for (size_t k = 0; rc == 0 && k < out->len; k++) {
            unsigned char c = out->p[k], two[2];
            if (c < 0x80) {
                rc = pbuf_append(&conv, &c, 1, err);
            } else {
                two[0] = (unsigned char)(0xC0 | (c >> 6));
                two[1] = (unsigned char)(0x80 | (c & 0x3F));
                rc = pbuf_append(&conv, two, 2, err);
            }
        }
        if (rc == 0) {
            pbuf_free(out);
            *out = conv;
        } else {
            pbuf_free(&conv);
        }
    }
    return rc;
}

/* ---- Content-Type / Content-Disposition parameters ------------------------------------ */

struct param {
    size_t name, name_len;      /* attribute as written */
    size_t vstart, vend;        /* value (inside quotes when quoted) */
    int section;                /* -1 without "*N" */
    bool extended;              /* trailing '*' */
    bool quoted;
};

static size_t skip_cfws(const unsigned char *s, size_t len, size_t i)
{
    while (i < len) {
        if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
            i++;
        } else if (s[i] == '(') {
            int depth = 0;
            while (i < len) {
                if (s[i] == '\\' && i + 1 < len) {
                    i += 2;
                    continue;
                }
                if (s[i] == '(')
                    depth++;
                else if (s[i] == ')' && --depth == 0) {
                    i++;
                    break;
                }
                i++;
            }
        } else {
            break;
        }
    }
    return i;
}

/* Parses "; attr=value" items; stops at the first thing it cannot read. */
static size_t parse_params(const unsigned char *s, size_t len, struct param *ps, size_t max)
{
    size_t i = 0, n = 0;
    bool inq = false;

    /* Skip the type/subtype (or disposition) up to the first ';' outside quotes. */
    for (; i < len; i++) {
        if (s[i] == '"')
            inq = !inq;
        else if (s[i] == ';' && !inq)
            break;
    }
    while (i < len && n < max) {
        struct param p = {.section = -1};
        if (s[i] != ';')
            break;
        i = skip_cfws(s, len, i + 1);
        p.name = i;
        while (i < len && s[i] > ' ' && s[i] < 127 && s[i] != '=' && s[i] != ';' && s[i] != '(')
            i++;
        p.name_len = i - p.name;
        i = skip_cfws(s, len, i);
        if (p.name_len == 0 || i >= len || s[i] != '=') {
            /* Not a parameter: resynchronise at the next ';'. */
            while (i < len && s[i] != ';')
                i++;
            continue;
        }
        i = skip_cfws(s, len, i + 1);
        if (i < len && s[i] == '"') {
            p.quoted = true;
            p.vstart = ++i;
            while (i < len && s[i] != '"') {
                if (s[i] == '\\' && i + 1 < len)
                    i++;
                i++;
            }
            p.vend = i < len ? i : len;
            if (i < len)
                i++;
        } else {
            p.vstart = i;
            while (i < len && s[i] != ';' && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' &&
                   s[i] != '\n' && s[i] != '(')
                i++;
            p.vend = i;
        }
        /* "name*", "name*0", "name*0*" */
        size_t nl = p.name_len;
        if (nl > 0 && s[p.name + nl - 1] == '*') {
            p.extended = true;
            nl--;
        }
        size_t star = nl;
        while (star > 0 && s[p.name + star - 1] >= '0' && s[p.name + star - 1] <= '9')
            star--;
        if (star > 0 && star < nl && s[p.name + star - 1] == '*') {
            int sec = 0;
            for (size_t k = star; k < nl && sec < 100000; k++)
                sec = sec * 10 + (s[p.name + k] - '0');
            p.section = sec;
            nl = star - 1;
        }
        p.name_len = nl;
        ps[n++] = p;
        i = skip_cfws(s, len, i);
        while (i < len && s[i] != ';')
            i++;   /* junk after a value */
    }
    return n;
}

static bool attr_is(const unsigned char *s, const struct param *p, const char *name)
{
    size_t l = strlen(name);

    if (p->name_len != l)
        return false;
    for (size_t k = 0; k < l; k++)
        if ((s[p->name + k] | 0x20) != name[k])
            return false;
    return true;
}

#define MAX_PARAMS 64

int ptext_ctype_params(struct pseudo_ctx *ctx, const unsigned char *src, size_t len, pout *out)
{
    static const char *const wanted[] = {"name", "filename"};
    struct param ps[MAX_PARAMS];
    size_t n, cursor = 0;
    int rc = 0;

    if (ctx->collecting)
        return 0;
    rc = pnames_prepare(&ctx->names, ctx->err);
    if (rc != 0)
        return rc;
    n = parse_params(src, len, ps, MAX_PARAMS);
    /* Handle "name" and "filename" in the order they appear: output only moves forward. */
    size_t first_of[2] = {SIZE_MAX, SIZE_MAX};
    for (size_t i = 0; i < n; i++)
        for (size_t w = 0; w < 2; w++)
            if (first_of[w] == SIZE_MAX && attr_is(src, &ps[i], wanted[w]))
                first_of[w] = ps[i].vstart;
    size_t order[2] = {0, 1};
    if (first_of[1] < first_of[0]) {
        order[0] = 1;
        order[1] = 0;
    }
    for (size_t oi = 0; oi < 2 && rc == 0; oi++) {
        size_t w = order[oi];
        size_t idx[MAX_PARAMS], k = 0;
        bool composite = false;
        for (size_t i = 0; i < n; i++) {
            if (attr_is(src, &ps[i], wanted[w])) {
                idx[k++] = i;
                composite |= ps[i].extended || ps[i].section >= 0;
            }
        }
        if (k == 0 || ps[idx[0]].vstart < cursor)
            continue;
        if (!composite) {
            for (size_t j = 0; j < k && rc == 0; j++) {
                if (ps[idx[j]].vstart < cursor)
                    continue;
                rc = pout_copy(out, src + cursor, ps[idx[j]].vstart - cursor, ctx->err);
                if (rc == 0)
                    rc = ptext_header(ctx, src + ps[idx[j]].vstart,
                                      ps[idx[j]].vend - ps[idx[j]].vstart,
                                      pscan_policy_flags(ctx->pol), out);
                cursor = ps[idx[j]].vend;
            }
            continue;
        }
        /* RFC 2231: one logical value over sections, %XX decoded in extended ones. */
        struct pview v = {0};
        for (size_t j = 0; j < k && rc == 0; j++) {
            const struct param *p = &ps[idx[j]];
            size_t a = p->vstart;
            if (p->extended && (p->section <= 0)) {
                /* charset'language'value */
                const unsigned char *q1 = memchr(src + a, '\'', p->vend - a);
                const unsigned char *q2 = q1 ? memchr(q1 + 1, '\'', (size_t)(src + p->vend - q1 - 1)) : NULL;
                if (q2 != NULL)
                    a = (size_t)(q2 - src) + 1;
            }
            for (size_t i = a; i < p->vend && rc == 0;) {
                if (p->extended && src[i] == '%' && i + 2 < p->vend &&
                    hexv(src[i + 1]) >= 0 && hexv(src[i + 2]) >= 0) {
                    unsigned char b = (unsigned char)(hexv(src[i + 1]) * 16 + hexv(src[i + 2]));
                    rc = view_push(&v, &b, 1, i, i + 3, true, ctx->err);
                    i += 3;
                } else {
                    rc = view_push(&v, src + i, 1, i, i + 1, p->extended, ctx->err);
                    i++;
                }
            }
        }
        if (rc == 0 && v.text.len > 0) {
            struct emitter em = {.ctx = ctx, .src = src, .src_len = len, .cursor = cursor,
                                 .view = &v, .text = v.text.p, .out = out};
            rc = pscan_run(ctx, v.text.p, v.text.len, pscan_policy_flags(ctx->pol), emit_cb,
                           &em, ctx->err);
            cursor = em.cursor;
        }
        view_free(&v);
    }
    if (rc == 0)
        rc = pout_copy(out, src + cursor, len - cursor, ctx->err);
    return rc;
}

size_t ptext_param_get(const unsigned char *s, size_t len, const char *name, unsigned char *out,
                       size_t cap)
{
    struct param ps[MAX_PARAMS];
    size_t n = parse_params(s, len, ps, MAX_PARAMS);

    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        if (ps[i].extended || ps[i].section >= 0 || !attr_is(s, &ps[i], name))
            continue;
        for (size_t j = ps[i].vstart; j < ps[i].vend; j++) {
            if (ps[i].quoted && s[j] == '\\' && j + 1 < ps[i].vend)
                j++;
            if (k == cap)
                return SIZE_MAX;
            out[k++] = s[j];
        }
        return k;
    }
    return SIZE_MAX;
}
