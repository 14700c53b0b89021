/* pseudo_qppatch.c — a quoted-printable body written back with only the lines that
 * changed re-encoded.
 *
 * Re-encoding the whole body for three tokens cost about 5 % of the time on text-heavy
 * mail, and it made the whole original body one edit, so the re-identification data held
 * a second copy of every text part.  Quoted-printable decodes line by line (pcodec_qp_line:
 * nothing in a line depends on another), so a run of whole encoded lines can be replaced
 * by the encoding of its new decoded text and the body around it still decodes to what it
 * did: the untouched lines stay byte for byte, and the edits cover only the lines that hold
 * an identifier. */
#include "backup/pseudo_int.h"

#include <string.h>

/* One encoded line being walked: [start, end) decodes to dec_len bytes from dec_off. */
struct qp_cursor {
    size_t start, end, dec_off, dec_len;
};

static void cursor_line(const unsigned char *b, size_t len, struct qp_cursor *c)
{
    c->end = pcodec_qp_line(b, len, c->start, &c->dec_len);
}

static void cursor_next(const unsigned char *b, size_t len, struct qp_cursor *c)
{
    c->dec_off += c->dec_len;
    c->start = c->end;
    cursor_line(b, len, c);
}

int pqp_patch(const unsigned char *b, size_t len, const char *eol, size_t dec_len,
              const pout *text, pbuf *scratch, pout *out, mr_error *err)
{
    struct qp_cursor c = {0};
    size_t copied = 0, eol_len = strlen(eol);
    int rc = 0;

    if (len == 0)
        return mr_error_set(err, MR_E_INTERNAL, "quoted-printable patch of an empty body");
    cursor_line(b, len, &c);
    for (size_t k = 0; k < text->n_edits && rc == 0; k++) {
        const struct pedit *first = &text->edits[k], *last;
        size_t need = first->orig_off + first->orig_len;
        size_t ls, dls, from, to;

        if (need > dec_len || (k > 0 && first->orig_off < text->edits[k - 1].orig_off))
            return mr_error_set(err, MR_E_INTERNAL, "quoted-printable edit out of order or past the text");
        /* The line holding the edit's first byte (an insertion at the very end: the last
         * line). */
        while (c.dec_off + c.dec_len <= first->orig_off && c.end < len)
            cursor_next(b, len, &c);
        ls = c.start;
        dls = c.dec_off;
        /* Through the line holding its last byte, and on through every later edit that
         * starts on a line taken (all of them once the last line is taken: an insertion
         * at the end of the text belongs to it). */
        for (;;) {
            while (c.dec_off + c.dec_len < need && c.end < len)
                cursor_next(b, len, &c);
            if (k + 1 < text->n_edits &&
                (text->edits[k + 1].orig_off < c.dec_off + c.dec_len || c.end == len)) {
                k++;
                if (text->edits[k].orig_off + text->edits[k].orig_len > need)
                    need = text->edits[k].orig_off + text->edits[k].orig_len;
                continue;
            }
            break;
        }
        last = &text->edits[k];
        if (need > c.dec_off + c.dec_len || dls > first->orig_off)
            return mr_error_set(err, MR_E_INTERNAL, "quoted-printable edit past the body");
        /* The new text of those lines: unchanged text before the first edit and after the
         * last sits at the same distance from them in the output. */
        from = first->out_off - (first->orig_off - dls);
        to = last->out_off + last->out_len + (c.dec_off + c.dec_len - need);
        if (from > to || to > text->buf.len)
            return mr_error_set(err, MR_E_INTERNAL, "quoted-printable edit out of range");
        scratch->len = 0;
        rc = pcodec_qp_encode(text->buf.p + from, to - from, eol, scratch, err);
        /* The lines replaced ended with a line end: so does their replacement, a soft one
         * when the text goes on (the line after must start a line of its own). */
        if (rc == 0 && b[c.end - 1] == '\n' &&
            (scratch->len == 0 || scratch->p[scratch->len - 1] != '\n')) {
            rc = pbuf_reserve(scratch, 1 + eol_len, err);
            if (rc == 0) {
                scratch->p[scratch->len++] = '=';
                memcpy(scratch->p + scratch->len, eol, eol_len);
                scratch->len += eol_len;
            }
        }
        if (rc == 0)
            rc = pout_copy(out, b + copied, ls - copied, err);
        if (rc == 0)
            rc = pout_replace(out, b + ls, c.end - ls, scratch->p, scratch->len, err);
        copied = c.end;
        if (c.end < len)
            cursor_next(b, len, &c);   /* (at the end, every edit left was taken) */
    }
    if (rc == 0)
        rc = pout_copy(out, b + copied, len - copied, err);
    return rc;
}
