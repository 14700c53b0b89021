/* pseudo/scan.h — linear-time detection of identifiers in one text buffer. */
#ifndef MAILRET_PSEUDO_SCAN_H
#define MAILRET_PSEUDO_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "pseudo/ctx.h"

#define PSCAN_EMAIL   0x01u
#define PSCAN_CPR     0x02u
#define PSCAN_PHONE   0x04u
#define PSCAN_NAME    0x08u
#define PSCAN_IP      0x10u
#define PSCAN_MSGID   0x20u   /* only known personal addresses (Message-ID & co.) */
#define PSCAN_ESCAPE  0x40u   /* text already shaped like a token */

struct pmatch {
    size_t start, end;      /* in the scanned text */
    enum pseudo_kind kind;
    bool escape;            /* token-shaped text to be escaped, not a personal value */
    size_t canon;           /* names: index into pnames canon */
};

typedef int (*pscan_emit)(void *arg, const struct pmatch *m);

/* Scan t[0,len) and call emit for every match in increasing, non-overlapping order.
 * Linear in len (for a bounded number of names).  Returns 0 or emit's error. */
int pscan_run(const struct pseudo_ctx *ctx, const unsigned char *t, size_t len,
              unsigned flags, pscan_emit emit, void *arg, mr_error *err);

/* Pass 1: learn names from salutations and signatures ("Hej Søren", "Mvh\nMette Hansen"). */
int pscan_learn(struct pseudo_ctx *ctx, const unsigned char *t, size_t len);

/* Flags for a policy (everything the policy turns on, plus escaping). */
unsigned pscan_policy_flags(const struct pseudo_policy *pol);

#endif
