/*
 * pseudo_tool.c — command-line driver for the pseudonymiser, for the benchmark
 * (scripts/bench-pseudo), manual inspection and corpus runs.  Not installed.
 *
 *   pseudo_tool pseudo IN OUT            write OUT (pseudonymised) and OUT.reid
 *   pseudo_tool restore PSEUDO REID OUT  rebuild the original
 *   pseudo_tool corpus INDIR OUTDIR      every regular file below INDIR, round trip
 *                                        checked, outputs mirrored under OUTDIR
 *   pseudo_tool bench [-r N] [-z] PATH...
 *                                        MB/s over files (directories recursed),
 *                                        single thread, and peak RSS; -z: also the
 *                                        archive's compression of the output
 *   pseudo_tool digest PATH...           per file (sorted) and per policy (8 fixed ones),
 *                                        a digest of the output and token list and the
 *                                        round trip's verdict, through pseudo_message
 *                                        and through a session: two builds that print
 *                                        the same lines pseudonymise alike
 *                                        (scripts/pseudo-equiv compares them)
 *
 * The key is fixed (32 bytes of 0x42) unless MAILRET_PSEUDO_KEY_HEX is set; the fund's
 * own domains come from MAILRET_PSEUDO_OWN (comma-separated).
 */
#define _GNU_SOURCE 1 /* memmem */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <libdeflate.h>
#include <openssl/evp.h>

#include "backup/buf.h"
#include "pseudo/pseudo.h"
#include "backup/volume.h"   /* VOLUME_DEFAULT_LEVEL */

struct file_list {
    char **v;
    size_t n, cap;
};

static int list_add(struct file_list *l, const char *p)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, cap * sizeof *nv);
        if (nv == NULL)
            return -1;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n] = strdup(p);
    return l->v[l->n++] ? 0 : -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk(const char *path, struct file_list *l)
{
    struct stat st;
    DIR *d;
    struct dirent *de;

    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode))
        return S_ISREG(st.st_mode) ? list_add(l, path) : 0;
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        char child[4096];
        if (de->d_name[0] == '.')
            continue;
        snprintf(child, sizeof child, "%s/%s", path, de->d_name);
        if (walk(child, l) != 0) {
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    return 0;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, used = 0, got;
    struct stat st;

    if (f == NULL)
        return NULL;
    /* Sized from the file so that the benchmark's corpus costs its size in memory and
     * peak RSS says something about the pseudonymiser. */
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
        cap = (size_t)st.st_size;
    for (;;) {
        if (buf != NULL && used == cap) {
            int c = fgetc(f);   /* at the expected size: grow only if there is more */
            if (c == EOF)
                break;
            ungetc(c, f);
        }
        if (buf == NULL || used == cap) {
            size_t ncap = buf == NULL && cap > 0 ? cap : cap + 65536;
            unsigned char *nb = realloc(buf, ncap + 1);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        got = fread(buf + used, 1, cap - used, f);
        used += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = used;
    return buf;
}

static int write_all(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    int rc = 0;

    if (f == NULL)
        return -1;
    if (n > 0 && fwrite(p, 1, n, f) != n)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

static int mkdirs(const char *path)
{
    char tmp[4096];

    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return (mkdir(tmp, 0700) != 0 && errno != EEXIST) ? -1 : 0;
}

struct setup {
    pseudo_key key;
    struct pseudo_policy pol;
    char *own_buf;
    const char *own[16];
};

static void setup_init(struct setup *s)
{
    const char *hex = getenv("MAILRET_PSEUDO_KEY_HEX");
    const char *own = getenv("MAILRET_PSEUDO_OWN");

    memset(s->key.bytes, 0x42, sizeof s->key.bytes);
    if (hex != NULL && strlen(hex) == 2 * PSEUDO_KEY_LEN)
        for (int i = 0; i < PSEUDO_KEY_LEN; i++)
            sscanf(hex + 2 * i, "%2hhx", &s->key.bytes[i]);
    pseudo_policy_default(&s->pol);
    s->own_buf = NULL;
    if (own != NULL && *own) {
        size_t n = 0;
        s->own_buf = strdup(own);
        for (char *tok = strtok(s->own_buf, ","); tok && n < 16; tok = strtok(NULL, ","))
            s->own[n++] = tok;
        s->pol.own_domains = s->own;
        s->pol.n_own_domains = n;
    }
}

static int cmd_pseudo(struct setup *s, const char *in, const char *out)
{
    size_t len, olen, rlen;
    unsigned char *msg = read_all(in, &len);
    pseudo_result *res = NULL;
    mr_error err = {0};
    char rp[4096];

    if (msg == NULL) {
        fprintf(stderr, "pseudo_tool: cannot read %s\n", in);
        return 1;
    }
    if (pseudo_message(&s->key, &s->pol, msg, len, &res, &err) != 0) {
        fprintf(stderr, "pseudo_tool: %s: %s\n", in, err.msg);
        free(msg);
        return 1;
    }
    const unsigned char *o = pseudo_result_bytes(res, &olen);
    const unsigned char *r = pseudo_result_reid(res, &rlen);
    snprintf(rp, sizeof rp, "%s.reid", out);
    int rc = write_all(out, o, olen) || write_all(rp, r, rlen);
    for (size_t i = 0; i < pseudo_result_token_count(res); i++) {
        enum pseudo_kind k;
        const char *t;
        if (pseudo_result_token(res, i, &k, &t) == 0)
            fprintf(stderr, "token %s %s\n", pseudo_kind_name(k), t);
    }
    pseudo_result_free(res);
    free(msg);
    return rc ? 1 : 0;
}

static int cmd_restore(const char *p, const char *r, const char *out)
{
    size_t pl, rl, ol;
    unsigned char *pb = read_all(p, &pl), *rb = read_all(r, &rl), *ob = NULL;
    mr_error err = {0};
    int rc = 1;

    if (pb != NULL && rb != NULL && pseudo_restore(pb, pl, rb, rl, &ob, &ol, &err) == 0)
        rc = write_all(out, ob, ol) ? 1 : 0;
    else
        fprintf(stderr, "pseudo_tool: restore failed: %s\n", err.msg);
    free(pb);
    free(rb);
    free(ob);
    return rc;
}

static int cmd_corpus(struct setup *s, const char *indir, const char *outdir)
{
    struct file_list l = {0};
    size_t bad = 0, whole = 0;
    size_t inl = strlen(indir);

    if (walk(indir, &l) != 0) {
        fprintf(stderr, "pseudo_tool: cannot list %s\n", indir);
        return 1;
    }
    qsort(l.v, l.n, sizeof *l.v, cmp_str);
    for (size_t i = 0; i < l.n; i++) {
        size_t len, olen, rlen, back_len;
        unsigned char *msg = read_all(l.v[i], &len), *back = NULL;
        pseudo_result *res = NULL;
        mr_error err = {0};
        char out[4096], dir[4096];

        if (msg == NULL || pseudo_message(&s->key, &s->pol, msg, len, &res, &err) != 0) {
            fprintf(stderr, "pseudo_tool: %s: %s\n", l.v[i], err.msg);
            bad++;
            free(msg);
            continue;
        }
        const unsigned char *o = pseudo_result_bytes(res, &olen);
        const unsigned char *r = pseudo_result_reid(res, &rlen);
        if (pseudo_restore(o, olen, r, rlen, &back, &back_len, &err) != 0 || back_len != len ||
            memcmp(back, msg, len) != 0) {
            fprintf(stderr, "pseudo_tool: %s: round trip FAILED %s\n", l.v[i], err.msg);
            bad++;
        }
        if (o != NULL && olen > 22 && memmem(o, olen, "X-Mailret-Pseudonymised", 23) != NULL)
            whole++;
        snprintf(out, sizeof out, "%s%s", outdir, l.v[i] + inl);
        snprintf(dir, sizeof dir, "%s", out);
        char *slash = strrchr(dir, '/');
        if (slash != NULL) {
            *slash = '\0';
            mkdirs(dir);
        }
        if (write_all(out, o, olen) != 0) {
            fprintf(stderr, "pseudo_tool: cannot write %s\n", out);
            bad++;
        }
        free(back);
        pseudo_result_free(res);
        free(msg);
    }
    printf("corpus: %zu messages, %zu failures, %zu replaced whole\n", l.n, bad, whole);
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
    return bad ? 1 : 0;
}

static double now(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The archive's compression (libdeflate gzip at the archive writer's default level) of
 * what it writes per message — the pseudonymised bytes (content volume) and the reid
 * record (reid volume, which holds the bodies of sealed attachments) — timed like the
 * pseudonymiser (CPU time over reps passes) and counted in original bytes: the issue's
 * target is that compression, not pseudonymisation, bounds the backup, so the two
 * figures come from the same run. */
static int bench_compression(pseudo_session *ps, unsigned char **msgs, const size_t *lens,
                             size_t n, size_t total, int reps)
{
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(VOLUME_DEFAULT_LEVEL);
    struct mr_buf all = {0};
    unsigned char *gz = NULL;
    size_t gz_len = 0, bound;
    mr_error err = {0};
    double c0, c1;
    int rc = 1;

    if (c == NULL)
        return 1;
    for (size_t i = 0; i < n; i++) {
        pseudo_result *res = NULL;
        const unsigned char *b;
        size_t bl;
        if (pseudo_session_message(ps, msgs[i], lens[i], &res, &err) != 0)
            goto out;
        b = pseudo_result_bytes(res, &bl);
        int arc = buf_append(&all, b, bl, &err);
        if (arc == 0) {
            b = pseudo_result_reid(res, &bl);
            arc = buf_append(&all, b, bl, &err);
        }
        pseudo_result_free(res);
        if (arc != 0)
            goto out;
    }
    bound = libdeflate_gzip_compress_bound(c, all.len);
    gz = malloc(bound ? bound : 1);
    if (gz == NULL)
        goto out;
    c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    for (int r = 0; r < reps; r++)
        gz_len = libdeflate_gzip_compress(c, all.data, all.len, gz, bound);
    c1 = now(CLOCK_PROCESS_CPUTIME_ID);
    if (gz_len == 0)
        goto out;
    printf("compression: %.1f MB/s per core (libdeflate gzip level %d, the archive's default, "
           "of the pseudonymised messages and their reid data; MB of original per second), "
           "%.1f MB -> %.1f MB\n",
           (double)total * reps / 1e6 / (c1 - c0), VOLUME_DEFAULT_LEVEL, (double)all.len / 1e6,
           (double)gz_len / 1e6);
    rc = 0;
out:
    libdeflate_free_compressor(c);
    buf_free(&all);
    free(gz);
    return rc;
}

static int cmd_bench(struct setup *s, int reps, bool compression, int argc, char **argv)
{
    struct file_list l = {0};
    unsigned char **msgs;
    size_t *lens, total = 0;
    double t0, t1, c0, c1;
    struct rusage ru, ru0;

    for (int i = 0; i < argc; i++)
        if (walk(argv[i], &l) != 0)
            return 1;
    msgs = calloc(l.n + 1, sizeof *msgs);
    lens = calloc(l.n + 1, sizeof *lens);
    if (msgs == NULL || lens == NULL)
        return 1;
    for (size_t i = 0; i < l.n; i++) {
        msgs[i] = read_all(l.v[i], &lens[i]);
        if (msgs[i] == NULL)
            return 1;
        total += lens[i];
    }
    getrusage(RUSAGE_SELF, &ru0);   /* program + corpus, before the first message */
    /* One session for the run, as the archive writer keeps one for a batch. */
    pseudo_session *ps = NULL;
    mr_error serr = {0};
    if (pseudo_session_new(&s->key, &s->pol, &ps, &serr) != 0) {
        fprintf(stderr, "pseudo_tool: %s\n", serr.msg);
        return 1;
    }
    t0 = now(CLOCK_MONOTONIC);
    c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    for (int r = 0; r < reps; r++) {
        for (size_t i = 0; i < l.n; i++) {
            pseudo_result *res = NULL;
            mr_error err = {0};
            if (pseudo_session_message(ps, msgs[i], lens[i], &res, &err) != 0) {
                fprintf(stderr, "pseudo_tool: %s: %s\n", l.v[i], err.msg);
                return 1;
            }
            pseudo_result_free(res);
        }
    }
    t1 = now(CLOCK_MONOTONIC);
    c1 = now(CLOCK_PROCESS_CPUTIME_ID);
    getrusage(RUSAGE_SELF, &ru);
    /* CPU time is the figure for "one core" on a shared machine; wall time is shown too. */
    printf("%zu messages, %.1f MB x %d: %.1f MB/s per core (CPU %.3f s), %.1f MB/s wall, "
           "peak RSS %.1f MB (%.1f MB before the first message)\n",
           l.n, (double)total / 1e6, reps, (double)total * reps / 1e6 / (c1 - c0), c1 - c0,
           (double)total * reps / 1e6 / (t1 - t0), (double)ru.ru_maxrss / 1024.0,
           (double)ru0.ru_maxrss / 1024.0);
    if (compression && bench_compression(ps, msgs, lens, l.n, total, reps) != 0) {
        fprintf(stderr, "pseudo_tool: compression benchmark failed\n");
        return 1;
    }
    pseudo_session_free(ps);
    for (size_t i = 0; i < l.n; i++) {
        free(msgs[i]);
        free(l.v[i]);
    }
    free(msgs);
    free(lens);
    free(l.v);
    return 0;
}

/* The eight policies of `digest`: default, the fund's domain kept, everything off, each
 * kind alone, and own addresses with IPs off. */
#define DIGEST_POLICIES 8

static void digest_policy(unsigned i, struct pseudo_policy *pol)
{
    static const char *const domains[] = {"akasse.example"};
    static const char *const addresses[] = {"post@akasse.example", "Anna@Example.dk"};

    pseudo_policy_default(pol);
    switch (i) {
    case 1:
        pol->own_domains = domains;
        pol->n_own_domains = 1;
        break;
    case 2:
        pol->emails = pol->cpr = pol->phones = pol->names = pol->ips = false;
        break;
    case 3: case 4: case 5: case 6:
        pol->emails = i == 3;
        pol->cpr = i == 4;
        pol->phones = i == 5;
        pol->names = i == 6;
        pol->ips = false;
        break;
    case 7:
        pol->own_domains = domains;
        pol->n_own_domains = 1;
        pol->own_addresses = addresses;
        pol->n_own_addresses = 2;
        pol->ips = false;
        break;
    default:
        break;
    }
}

/* "<16 hex of SHA-256(bytes || kind, token ...)> <tokens> ok|RESTORE-FAILED", or NULL
 * when res is NULL. */
static void digest_line(const pseudo_result *res, const unsigned char *msg, size_t len,
                        char *out, size_t cap)
{
    const unsigned char *b, *r;
    unsigned char md[32], *back = NULL;
    size_t bl, rl, back_len = 0, n = pseudo_result_token_count(res);
    unsigned int mdl = 0;
    mr_error err = {0};
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok;

    b = pseudo_result_bytes(res, &bl);
    r = pseudo_result_reid(res, &rl);
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    EVP_DigestUpdate(c, b, bl);
    for (size_t i = 0; i < n; i++) {
        enum pseudo_kind k;
        const char *t;
        unsigned char kb = 0;
        if (pseudo_result_token(res, i, &k, &t) == 0) {
            kb = (unsigned char)k;
            EVP_DigestUpdate(c, &kb, 1);
            EVP_DigestUpdate(c, t, strlen(t));
        }
    }
    EVP_DigestFinal_ex(c, md, &mdl);
    EVP_MD_CTX_free(c);
    ok = pseudo_restore(b, bl, r, rl, &back, &back_len, &err) == 0 && back_len == len &&
         (len == 0 || memcmp(back, msg, len) == 0);
    free(back);
    snprintf(out, cap, "%02x%02x%02x%02x%02x%02x%02x%02x %zu %s", md[0], md[1], md[2], md[3],
             md[4], md[5], md[6], md[7], n, ok ? "ok" : "RESTORE-FAILED");
}

static int cmd_digest(struct setup *s, int argc, char **argv)
{
    struct file_list l = {0};
    pseudo_session *sess[DIGEST_POLICIES] = {0};
    struct pseudo_policy pols[DIGEST_POLICIES];
    int rc = 0;

    for (int i = 0; i < argc; i++)
        if (walk(argv[i], &l) != 0) {
            fprintf(stderr, "pseudo_tool: cannot list %s\n", argv[i]);
            return 1;
        }
    qsort(l.v, l.n, sizeof *l.v, cmp_str);
    for (unsigned p = 0; p < DIGEST_POLICIES; p++) {
        mr_error err = {0};
        digest_policy(p, &pols[p]);
        if (pseudo_session_new(&s->key, &pols[p], &sess[p], &err) != 0) {
            fprintf(stderr, "pseudo_tool: %s\n", err.msg);
            return 1;
        }
    }
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        size_t len;
        unsigned char *msg = read_all(l.v[i], &len);
        if (msg == NULL) {
            fprintf(stderr, "pseudo_tool: cannot read %s\n", l.v[i]);
            rc = 1;
            break;
        }
        for (unsigned p = 0; p < DIGEST_POLICIES; p++) {
            pseudo_result *a = NULL, *b = NULL;
            mr_error err = {0};
            char la[128], lb[128];
            if (pseudo_message(&s->key, &pols[p], msg, len, &a, &err) != 0 ||
                pseudo_session_message(sess[p], msg, len, &b, &err) != 0) {
                printf("%s %u ERROR %s\n", l.v[i], p, err.msg);
                pseudo_result_free(a);
                continue;
            }
            digest_line(a, msg, len, la, sizeof la);
            digest_line(b, msg, len, lb, sizeof lb);
            /* The session must agree with the call. */
            printf("%s %u %s%s\n", l.v[i], p, la, strcmp(la, lb) == 0 ? "" : " SESSION-DIFFERS");
            pseudo_result_free(a);
            pseudo_result_free(b);
        }
        free(msg);
    }
    for (unsigned p = 0; p < DIGEST_POLICIES; p++)
        pseudo_session_free(sess[p]);
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
    return rc;
}

int main(int argc, char **argv)
{
    struct setup s;
    int rc = 2;

    setup_init(&s);
    if (argc == 4 && strcmp(argv[1], "pseudo") == 0)
        rc = cmd_pseudo(&s, argv[2], argv[3]);
    else if (argc == 5 && strcmp(argv[1], "restore") == 0)
        rc = cmd_restore(argv[2], argv[3], argv[4]);
    else if (argc == 4 && strcmp(argv[1], "corpus") == 0)
        rc = cmd_corpus(&s, argv[2], argv[3]);
    else if (argc >= 3 && strcmp(argv[1], "bench") == 0) {
        int reps = 1, first = 2;
        bool compression = false;
        for (;;) {
            if (argc >= first + 3 && strcmp(argv[first], "-r") == 0) {
                reps = atoi(argv[first + 1]);
                first += 2;
            } else if (argc >= first + 2 && strcmp(argv[first], "-z") == 0) {
                compression = true;
                first++;
            } else {
                break;
            }
        }
        rc = cmd_bench(&s, reps > 0 ? reps : 1, compression, argc - first, argv + first);
    } else if (argc >= 3 && strcmp(argv[1], "digest") == 0)
        rc = cmd_digest(&s, argc - 2, argv + 2);
    else
        fprintf(stderr, "usage: pseudo_tool pseudo IN OUT | restore P R OUT | corpus IN OUT | "
                        "bench [-r N] [-z] PATH... | digest PATH...\n");
    free(s.own_buf);
    return rc;
}
