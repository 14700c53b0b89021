/*
 * test_pseudo_seal.c — parts the scanner cannot read are sealed into the reid data.
 *
 * tests/tools/seal_corpus.py writes adversarial messages (an uncompressed PDF with a CPR
 * and a name, base64 and quoted-printable octet-stream, winmail.dat, a real S/MIME
 * signature whose certificate names the signer, UTF-16/32 text with and without a byte
 * order mark or a declared charset, parts without a transfer encoding or in x-uuencode, a
 * PDF inside message/rfc822 (plain and base64), images, a base64 multipart, a top-level
 * PDF).  Each goes through pseudo_message; the restore must give the original back byte
 * for byte (and its SHA-256); tests/tools/seal_check.py then decodes every part of every
 * output with Python's email package and checks that no planted value survives in any
 * decoding, that every part left is text the scanner reads, and that each placeholder
 * states the original part's type, size and SHA-256, as Python computes them.  The same
 * check runs on a generated corpus.  The policy's keep/seal patterns are tested here.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "unit/test_pseudo_util.h"

#include "pseudo/hooks.h"

#include "helpers/test_helpers.h"

static bool has(const unsigned char *hay, size_t n, const char *needle)
{
    size_t l = strlen(needle);
    for (size_t i = 0; l <= n && i + l <= n; i++)
        if (memcmp(hay + i, needle, l) == 0)
            return true;
    return false;
}

struct run {
    pseudo_key key;
    struct pseudo_policy pol;
    const char *out_dir;
    size_t files, sealed;
};

/* Pseudonymise one file, check the restore by bytes and by SHA-256, write the output. */
static int seal_one(const char *name, const unsigned char *msg, size_t len, void *arg)
{
    struct run *r = arg;
    pseudo_result *res;
    const unsigned char *o, *reid;
    unsigned char *back = NULL, a[32], b[32];
    size_t olen, rlen, blen;
    char path[8192];
    mr_error err = {0};

    if (strstr(name, ".eml") == NULL)
        return 0;
    res = tp_run(&r->key, &r->pol, msg, len);
    assert_false(pseudo_result_is_whole(res));
    o = pseudo_result_bytes(res, &olen);
    reid = pseudo_result_reid(res, &rlen);
    assert_int_equal(pseudo_restore(o, olen, reid, rlen, &back, &blen, &err), 0);
    SHA256(msg, len, a);
    SHA256(back, blen, b);
    assert_memory_equal(a, b, 32);
    assert_memory_equal(pseudo_result_original_sha256(res), a, 32);
    free(back);
    r->sealed += pseudo_result_sealed_count(res);
    r->files++;
    snprintf(path, sizeof path, "%s/%s", r->out_dir, name);
    assert_int_equal(th_write_file(path, o, olen), 0);
    pseudo_result_free(res);
    return 0;
}

static void run_check(const char *src, const char *orig, const char *out, const char *planted,
                      size_t expect)
{
    char cmd[16384];

    snprintf(cmd, sizeof cmd, "python3 '%s/tests/tools/seal_check.py' '%s' '%s' %s%s%s "
             "--expect-sealed %zu", src, orig, out, planted ? "--planted '" : "",
             planted ? planted : "", planted ? "'" : "", expect);
    assert_int_equal(system(cmd), 0);
}

static void test_adversarial(void **state)
{
    char src[4096], cmd[16384], in[4200], out[4200], planted[4300];
    char *tmp = th_tempdir("mailret-seal");
    struct run r = {.files = 0};

    (void)state;
    assert_non_null(tmp);
    tp_source_dir(src, sizeof src);
    snprintf(in, sizeof in, "%s/in", tmp);
    snprintf(out, sizeof out, "%s/out", tmp);
    snprintf(planted, sizeof planted, "%s/planted.json", in);
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/tools/seal_corpus.py' '%s'", src, in);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(mkdir(out, 0700), 0);
    tp_key(&r.key, 0x33);
    pseudo_policy_default(&r.pol);
    r.out_dir = out;
    assert_true(th_each_file(in, seal_one, &r) > 0);
    assert_int_equal(r.files, 11);
    /* Counted by construction: 1 PDF, 1 octet-stream, 1 TNEF, 1 signature, 2 of 05's
     * five UTF-16/32 texts (UTF-32, and UTF-16 under no charset; the three declared UTF-16
     * ones are pseudonymised in place), 4 in 06 (raw PDF, two uuencoded, one QP), 2 in
     * forwarded messages, 2 images, 1 encoded multipart, 1 top-level PDF, 2 of 11's four
     * UTF-16 texts (odd length, quoted-printable).  The checker counts the placeholders
     * itself and checks the UTF-16 parts left: they decode, and hold no planted value. */
    assert_int_equal(r.sealed, 18);
    run_check(src, in, out, planted, r.sealed);
    th_rmtree(tmp);
    free(tmp);
}

static void test_generated_corpus(void **state)
{
    char src[4096], cmd[16384], in[4200], out[4200];
    char *tmp = th_tempdir("mailret-seal-gen");
    struct run r = {.files = 0};

    (void)state;
    assert_non_null(tmp);
    tp_source_dir(src, sizeof src);
    snprintf(cmd, sizeof cmd,
             "python3 '%s/scripts/gen-corpus' --count 400 --seed 4711 --out '%s/corpus' "
             "--format eml --fund-domain akasse.example >/dev/null", src, tmp);
    assert_int_equal(system(cmd), 0);
    snprintf(in, sizeof in, "%s/corpus/eml", tmp);
    snprintf(out, sizeof out, "%s/out", tmp);
    assert_int_equal(mkdir(out, 0700), 0);
    tp_key(&r.key, 0x34);
    pseudo_policy_default(&r.pol);
    r.out_dir = out;
    assert_true(th_each_file(in, seal_one, &r) > 0);
    assert_int_equal(r.files, 400);
    assert_true(r.sealed > 50);     /* the generator attaches PDFs, images, documents */
    run_check(src, in, out, NULL, r.sealed);
    th_rmtree(tmp);
    free(tmp);
}

/* The nasty corpus: byte-exact and SHA-256-exact, sealed or not. */
static void test_nasty_exact(void **state)
{
    char dir[4200], src[4096];
    char *tmp = th_tempdir("mailret-seal-nasty");
    struct run r = {.files = 0};
    DIR *d;
    struct dirent *de;

    (void)state;
    tp_source_dir(src, sizeof src);
    snprintf(dir, sizeof dir, "%s/tests/data/nasty", src);
    tp_key(&r.key, 0x35);
    pseudo_policy_default(&r.pol);
    r.out_dir = tmp;
    d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        char path[8192];
        size_t len;
        unsigned char *m;
        if (strstr(de->d_name, ".eml") == NULL)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        m = th_read_file(path, &len);
        assert_non_null(m);
        seal_one(de->d_name, m, len, &r);
        free(m);
    }
    closedir(d);
    assert_true(r.files >= 19);
    /* 12-rfc2231's PDF, 17's unknown encoding, two of 20's UTF-16/32 texts, 21's four,
     * two of 22's UTF-16 texts */
    assert_int_equal(r.sealed, 10);
    th_rmtree(tmp);
    free(tmp);
}

static const char IMG[] =
    "From: a@example.dk\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
    "--B\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "iVBORw0KGgpDUFIgMDEwMjAzLTEyMzQ=\r\n"
    "--B\r\nContent-Type: image/svg+xml\r\n\r\n<svg>CPR 010203-1234</svg>\r\n"
    "--B\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "JVBERi0xLjQKQ1BSIDAxMDIwMy0xMjM0\r\n"
    "--B\r\nContent-Type: application/msword\r\n\r\nCPR 020304-2345\r\n--B--\r\n";

static size_t sealed_with(const char *const *keep, size_t nk, const char *const *seal,
                          size_t ns, char **text)
{
    pseudo_key k;
    struct pseudo_policy pol;
    pseudo_result *res;
    const unsigned char *o;
    size_t olen, n;

    tp_key(&k, 9);
    pseudo_policy_default(&pol);
    pol.keep_types = keep;
    pol.n_keep_types = nk;
    pol.seal_types = seal;
    pol.n_seal_types = ns;
    res = tp_run(&k, &pol, IMG, strlen(IMG));
    o = pseudo_result_bytes(res, &olen);
    *text = calloc(1, olen + 1);
    assert_non_null(*text);
    memcpy(*text, o, olen);
    n = pseudo_result_sealed_count(res);
    pseudo_result_free(res);
    return n;
}

static void test_policy_keep_and_seal(void **state)
{
    char *t;
    const unsigned char *u;

    (void)state;
    /* Default: all four sealed, none of their bodies left. */
    assert_int_equal(sealed_with(NULL, 0, NULL, 0, &t), 4);
    u = (const unsigned char *)t;
    assert_false(has(u, strlen(t), "iVBORw0KGgpDUFIgMDEwMjAzLTEyMzQ="));
    assert_false(has(u, strlen(t), "<svg>"));
    assert_false(has(u, strlen(t), "JVBERi0xLjQK"));
    assert_false(has(u, strlen(t), "020304-2345"));
    free(t);
    /* keep every image type: the PNG and the SVG stay as they are; the others are sealed. */
    static const char *const img[] = {"IMAGE/*"};
    assert_int_equal(sealed_with(img, 1, NULL, 0, &t), 2);
    u = (const unsigned char *)t;
    assert_true(has(u, strlen(t), "iVBORw0KGgpDUFIgMDEwMjAzLTEyMzQ="));
    assert_true(has(u, strlen(t), "<svg>CPR 010203-1234</svg>"));
    assert_false(has(u, strlen(t), "JVBERi0xLjQK"));
    free(t);
    /* ... and seal image/svg+xml: the exact type beats the pattern. */
    static const char *const svg[] = {"image/svg+xml"};
    assert_int_equal(sealed_with(img, 1, svg, 1, &t), 3);
    u = (const unsigned char *)t;
    assert_true(has(u, strlen(t), "iVBORw0KGgpDUFIgMDEwMjAzLTEyMzQ="));
    assert_false(has(u, strlen(t), "<svg>"));
    free(t);
    /* keep any type, seal every application type: only the images are kept. */
    static const char *const any[] = {"*"}, *const app[] = {"application/*"};
    assert_int_equal(sealed_with(any, 1, app, 1, &t), 2);
    free(t);
    /* At equal specificity seal wins. */
    static const char *const pdf[] = {"application/pdf"};
    assert_int_equal(sealed_with(pdf, 1, pdf, 1, &t), 4);
    free(t);
    /* keep any type, in the other spelling: nothing sealed. */
    static const char *const all[] = {"*/*"};
    assert_int_equal(sealed_with(all, 1, NULL, 0, &t), 0);
    assert_true(has((const unsigned char *)t, strlen(t), "JVBERi0xLjQKQ1BSIDAxMDIwMy0xMjM0"));
    free(t);
    /* pattern shapes */
    assert_true(pseudo_type_pattern_valid("image/*"));
    assert_true(pseudo_type_pattern_valid("*"));
    assert_true(pseudo_type_pattern_valid("application/vnd.ms-excel"));
    assert_false(pseudo_type_pattern_valid("image"));
    assert_false(pseudo_type_pattern_valid("*/png"));
    assert_false(pseudo_type_pattern_valid("image/"));
    assert_false(pseudo_type_pattern_valid("image/png; x"));
}

/* A sealed part keeps the message's structure: the delimiters are untouched and the
 * placeholder never holds a line that could be one. */
static void test_structure_kept(void **state)
{
    char *t;
    const char *p;
    size_t delims = 0;

    (void)state;
    assert_int_equal(sealed_with(NULL, 0, NULL, 0, &t), 4);
    for (p = t; (p = strstr(p, "\r\n--B")) != NULL; p += 5)
        delims++;
    assert_int_equal(delims, 5);
    assert_null(strstr(t, "\n--\r"));
    assert_non_null(strstr(t, "X-Mailret-Sealed: type=image/png; encoding=base64; size=23;"));
    assert_non_null(strstr(t, "X-Mailret-Sealed: type=application/msword; encoding=none; "
                              "size=15;"));
    free(t);
}

/* Random UTF-16 bodies (random code units, surrogate pairs, now and then a lone surrogate
 * or an odd byte; random label, byte order mark and encoding) around a CPR number: the
 * restore is exact; a body the generator made valid is pseudonymised in place (not
 * sealed) and its output decodes (OpenSSL's base64, byte search here) without the CPR in
 * either byte order; an invalid one is sealed. */
static size_t put16(unsigned char *o, unsigned u, bool big)
{
    o[0] = (unsigned char)(big ? u >> 8 : u);
    o[1] = (unsigned char)(big ? u : u >> 8);
    return 2;
}

static bool has16(const unsigned char *h, size_t n, const char *ascii, bool big)
{
    unsigned char pat[64];
    size_t l = 0;

    for (const char *c = ascii; *c; c++)
        l += put16(pat + l, (unsigned char)*c, big);
    for (size_t i = 0; l <= n && i + l <= n; i++)
        if (memcmp(h + i, pat, l) == 0)
            return true;
    return false;
}

static void test_utf16_random(void **state)
{
    static const char *const labels[] = {"utf-16", "UTF-16LE", "utf-16be", "unicode", "ucs-2"};
    uint64_t seed = 0x16161616u;
    pseudo_key k;
    struct pseudo_policy pol;
    size_t in_place = 0, sealed = 0;

    (void)state;
    tp_key(&k, 0x16);
    pseudo_policy_default(&pol);
    for (int iter = 0; iter < 600; iter++) {
        unsigned char body[2048], *enc = malloc(4096), *dec = malloc(4096);
        char *msg = malloc(8192);
        size_t n = 0, cut;
        int label = (int)(tp_rnd(&seed) % 5), e;
        bool big = label == 2 || (label == 0 && tp_rnd(&seed) % 2), valid = true;
        bool b64 = tp_rnd(&seed) % 4 != 0, bom = label == 0 && tp_rnd(&seed) % 2;
        assert_non_null(enc);
        assert_non_null(dec);
        assert_non_null(msg);
        if (label == 0 && !bom)
            big = false;    /* unmarked: the zero bytes decide; ASCII text makes it LE */
        if (bom)
            n += put16(body + n, 0xFEFF, big);
        for (int w = 0; w < 40; w++) {
            unsigned r = (unsigned)(tp_rnd(&seed) % 100);
            if (w == 20) {
                for (const char *c = " CPR 010203-1234 "; *c; c++)
                    n += put16(body + n, (unsigned char)*c, big);
            } else if (r < 60) {
                n += put16(body + n, 'a' + (unsigned)(tp_rnd(&seed) % 26), big);
            } else if (r < 75) {
                n += put16(body + n, ' ', big);
            } else if (r < 90) {
                n += put16(body + n, 0xA0 + (unsigned)(tp_rnd(&seed) % 0x2000), big);
            } else if (r < 98) {
                unsigned cp = 0x10000 + (unsigned)(tp_rnd(&seed) % 0xFFFFF);
                n += put16(body + n, 0xD800 | (cp - 0x10000) >> 10, big);
                n += put16(body + n, 0xDC00 | ((cp - 0x10000) & 0x3FF), big);
            } else if (tp_rnd(&seed) % 4 == 0) {
                n += put16(body + n, 0xD800 + (unsigned)(tp_rnd(&seed) % 0x800), big);
                valid = false;  /* a lone surrogate */
            }
        }
        if (tp_rnd(&seed) % 20 == 0) {
            body[n++] = 'x';
            valid = false;      /* an odd length */
        }
        if (b64) {
            e = EVP_EncodeBlock(enc, body, (int)n);
            snprintf(msg, 8192, "From: a@example.dk\r\nContent-Type: text/plain; charset=%s\r\n"
                     "Content-Transfer-Encoding: base64\r\n\r\n%.*s\r\n", labels[label], e,
                     (const char *)enc);
            cut = strlen(msg);
        } else {
            cut = (size_t)snprintf(msg, 8192, "From: a@example.dk\r\nContent-Type: text/plain; "
                                   "charset=%s\r\nContent-Transfer-Encoding: binary\r\n\r\n",
                                   labels[label]);
            memcpy(msg + cut, body, n);
            cut += n;
        }
        pseudo_result *res = tp_run(&k, &pol, msg, cut);
        size_t olen;
        const unsigned char *o = pseudo_result_bytes(res, &olen);
        const unsigned char *bs = NULL;
        for (size_t i = 0; i + 4 <= olen; i++)
            if (memcmp(o + i, "\r\n\r\n", 4) == 0) {
                bs = o + i + 4;
                break;
            }
        assert_non_null(bs);
        if (pseudo_result_sealed_count(res) == 1) {
            sealed++;
            assert_false(valid);
            assert_false(has(bs, olen - (size_t)(bs - o), "010203"));
        } else {
            size_t bl = olen - (size_t)(bs - o), dl;
            in_place++;
            if (!valid)
                fail_msg("iteration %d: invalid UTF-16 was not sealed", iter);
            if (b64) {
                size_t j = 0;
                for (size_t i = 0; i < bl; i++)
                    if (bs[i] != '\r' && bs[i] != '\n')
                        enc[j++] = bs[i];
                e = EVP_DecodeBlock(dec, enc, (int)j);
                assert_true(e >= 0);
                dl = (size_t)e - (j > 1 && enc[j - 1] == '=') - (j > 2 && enc[j - 2] == '=');
            } else {
                memcpy(dec, bs, bl);
                dl = bl;
            }
            assert_true(dl % 2 == 0);
            if (has16(dec, dl, "010203", big) || has16(dec, dl, "010203", !big))
                fail_msg("iteration %d: the CPR survived in UTF-16", iter);
            assert_true(has16(dec, dl, "CPR-", big));
        }
        pseudo_result_free(res);
        free(enc);
        free(dec);
        free(msg);
    }
    printf("UTF-16: %zu in place, %zu sealed\n", in_place, sealed);
    assert_true(in_place > 400 && sealed > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adversarial),
        cmocka_unit_test(test_generated_corpus),
        cmocka_unit_test(test_nasty_exact),
        cmocka_unit_test(test_policy_keep_and_seal),
        cmocka_unit_test(test_structure_kept),
        cmocka_unit_test(test_utf16_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
