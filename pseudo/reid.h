/* pseudo/reid.h — the versioned reversal (reid) record. */
#ifndef MAILRET_PSEUDO_REID_H
#define MAILRET_PSEUDO_REID_H

#include <stddef.h>

#include "common/error.h"
#include "pseudo/out.h"
#include "pseudo/sha.h"

/* Append the reid record (current format version) to out; orig_sha256 receives the
 * SHA-256 of the original that the record holds. */
int preid_write(psha *sha, const unsigned char *orig, size_t orig_len, size_t pseudo_len,
                const struct pedit *edits, size_t n_edits, pbuf *out,
                unsigned char orig_sha256[32], mr_error *err);

#endif
