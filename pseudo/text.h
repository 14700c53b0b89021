/* pseudo/text.h — text views (HTML entities, folded lines, RFC 2047 and 2231) scanned
 * and written with their replacements. */
#ifndef MAILRET_PSEUDO_TEXT_H
#define MAILRET_PSEUDO_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "pseudo/ctx.h"
#include "pseudo/out.h"

#define PTEXT_HTML   0x100u  /* decode HTML entities and %XX before scanning */
#define PTEXT_FOLDED 0x200u  /* join folded lines (CRLF + blank) before scanning */

/* Scan plain (already decoded) text and write it with replacements to out. */
int ptext_plain(struct pseudo_ctx *ctx, const unsigned char *src, size_t len, unsigned flags,
                pout *out);
/* A header value (or parameter value): raw text with RFC 2047 encoded-words. */
int ptext_header(struct pseudo_ctx *ctx, const unsigned char *src, size_t len,
                 unsigned flags, pout *out);
/* Content-Type / Content-Disposition value: only name/filename parameters are scanned
 * (plain, quoted, 2047 inside quotes, RFC 2231 extended and continued). */
int ptext_ctype_params(struct pseudo_ctx *ctx, const unsigned char *src, size_t len,
                       pout *out);
/* Value of a simple (non-RFC 2231) parameter, unquoted, into out; SIZE_MAX if absent or
 * longer than cap. */
size_t ptext_param_get(const unsigned char *s, size_t len, const char *name, unsigned char *out,
                       size_t cap);
/* Decode RFC 2047 words of a header value to UTF-8 where possible (for names). */
int ptext_header_utf8(const unsigned char *src, size_t len, pbuf *out, mr_error *err);

#endif
