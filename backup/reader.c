/* reader.c — see reader.h. */
#include "backup/reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "backup/tar.h"
#include "backup/volume.h"

/* One decrypted tar in memory: at most a volume's plaintext. */
struct entries {
    struct tar_entry *v;
    size_t n, cap;
};

static void entries_free(struct entries *e)
{
    for (size_t i = 0; i < e->n; i++) {
        OPENSSL_cleanse(e->v[i].data, e->v[i].len);
        free(e->v[i].data);
    }
    free(e->v);
    memset(e, 0, sizeof *e);
}

static int read_all(const char *dir, const char *name, EVP_PKEY *key, const char *sha,
                    struct entries *out, mr_error *err)
{
    char path[4400];
    volume_reader *r = NULL;
    int rc;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    rc = volume_open(path, key, sha, &r, err);
    while (rc == 0) {
        struct tar_entry e;
        rc = tar_read_next(volume_read, r, (size_t)1 << 31, &e, err);
        if (rc <= 0)
            break;
        rc = 0;
        if (out->n == out->cap) {
            size_t nc = out->cap ? out->cap * 2 : 64;
            struct tar_entry *nv = realloc(out->v, nc * sizeof *nv);
            if (nv == NULL) {
                free(e.data);
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
                break;
            }
            out->v = nv;
            out->cap = nc;
        }
        out->v[out->n++] = e;
    }
    if (rc == 0)
        rc = volume_check_end(r, err);
    volume_close(r);
    if (rc != 0 && err != NULL && strstr(err->msg, name) == NULL)
        mr_error_prefix(err, "%s", name);
    return rc;
}

static int digest_matches(const unsigned char md[32], const char *hex)
{
    char h[65];

    volume_hex(md, 32, h);
    return strcmp(h, hex) == 0;
}

static int sha_matches(const unsigned char *data, size_t len, const char *hex)
{
    unsigned char md[32];

    SHA256(data, len, md);
    return digest_matches(md, hex);
}

static int run_volume(const struct reader_options *opt, const struct archive_volume *vol,
                      mr_error *err)
{
    struct entries c = { 0 }, r = { 0 };
    struct index_entry *idx = NULL;
    size_t n_idx = 0;
    int rc;

    rc = read_all(opt->dir, vol->name, opt->content_key, vol->sha256, &c, err);
    if (rc != 0)
        goto done;
    if (c.n == 0 || strcmp(c.v[c.n - 1].name, INDEX_FILE) != 0) {
        rc = mr_error_set(err, MR_E_TAMPERED, "%s: index.jsonl missing", vol->name);
        goto done;
    }
    rc = index_parse(c.v[c.n - 1].data, c.v[c.n - 1].len, &idx, &n_idx, err);
    if (rc != 0) {
        mr_error_prefix(err, "%s", vol->name);
        goto done;
    }
    if (n_idx != c.n - 1 || n_idx != vol->messages) {
        rc = mr_error_set(err, MR_E_TAMPERED, "%s: holds %zu messages, index %zu, manifest %zu",
                          vol->name, c.n - 1, n_idx, vol->messages);
        goto done;
    }
    if (opt->reid_key != NULL) {
        rc = read_all(opt->dir, vol->reid_name, opt->reid_key, vol->reid_sha256, &r, err);
        if (rc != 0)
            goto done;
        if (r.n != n_idx) {
            rc = mr_error_set(err, MR_E_TAMPERED, "%s: %zu entries for %zu messages",
                              vol->reid_name, r.n, n_idx);
            goto done;
        }
    }
    for (size_t i = 0; rc == 0 && i < n_idx; i++) {
        struct reader_message m = { .idx = &idx[i], .volume = vol->name };
        unsigned char *orig = NULL;
        size_t orig_len = 0;
        const struct tar_entry *ce = &c.v[i];

        if (strcmp(ce->name, idx[i].file) != 0 || ce->len != idx[i].pseudo_size
            || !sha_matches(ce->data, ce->len, idx[i].pseudo_sha256)) {
            rc = mr_error_set(err, MR_E_TAMPERED, "%s: %s does not match its index entry",
                              vol->name, ce->name);
            break;
        }
        if (opt->want != NULL && !opt->want(opt->ctx, &idx[i]))
            continue;
        m.pseudo = ce->data;
        m.pseudo_len = ce->len;
        if (opt->reid_key != NULL) {
            const struct tar_entry *re = &r.v[i];
            size_t stem = strlen(idx[i].file) - 4;
            if (strncmp(re->name, idx[i].file, stem) != 0 || strcmp(re->name + stem, ".reid") != 0) {
                rc = mr_error_set(err, MR_E_TAMPERED, "%s: entry %zu is not for %s",
                                  vol->reid_name, i + 1, idx[i].file);
                break;
            }
            unsigned char md[32];
            rc = pseudo_restore_digest(ce->data, ce->len, re->data, re->len, &orig, &orig_len,
                                       md, err);
            if (rc != 0) {
                mr_error_prefix(err, "%s: %s", vol->name, idx[i].file);
                break;
            }
            if (orig_len != idx[i].size || !digest_matches(md, idx[i].sha256)) {
                rc = mr_error_set(err, MR_E_TAMPERED,
                                  "%s: %s does not re-identify to its original SHA-256",
                                  vol->name, idx[i].file);
            }
            m.orig = orig;
            m.orig_len = orig_len;
        }
        if (rc == 0)
            rc = opt->fn(opt->ctx, &m, err);
        if (orig != NULL) {
            OPENSSL_cleanse(orig, orig_len);
            free(orig);
        }
    }
done:
    index_entries_free(idx, n_idx);
    entries_free(&c);
    entries_free(&r);
    return rc;
}

int reader_run(const struct reader_options *opt, mr_error *err)
{
    for (size_t i = 0; i < opt->manifest->n_volumes; i++) {
        int rc = run_volume(opt, &opt->manifest->volumes[i], err);
        if (rc != 0)
            return rc;
    }
    return 0;
}
