/*
 * fuzz_backup_pseudo.c — libFuzzer target for the pseudonymiser.  For every input: pseudo_message
 * must succeed, must not need the whole-message fallback (that only happens when the
 * part-by-part result fails its own check, i.e. on a bug), and pseudo_restore must give the
 * input back byte for byte.  Any violation aborts, which libFuzzer reports with the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/pseudo.h"
#include "backup/pseudo_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const own[] = {"akasse.example"};
    pseudo_key key;
    struct pseudo_policy pol;
    pseudo_result *res = NULL;
    mr_error err = {0};
    const unsigned char *o, *r;
    unsigned char *back = NULL;
    size_t olen, rlen, blen;

    memset(key.bytes, 0x42, sizeof key.bytes);
    pseudo_policy_default(&pol);
    pol.own_domains = own;
    pol.n_own_domains = 1;
    if (pseudo_message(&key, &pol, data, size, &res, &err) != 0) {
        fprintf(stderr, "fuzz_backup_pseudo: pseudo_message failed: %s\n", err.msg);
        abort();
    }
    if (pseudo_result_is_whole(res)) {
        fprintf(stderr, "fuzz_backup_pseudo: fell back to whole-message replacement\n");
        abort();
    }
    o = pseudo_result_bytes(res, &olen);
    r = pseudo_result_reid(res, &rlen);
    if (pseudo_restore(o, olen, r, rlen, &back, &blen, &err) != 0 || blen != size ||
        (size > 0 && memcmp(back, data, size) != 0)) {
        fprintf(stderr, "fuzz_backup_pseudo: round trip failed: %s\n", err.msg);
        abort();
    }
    free(back);
    pseudo_result_free(res);
    return 0;
}
