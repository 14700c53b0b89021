/* qppatch.c — a quoted-printable body written back with only the lines that
 * changed re-encoded.
 *
 * Re-encoding the whole body for three tokens would make the whole original body one
 * edit, so the re-identification data would hold a second copy of every text part, and
 * it would rewrap every line of mail written by another encoder.  Quoted-printable decodes line by line (nothing in a line depends on another), so
 * a run of whole encoded lines can be replaced by the encoding of its new decoded text and
 * the body around it still decodes to what it did: the untouched lines stay byte for byte,
 * and the edits cover only the lines that hold an identifier.  Where the lines are comes
 * from the decoder (pcodec_qp_decode records them as it goes), so nothing here reads the
 * body again. */
#include "pseudo/codec.h"

#include <string.h>

/* The first line whose decoded bytes reach past x (the last line when none does: an
 * insertion at the very end of the text belongs to it). */
static size_t line_of(const pqp_lines *lines, size_t from, size_t x)
{
    size_t lo = from, hi = lines->n - 1;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (lines->v[mid].dec_end > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int pqp_patch(const unsigned char *b, size_t len, const char *eol, const pqp_lines *lines,
              const pout *text, pbuf *scratch, pout *out, mr_error *err)
{
    const struct pqp_line *v = lines->v;
    size_t copied = 0, next_line = 0, eol_len = strlen(eol), dec_len;
    int rc = 0;

    if (lines->n == 0 || v[lines->n - 1].enc_end != len)
        return mr_error_set(err, MR_E_INTERNAL, "quoted-printable lines do not fit the body");
    dec_len = v[lines->n - 1].dec_end;
    for (size_t k = 0; k < text->n_edits && rc == 0; k++) {
        const struct pedit *first = &text->edits[k], *last;
        size_t need = first->orig_off + first->orig_len;
        size_t l0, l1, ls, dls, dle, from, to;

        if (need > dec_len || (k > 0 && first->orig_off < text->edits[k - 1].orig_off))
            return mr_error_set(err, MR_E_INTERNAL,
                                "quoted-printable edit out of order or past the text");
        /* From the line holding the edit's first byte through the line holding its last,
         * and on through every later edit that starts on a line taken (all of them once
         * the last line is taken). */
        l0 = line_of(lines, next_line, first->orig_off);
        l1 = l0;
        for (;;) {
            if (v[l1].dec_end < need)
                l1 = line_of(lines, l1, need - 1);
            if (k + 1 < text->n_edits &&
                (text->edits[k + 1].orig_off < v[l1].dec_end || l1 == lines->n - 1)) {
                k++;
                if (text->edits[k].orig_off + text->edits[k].orig_len > need)
                    need = text->edits[k].orig_off + text->edits[k].orig_len;
                continue;
            }
            break;
        }
        last = &text->edits[k];
        ls = l0 > 0 ? v[l0 - 1].enc_end : 0;
        dls = l0 > 0 ? v[l0 - 1].dec_end : 0;
        dle = v[l1].dec_end;
        if (need > dle || dls > first->orig_off)
            return mr_error_set(err, MR_E_INTERNAL, "quoted-printable edit past the body");
        /* The new text of those lines: unchanged text before the first edit and after the
         * last sits at the same distance from them in the output. */
        from = first->out_off - (first->orig_off - dls);
        to = last->out_off + last->out_len + (dle - need);
        if (from > to || to > text->buf.len)
            return mr_error_set(err, MR_E_INTERNAL, "quoted-printable edit out of range");
        scratch->len = 0;
        rc = pcodec_qp_encode(text->buf.p + from, to - from, eol, scratch, err);
        /* The lines replaced ended with a line end: so does their replacement, a soft one
         * when the text goes on (the line after must start a line of its own). */
        if (rc == 0 && b[v[l1].enc_end - 1] == '\n' &&
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
            rc = pout_replace(out, b + ls, v[l1].enc_end - ls, scratch->p, scratch->len, err);
        copied = v[l1].enc_end;
        next_line = l1 + 1 < lines->n ? l1 + 1 : l1;
    }
    if (rc == 0)
        rc = pout_copy(out, b + copied, len - copied, err);
    return rc;
}
