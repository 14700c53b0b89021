/*
 * test_pseudo_util.h — shared by the pseudonymiser tests (header-only, static):
 * a fixed key, a round-trip-checking wrapper, MIME tree shapes via libetpan, paths, and
 * the runner of a corpus directory.
 */
#ifndef TEST_PSEUDO_UTIL_H
#define TEST_PSEUDO_UTIL_H

#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <libetpan/libetpan.h>

#include "helpers/test_helpers.h"
#include "pseudo/hooks.h"
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

/* A directory from the environment ctest sets (env, plus /sub when sub is not NULL), else
 * rel (and sub) relative to this source file's folder. */
static inline void tp_dir(char *out, size_t cap, const char *env, const char *rel,
                          const char *sub)
{
    const char *d = getenv(env);
    char here[4096], *slash;
    int n;

    if (d != NULL && *d) {
        n = sub != NULL ? snprintf(out, cap, "%s/%s", d, sub) : snprintf(out, cap, "%s", d);
    } else {
        snprintf(here, sizeof here, "%s", __FILE__);
        slash = strrchr(here, '/');
        if (slash != NULL)
            *slash = '\0';
        else
            snprintf(here, sizeof here, ".");
        n = sub != NULL ? snprintf(out, cap, "%s/%s/%s", here, rel, sub)
                        : snprintf(out, cap, "%s/%s", here, rel);
    }
    if (n < 0 || (size_t)n >= cap)
        out[0] = '\0';
}

/* tests/data/sub. */
static inline void tp_data_dir(char *out, size_t cap, const char *sub)
{
    tp_dir(out, cap, "MAILRET_TEST_DATA", "../data", sub);
}

/* The source tree. */
static inline void tp_source_dir(char *out, size_t cap)
{
    tp_dir(out, cap, "MAILRET_SOURCE_DIR", "../..", NULL);
}

static inline int tp_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The policy of the corpus runs: everything on, the generated corpora's fund domain kept. */
static inline void tp_corpus_policy(struct pseudo_policy *pol)
{
    static const char *const own[] = {"akasse.example"};

    pseudo_policy_default(pol);
    pol->own_domains = own;
    pol->n_own_domains = 1;
}

/* Run a checker command (its output follows the test's own); assert it succeeded. */
static inline void tp_check_cmd(const char *cmd)
{
    fflush(stdout);
    assert_int_equal(system(cmd), 0);
}

/* Called for each message of a corpus run with its input and output. */
typedef void (*tp_each_fn)(const char *name, const unsigned char *in, size_t len,
                           const unsigned char *out, size_t olen, void *arg);

/* Pseudonymise every message of tmp/corpus/eml, in name order, into tmp/pseudo/eml (the
 * layout the Python checkers read), asserting for each the byte-exact restore and that it
 * was not replaced as a whole; each (if not NULL) sees every pair.  Returns the number of
 * messages; *bytes (if not NULL) receives their total size. */
static inline size_t tp_run_corpus(const char *tmp, const pseudo_key *key,
                                   const struct pseudo_policy *pol, tp_each_fn each,
                                   void *arg, size_t *bytes)
{
    char in_dir[4200], out_dir[4200];
    char **names = NULL;
    size_t n = 0, cap = 0, total = 0;
    struct dirent *de;
    DIR *d;

    snprintf(in_dir, sizeof in_dir, "%s/corpus/eml", tmp);
    snprintf(out_dir, sizeof out_dir, "%s/pseudo", tmp);
    assert_int_equal(mkdir(out_dir, 0700), 0);
    snprintf(out_dir, sizeof out_dir, "%s/pseudo/eml", tmp);
    assert_int_equal(mkdir(out_dir, 0700), 0);

    d = opendir(in_dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, cap * sizeof *names);
            assert_non_null(names);
        }
        names[n] = strdup(de->d_name);
        assert_non_null(names[n]);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, tp_cmp_names);

    for (size_t i = 0; i < n; i++) {
        char path[8400];
        size_t len, olen;
        unsigned char *msg;
        pseudo_result *res;
        const unsigned char *o;

        snprintf(path, sizeof path, "%s/%s", in_dir, names[i]);
        msg = th_read_file(path, &len);
        assert_non_null(msg);
        total += len;
        res = tp_run(key, pol, msg, len);
        if (pseudo_result_is_whole(res))
            fail_msg("%s: replaced as a whole", names[i]);
        o = pseudo_result_bytes(res, &olen);
        if (each != NULL)
            each(names[i], msg, len, o, olen, arg);
        snprintf(path, sizeof path, "%s/%s", out_dir, names[i]);
        assert_int_equal(th_write_file(path, o, olen), 0);
        pseudo_result_free(res);
        free(msg);
        free(names[i]);
    }
    free(names);
    if (bytes != NULL)
        *bytes = total;
    return n;
}

#endif
