/* pseudo/codec.h — base64, quoted-printable and RFC 2047 decoding and encoding, and the
 * quoted-printable patch that re-encodes only the lines a rewrite touched. */
#ifndef MAILRET_PSEUDO_CODEC_H
#define MAILRET_PSEUDO_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "pseudo/out.h"

/* Lenient decoders: skip what is not part of the encoding, never fail on content. */
int pcodec_b64_decode(const unsigned char *in, size_t len, pbuf *out, mr_error *err);
/* Where each encoded line of a quoted-printable body ends (after its '\n', or at the end
 * of the body) and where its decoded bytes end.  The decoder never looks past a line end,
 * so each line decodes on its own to the bytes between its decoded end and the line
 * before's: pqp_patch re-encodes single lines by it. */
struct pqp_line {
    size_t enc_end, dec_end;
};
/* A table entry costs 16 bytes; a body of very short lines (hostile: a megabyte of line
 * ends) would cost 16 times its size.  So no more than one line per PQP_LINE_MIN bytes of
 * body is recorded (real mail has 60 to 76): a body with more is left partial, and
 * re-encoded whole. */
#define PQP_LINE_MIN 8
typedef struct pqp_lines {
    struct pqp_line *v;
    size_t n, cap, max;
    bool partial;           /* lines after the n-th were not recorded */
} pqp_lines;
void pqp_lines_free(pqp_lines *lines);
/* lines: NULL, or filled with the body's lines. */
int pcodec_qp_decode(const unsigned char *in, size_t len, pbuf *out, pqp_lines *lines,
                     mr_error *err);
/* Q encoding of RFC 2047 ('_' is space). */
int pcodec_q_decode(const unsigned char *in, size_t len, pbuf *out, mr_error *err);

/* Encoders.  eol is the line ending of the part ("\r\n" or "\n"); final_eol says whether
 * the encoded text ends with one (as the original did). */
int pcodec_b64_encode(const unsigned char *in, size_t len, const char *eol, bool final_eol,
                      pbuf *out, mr_error *err);
int pcodec_qp_encode(const unsigned char *in, size_t len, const char *eol, pbuf *out,
                     mr_error *err);
/* One or more encoded-words "=?charset?X?...?=" separated by eol + " ". */
int pcodec_2047_encode(const unsigned char *in, size_t len, const unsigned char *charset,
                       size_t charset_len, char enc, const char *eol, pbuf *out,
                       mr_error *err);

/* The line ending used in a span: "\r\n" if its first line break is CRLF, else "\n". */
const char *pcodec_eol_of(const unsigned char *p, size_t len);

/* The quoted-printable body b[0, len) with eol as its line ending and lines as
 * pcodec_qp_decode gave them, whose decoded text a pout has rewritten (text: its base was
 * the decoded body, so its edits are in decoded offsets): written to out as the body's
 * lines, except that each run of lines holding an edit is replaced by the encoding of its
 * new text.  MR_E_INTERNAL if the lines or the edits do not fit the body. */
int pqp_patch(const unsigned char *b, size_t len, const char *eol, const pqp_lines *lines,
              const pout *text, pbuf *scratch, pout *out, mr_error *err);

#endif
