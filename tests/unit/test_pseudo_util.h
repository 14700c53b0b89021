/*
 * test_pseudo_util.h — shared by the pseudonymiser tests (header-only, static):
 * a fixed key, a round-trip-checking wrapper, MIME tree shapes via libetpan, and paths.
 */
#ifndef TEST_BACKUP_PSEUDO_UTIL_H
#define TEST_BACKUP_PSEUDO_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libetpan/libetpan.h>

#include "pseudo/pseudo.h"

/* xorshift64*: reproducible random inputs (a failure replays), the state the caller's. */
static inline uint64_t tp_rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static inline void tp_key(pseudo_key *k, unsigned char fill)
{
    memset(k->bytes, fill, sizeof k->bytes);
}

/* Pseudonymise, assert the restore is byte-exact, return the result (caller frees). */
static inline pseudo_result *tp_run(const pseudo_key *key, const struct pseudo_policy *pol,
                                    const void *msg, size_t len)
{
    pseudo_result *res = NULL;
    mr_error err = {0};
    unsigned char *back = NULL;
    size_t olen, rlen, blen;
    const unsigned char *o, *r;

    assert_int_equal(pseudo_message(key, pol, msg, len, &res, &err), 0);
    assert_non_null(res);
    o = pseudo_result_bytes(res, &olen);
    r = pseudo_result_reid(res, &rlen);
    assert_non_null(o);
    assert_non_null(r);
    assert_int_equal(pseudo_restore(o, olen, r, rlen, &back, &blen, &err), 0);
    assert_int_equal(blen, len);
    if (len > 0)
        assert_memory_equal(back, msg, len);
    free(back);
    return res;
}

/* The pseudonymised text of msg (NUL-terminated copy, NULs kept), default policy. */
static inline char *tp_text_pol(const struct pseudo_policy *pol, const char *msg)
{
    pseudo_key k;
    pseudo_result *res;
    const unsigned char *o;
    size_t olen;
    char *s;

    tp_key(&k, 7);
    res = tp_run(&k, pol, msg, strlen(msg));
    o = pseudo_result_bytes(res, &olen);
    s = malloc(olen + 1);
    assert_non_null(s);
    memcpy(s, o, olen);
    s[olen] = '\0';
    pseudo_result_free(res);
    return s;
}

static inline char *tp_text(const char *msg)
{
    struct pseudo_policy pol;

    pseudo_policy_default(&pol);
    return tp_text_pol(&pol, msg);
}

/* Shape of a libetpan MIME tree: S single, M(...) multipart, G(...) message. */
static inline void tp_shape_rec(struct mailmime *m, char *out, size_t cap, int depth)
{
    size_t l = strlen(out);

    if (l + 8 >= cap || depth > 64)
        return;
    switch (m->mm_type) {
    case MAILMIME_SINGLE:
        strcat(out, "S");
        break;
    case MAILMIME_MULTIPLE: {
        clistiter *it;
        strcat(out, "M(");
        for (it = clist_begin(m->mm_data.mm_multipart.mm_mp_list); it != NULL;
             it = clist_next(it))
            tp_shape_rec(clist_content(it), out, cap, depth + 1);
        strcat(out, ")");
        break;
    }
    case MAILMIME_MESSAGE:
        strcat(out, "G(");
        if (m->mm_data.mm_message.mm_msg_mime != NULL)
            tp_shape_rec(m->mm_data.mm_message.mm_msg_mime, out, cap, depth + 1);
        strcat(out, ")");
        break;
    default:
        strcat(out, "?");
    }
}

/* 0 and the shape in out, or -1 if libetpan cannot parse it. */
static inline int tp_shape(const void *msg, size_t len, char *out, size_t cap)
{
    struct mailmime *mime = NULL;
    size_t idx = 0;

    out[0] = '\0';
    if (mailmime_parse(msg, len, &idx, &mime) != MAILIMF_NO_ERROR || mime == NULL)
        return -1;
    tp_shape_rec(mime, out, cap, 0);
    mailmime_free(mime);
    return 0;
}

/* tests/data, from the environment ctest sets, else relative to this source file. */
static inline void tp_data_dir(char *out, size_t cap, const char *sub)
{
    const char *d = getenv("MAILRET_TEST_DATA");

    char here[4096];
    char *slash;

    if (d != NULL && *d) {
        if (snprintf(out, cap, "%s/%s", d, sub) >= (int)cap)
            out[0] = '\0';
        return;
    }
    snprintf(here, sizeof here, "%s", __FILE__);
    slash = strrchr(here, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        snprintf(here, sizeof here, ".");
    if (snprintf(out, cap, "%s/../data/%s", here, sub) >= (int)cap)
        out[0] = '\0';
}

#endif
