/*
 * fuzz_pseudo_diff.c — differential libFuzzer target: the pseudonymiser against the
 * independent reference scanner (tests/tools/pseudo_ref.h, written from the stated rules
 * of docs/PSEUDONYMISER.md).  Each input byte becomes a character of a small ASCII
 * alphabet weighted towards digits, blanks and the punctuation of numbers and addresses;
 * the text is the body of a text/plain message, and the e-mail, CPR and phone tokens the
 * pseudonymiser emits must be exactly those of the values the reference finds.  A
 * disagreement aborts with both views on stderr.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tools/pseudo_ref_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ALPHABET[] = "0123456789012345678901234567890123456789"
                               "    __--..++@@\nabcdefghijklmnopqrstuvwxyzTAB':,;()<>/";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char text[4096];
    char why[256];
    size_t n = size < sizeof text ? size : sizeof text, found;
    int rc;

    for (size_t i = 0; i < n; i++)
        text[i] = (unsigned char)ALPHABET[data[i] % (sizeof ALPHABET - 1)];
    rc = ref_diff(text, n, 1u << REF_EMAIL | 1u << REF_CPR | 1u << REF_PHONE, why, sizeof why,
                  &found);
    if (rc == -1) {
        fprintf(stderr, "pseudodiff: the pseudonymiser failed\n");
        abort();
    }
    if (rc != 0) {
        fprintf(stderr, "pseudodiff: %s in \"%.*s\"\n", why, (int)n, text);
        abort();
    }
    return 0;
}
