/*
 * test_pseudo_rules.c — every rule of pseudo/rules.def works, on every
 * search path, and the filters derived from the list cannot leave one out unnoticed.
 *
 * The words come from prules_list() (the .def itself), never from a list of this test:
 * adding a word to the .def adds it here.  For each greeting and sign-off: a message that
 * uses it has the name after it replaced (pseudo_message), and the candidate search finds
 * the word and the lookup names its kind with AVX-512, AVX2 and the plain loop (what this
 * build and CPU have; the nosimd build of scripts/test runs the plain one).  For each
 * stop word: it stays after a greeting.  For each quoted field: the names on its line go.
 * Then each keyword is taken out of one derived table at a time (lookup, length table,
 * prefilter groups, nibble tables): wherever that changes the table, the search or the
 * lookup must now miss the word on some path — the check above is able to fail.
 */
#include "unit/test_pseudo_util.h"

#include "pseudo/find.h"
#include "pseudo/rules.h"

static const char *kind_name(unsigned k)
{
    return k == PRULE_KW_GREETING ? "greeting" : k == PRULE_KW_SIGN_OFF ? "sign-off" :
           k == PRULE_STOP ? "stop word" : "quoted field";
}

/* Spelled in Latin-1 (8-bit bytes that are no UTF-8 sequence of Danish letters)? */
static bool latin1(const struct prule *r)
{
    bool high = false;

    for (size_t i = 0; i < r->len; i++) {
        if ((unsigned char)r->w[i] == 0xC3)
            return false;
        high |= (unsigned char)r->w[i] >= 0x80;
    }
    return high;
}

/* The word with its first letter upper-cased (0), as listed (1) or all ASCII upper (2). */
static void spell(const struct prule *r, int how, char *out)
{
    memcpy(out, r->w, r->len);
    out[r->len] = '\0';
    for (size_t i = 0; i < r->len; i++)
        if ((how == 0 && i == 0) || how == 2)
            if (out[i] >= 'a' && out[i] <= 'z')
                out[i] = (char)(out[i] - 32);
}

/* A name no rule and no header supplies: two capitalised nonsense words from n. */
static void name_for(unsigned n, char *first, char *last)
{
    snprintf(first, 16, "Zq%cvor", 'a' + (char)(n % 26));
    snprintf(last, 16, "Plem%ckit", 'a' + (char)(n / 26 % 26));
}

static char *run_body(const char *charset, const char *body)
{
    char msg[2048];

    snprintf(msg, sizeof msg,
             "From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=%s\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s",
             charset, body);
    return tp_text(msg);
}

static void test_every_rule_in_a_message(void **state)
{
    size_t n;
    const struct prule *r = prules_list(&n);
    unsigned kw = 0, stops = 0, fields = 0;

    (void)state;
    for (size_t i = 0; i < n; i++) {
        const char *cs = latin1(&r[i]) ? "iso-8859-1" : "utf-8";
        for (int how = 0; how < 3; how++) {
            char w[64], first[16], last[16], body[512], *o;
            spell(&r[i], how, w);
            name_for((unsigned)(i * 3 + (unsigned)how), first, last);
            switch (r[i].kind) {
            case PRULE_KW_GREETING:
                snprintf(body, sizeof body, "%s %s %s,\r\n\r\ntak for brevet.\r\n", w, first, last);
                break;
            case PRULE_KW_SIGN_OFF:
                snprintf(body, sizeof body, "Tak for brevet.\r\n\r\n%s\r\n%s %s\r\n", w, first, last);
                break;
            case PRULE_STOP:
                if (how != 1)
                    continue;
                snprintf(body, sizeof body, "Hej %s,\r\ntak.\r\n\r\nHej %s\r\n", w, first);
                break;
            default:
                snprintf(body, sizeof body, "Se nedenfor.\r\n\r\n%s: %s %s\r\n", w, first, last);
                break;
            }
            o = run_body(cs, body);
            if (r[i].kind == PRULE_STOP) {
                /* Kept, while a real name in the same place goes. */
                char kept[80];
                snprintf(kept, sizeof kept, "Hej %s,", w);
                if (strstr(o, kept) == NULL || strstr(o, first) != NULL)
                    fail_msg("stop word \"%s\" not kept (or control name kept):\n%s", w, o);
                stops++;
            } else {
                if (strstr(o, first) != NULL || strstr(o, last) != NULL || strstr(o, "Navn-") == NULL)
                    fail_msg("%s \"%s\": the name after it was not replaced:\n%s",
                             kind_name(r[i].kind), w, o);
                if (r[i].kind == PRULE_FIELD)
                    fields++;
                else
                    kw++;
            }
            free(o);
        }
    }
    print_message("rules: %u keyword, %u stop word and %u field messages\n", kw, stops, fields);
    assert_true(kw >= 3 * 10 && stops >= 5 && fields >= 3 * 5);
}

/* ---- the search paths --------------------------------------------------------------- */

enum { PATH_AVX512, PATH_AVX2, PATH_PLAIN, NPATHS };

/* Can the filter f take this path on this CPU and build?  (f freshly initialised.) */
static bool set_path(struct pfilter *f, int path)
{
    switch (path) {
    case PATH_AVX512:
        return f->avx512;
    case PATH_AVX2:
        if (!f->avx2)
            return false;
        f->avx512 = false;
        return true;
    default:
        f->avx512 = f->avx2 = false;
        return true;
    }
}

/* Does the search under f find the keyword r (spelled how) at every offset tried, and
 * the lookup say what it is?  keywords_only: pass 1's filter, else one that also asks for
 * digits (the general classifier and its prefilter groups; not hex groups, whose own
 * prefilter would let "dear" through as "de"). */
static bool found_on(const struct prule *r, int how, int path, bool keywords_only)
{
    static const size_t offs[] = {0, 1, 5, 31, 32, 60, 63, 64, 100};

    for (size_t o = 0; o < sizeof offs / sizeof offs[0]; o++) {
        unsigned char t[256];
        char w[64];
        struct pfilter f;
        struct pfind it;
        size_t len, at = offs[o], p = 0;
        bool hit = false;

        spell(r, how, w);
        memset(t, ' ', sizeof t);
        for (size_t k = 0; k + 3 < at; k += 4)
            memcpy(t + k, "ab. ", 4);
        memcpy(t + at, w, r->len);
        memcpy(t + at + r->len, " Zqvor 12 ab", 12);
        len = at + r->len + 12;
        pfind_filter_init(&f, keywords_only ? 0 : (PFIND_DIGIT | PFIND_PLUS), NULL, true);
        if (!set_path(&f, path))
            return true;
        pfind_start(&it, &f, t, len);
        while ((p = pfind_next(&it, p, len)) < len) {
            if (p == at)
                hit = true;
            p++;
        }
        if (!hit || prules_keyword(t + at, r->len) != r->kind)
            return false;
    }
    return true;
}

/* A bit per (path, filter) where the keyword is missed. */
static unsigned misses(const struct prule *r)
{
    unsigned m = 0;

    for (int how = 0; how < 3; how++)
        for (int path = 0; path < NPATHS; path++)
            for (int ko = 0; ko < 2; ko++)
                if (!found_on(r, how, path, ko != 0))
                    m |= 1u << (path * 2 + ko);
    return m;
}

static void test_every_keyword_on_every_path(void **state)
{
    size_t n;
    const struct prule *r = prules_list(&n);
    struct pfilter f;
    unsigned paths = 0, checked = 0;

    (void)state;
    pfind_filter_init(&f, 0, NULL, true);
    for (int path = 0; path < NPATHS; path++) {
        struct pfilter g = f;
        paths += set_path(&g, path);
    }
    for (size_t i = 0; i < n; i++) {
        if (r[i].kind != PRULE_KW_GREETING && r[i].kind != PRULE_KW_SIGN_OFF)
            continue;
        unsigned m = misses(&r[i]);
        if (m != 0)
            fail_msg("keyword \"%s\" missed (paths bits %#x)", r[i].w, m);
        checked++;
    }
    print_message("rules: %u keywords found on %u search paths\n", checked, paths);
    assert_true(checked >= 10);
}

/* ---- a table without the word is noticed --------------------------------------------- */

enum { T_LOOKUP, T_LEN2, T_GROUPS, T_NIBBLES, NTABLES };
static const char *const TABLE_NAME[] = {"lookup", "length table", "prefilter groups",
                                         "nibble tables"};

/* Copy table t of src into dst. */
static void take(struct prules *dst, const struct prules *src, int t)
{
    switch (t) {
    case T_LOOKUP:
        memcpy(dst->kw, src->kw, sizeof dst->kw);
        dst->nkw = src->nkw;
        memcpy(dst->bucket, src->bucket, sizeof dst->bucket);
        dst->rules = src->rules;
        break;
    case T_LEN2:
        memcpy(dst->second, src->second, sizeof dst->second);
        memcpy(dst->len2, src->len2, sizeof dst->len2);
        break;
    case T_GROUPS:
        memcpy(dst->groups, src->groups, sizeof dst->groups);
        break;
    default:
        memcpy(dst->first_lo, src->first_lo, sizeof dst->first_lo);
        memcpy(dst->first_hi, src->first_hi, sizeof dst->first_hi);
        memcpy(dst->second_lo, src->second_lo, sizeof dst->second_lo);
        memcpy(dst->second_hi, src->second_hi, sizeof dst->second_hi);
        break;
    }
}

/* Does table t accept the pair / word of r?  (Whether taking r out changed it for r.) */
static bool table_has(const struct prules *d, int t, const struct prule *r)
{
    unsigned char c0 = (unsigned char)(r->w[0] | 0x20), c1 = (unsigned char)r->w[1];

    if (c1 >= 'A' && c1 <= 'Z')
        c1 = (unsigned char)(c1 | 0x20);
    switch (t) {
    case T_LOOKUP:
        for (unsigned x = 0; x < d->nkw; x++)
            if (d->rules[d->kw[x]].w == r->w)
                return true;
        return false;
    case T_LEN2:
        return (d->len2[c0 - 'a'][d->second[c1]] >> r->len) & 1u;
    case T_GROUPS:
        return (d->groups[c0 & 31] >> (c1 & 7)) & 1u;
    default:
        return (d->first_lo[c0 & 15] & d->first_hi[c0 >> 4] & d->second_lo[c1 & 15] &
                d->second_hi[c1 >> 4]) != 0;
    }
}

static void test_removal_is_caught(void **state)
{
    size_t n;
    const struct prule *r = prules_list(&n);
    static struct prule cut[512];
    struct prules full, less, saved = prules_live;
    unsigned caught[NTABLES] = {0}, unchanged[NTABLES] = {0};

    (void)state;
    assert_true(n <= sizeof cut / sizeof cut[0]);
    assert_int_equal(prules_derive(r, n, &full), 0);
    /* The live tables are what the list gives. */
    assert_memory_equal(&full, &prules_live, sizeof full);
    for (size_t i = 0; i < n; i++) {
        if (r[i].kind != PRULE_KW_GREETING && r[i].kind != PRULE_KW_SIGN_OFF)
            continue;
        size_t m = 0;
        for (size_t k = 0; k < n; k++)
            if (k != i)
                cut[m++] = r[k];
        assert_int_equal(prules_derive(cut, m, &less), 0);
        for (int t = 0; t < NTABLES; t++) {
            assert_true(table_has(&full, t, &r[i]));
            if (table_has(&less, t, &r[i])) {
                unchanged[t]++;     /* another word keeps this entry: r still passes it */
                continue;
            }
            prules_live = full;
            take(&prules_live, &less, t);
            /* The nibble tables and groups serve only the AVX2 / AVX-512 paths. */
            unsigned m2 = misses(&r[i]);
            prules_live = saved;
            if (m2 != 0) {
                caught[t]++;
                continue;
            }
#if defined(PFIND_AVX2)
            if (!__builtin_cpu_supports("avx2") && (t == T_GROUPS || t == T_NIBBLES))
                continue;
            fail_msg("\"%s\" taken out of the %s alone: still found on every path", r[i].w,
                     TABLE_NAME[t]);
#else
            if (t == T_LOOKUP || t == T_LEN2)
                fail_msg("\"%s\" taken out of the %s alone: still found", r[i].w, TABLE_NAME[t]);
#endif
        }
    }
    prules_live = saved;
    for (int t = 0; t < NTABLES; t++)
        print_message("rules: %s: %u removals caught, %u served by another word\n",
                      TABLE_NAME[t], caught[t], unchanged[t]);
    assert_true(caught[T_LOOKUP] >= 10 && caught[T_LEN2] >= 5);
}

/* A word the scanner could never match is refused, not silently carried. */
static void test_bad_words_refused(void **state)
{
    static const struct prule bad[] = {
        {"1st", 3, PRULE_KW_GREETING}, {"hej-du", 6, PRULE_KW_GREETING},
        {"x", 1, PRULE_KW_SIGN_OFF}, {"abcdefghijklmnop", 16, PRULE_KW_SIGN_OFF},
        {"\xc3\xa6" "ble", 5, PRULE_KW_GREETING},
    };
    struct prules d;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(prules_derive(&bad[i], 1, &d), -1);
    assert_int_equal(prules_derive(bad, 0, &d), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_rule_in_a_message),
        cmocka_unit_test(test_every_keyword_on_every_path),
        cmocka_unit_test(test_removal_is_caught),
        cmocka_unit_test(test_bad_words_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
