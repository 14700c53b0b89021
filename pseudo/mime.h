/* pseudo/mime.h — the header and MIME tree walk, dispatching each part. */
#ifndef MAILRET_PSEUDO_MIME_H
#define MAILRET_PSEUDO_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "pseudo/ctx.h"
#include "pseudo/out.h"

/* Deeper MIME nesting is treated as opaque text (still scanned raw): bounds recursion and
 * work on hostile input. */
#define PSEUDO_MAX_DEPTH 32

/* Process one entity (headers + body).  msg_default: without Content-Type the body is
 * message/rfc822 (inside multipart/digest) instead of text/plain. */
int pmime_entity(struct pseudo_ctx *ctx, const unsigned char *p, size_t len, int depth,
                 bool msg_default, pout *out);

/* Forget the header blocks of a message, keep the arrays (bounded by PHCACHE_*). */
void pmime_cache_reset(struct pseudo_ctx *ctx);
void pmime_cache_free(struct pseudo_ctx *ctx);

/* Class of a header field name (H_* in mime.c), by perfect hash; the same by linear
 * search, and the table's names (NULL past the end), for the tests. */
unsigned pmime_classify(const unsigned char *name, size_t n);
unsigned pmime_classify_linear(const unsigned char *name, size_t n);
const char *pmime_header_name(size_t i);

#endif
