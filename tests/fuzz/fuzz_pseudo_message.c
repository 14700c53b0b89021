/*
 * fuzz_pseudo_message.c — libFuzzer target for the pseudonymiser.  For every input: pseudo_message
 * must succeed, must not need the whole-message fallback (that only happens when the
 * part-by-part result fails its own check, i.e. on a bug), and pseudo_restore must give the
 * input back byte for byte.  A pseudo_session that has just pseudonymised another message
 * (names, addresses, tokens to forget) must give exactly the same result.  Any violation
 * aborts, which libFuzzer reports with the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pseudo/pseudo.h"
#include "pseudo/hooks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_result(const pseudo_result *a, const pseudo_result *b)
{
    const unsigned char *pa, *pb;
    size_t la, lb;

    pa = pseudo_result_bytes(a, &la);
    pb = pseudo_result_bytes(b, &lb);
    if (la != lb || (la > 0 && memcmp(pa, pb, la) != 0))
        return false;
    pa = pseudo_result_reid(a, &la);
    pb = pseudo_result_reid(b, &lb);
    if (la != lb || (la > 0 && memcmp(pa, pb, la) != 0))
        return false;
    if (pseudo_result_token_count(a) != pseudo_result_token_count(b))
        return false;
    for (size_t i = 0; i < pseudo_result_token_count(a); i++) {
        enum pseudo_kind ka, kb;
        const char *ta, *tb;
        if (pseudo_result_token(a, i, &ka, &ta) != 0 || pseudo_result_token(b, i, &kb, &tb) != 0 ||
            ka != kb || strcmp(ta, tb) != 0)
            return false;
    }
    return true;
}

/* The input through a session that has just done a message with a name, a greeting, an
 * address and a phone number. */
static pseudo_result *through_session(const pseudo_key *key, const struct pseudo_policy *pol,
                                      const uint8_t *data, size_t size)
{
    static const char primer[] = "From: Mette Hansen <mette@example.dk>\r\n\r\n"
                                 "Hej Mette, ring 12 34 56 78.\r\nMvh\r\nJens Bo\r\n";
    pseudo_session *s = NULL;
    pseudo_result *first = NULL, *res = NULL;
    mr_error err = {0};

    if (pseudo_session_new(key, pol, &s, &err) != 0 ||
        pseudo_session_message(s, (const unsigned char *)primer, sizeof primer - 1, &first,
                               &err) != 0 ||
        pseudo_session_message(s, data, size, &res, &err) != 0) {
        fprintf(stderr, "fuzz_pseudo_message: session failed: %s\n", err.msg);
        abort();
    }
    pseudo_result_free(first);
    pseudo_session_free(s);
    return res;
}

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
        fprintf(stderr, "fuzz_pseudo_message: pseudo_message failed: %s\n", err.msg);
        abort();
    }
    if (pseudo_result_is_whole(res)) {
        fprintf(stderr, "fuzz_pseudo_message: fell back to whole-message replacement\n");
        abort();
    }
    o = pseudo_result_bytes(res, &olen);
    r = pseudo_result_reid(res, &rlen);
    if (pseudo_restore(o, olen, r, rlen, &back, &blen, &err) != 0 || blen != size ||
        (size > 0 && memcmp(back, data, size) != 0)) {
        fprintf(stderr, "fuzz_pseudo_message: round trip failed: %s\n", err.msg);
        abort();
    }
    free(back);
    pseudo_result *again = through_session(&key, &pol, data, size);
    if (!same_result(res, again)) {
        fprintf(stderr, "fuzz_pseudo_message: a session gave another result\n");
        abort();
    }
    pseudo_result_free(again);
    pseudo_result_free(res);
    return 0;
}
