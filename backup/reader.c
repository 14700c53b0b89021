/* reader.c — see reader.h.  A volume is read in two passes over its decrypted plaintext,
 * neither of which holds more than one member at a time: the first streams every entry
 * through SHA-256 (keeping only names, sizes and digests, and the index, which comes
 * last), so that everything is checked against the index before anything is handed out;
 * the second decompresses again and hands out one message (and its reid entry) at a
 * time.  Memory is thus one message plus the volume's compressed bytes, not the whole
 * plaintext, and the plaintext itself is bounded by volume_plain_cap. */
#include "backup/reader.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "backup/batchdir.h"
#include "backup/tar.h"
#include "backup/volume.h"

#define INDEX_MAX ((size_t)64 << 20)
#define CHUNK 65536

/* What the first pass keeps of an entry. */
struct seen {
    char name[TAR_NAME_MAX + 1];
    size_t len;
    unsigned char sha[32];
};

struct scan {
    struct seen *v;
    size_t n, cap;
    unsigned char *index;       /* content volumes: the last entry's bytes */
    size_t index_len;
};

static void scan_free(struct scan *s)
{
    free(s->v);
    free(s->index);
    memset(s, 0, sizeof *s);
}

static int named(int rc, const char *name, mr_error *err)
{
    if (rc != 0 && err != NULL && strstr(err->msg, name) == NULL)
        mr_error_prefix(err, "%s", name);
    return rc;
}

/* A volume that does not match the manifest is never read; a cached copy of a stored
 * object is dropped, so that the next run fetches it again. */
static int opened(const char *dir, const char *name, int rc, mr_error *err)
{
    if (rc == MR_E_TAMPERED)
        batchdir_store_evict(dir, name);
    return named(rc, name, err);
}

/* Pass 1: every entry's name, size and SHA-256; the index's bytes (content volumes). */
static int scan_volume(volume_reader *r, const char *name, bool content, struct scan *s,
                       mr_error *err)
{
    unsigned char *chunk = malloc(CHUNK);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = chunk != NULL && md != NULL ? 0 : mr_error_set(err, MR_E_NOMEM, "out of memory");

    while (rc == 0) {
        struct tar_entry e;
        struct seen *sv;
        rc = tar_read_header(volume_read, r, VOLUME_PLAIN_MAX, &e, err);
        if (rc <= 0)
            break;
        rc = 0;
        if (s->index != NULL) {
            rc = mr_error_set(err, MR_E_TAMPERED, "%s: an entry after index.jsonl", name);
            break;
        }
        if (content && strcmp(e.name, INDEX_FILE) == 0) {
            if (e.len > INDEX_MAX) {
                rc = mr_error_set(err, MR_E_LIMIT, "%s: index.jsonl of %zu bytes", name, e.len);
                break;
            }
            s->index = malloc(e.len ? e.len : 1);
            s->index_len = e.len;
            if (s->index == NULL)
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
            if (rc == 0)
                rc = volume_read(r, s->index, e.len, err);
            if (rc == 0)
                rc = tar_skip_padding(volume_read, r, e.len, err);
            continue;
        }
        if (s->n == s->cap) {
            size_t nc = s->cap ? s->cap * 2 : 64;
            struct seen *nv = realloc(s->v, nc * sizeof *nv);
            if (nv == NULL) {
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
                break;
            }
            s->v = nv;
            s->cap = nc;
        }
        sv = &s->v[s->n++];
        memcpy(sv->name, e.name, sizeof sv->name);
        sv->len = e.len;
        if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
            rc = mr_error_set(err, MR_E_CRYPTO, "SHA-256 unavailable");
        for (size_t left = e.len; rc == 0 && left > 0;) {
            size_t take = left < CHUNK ? left : CHUNK;
            rc = volume_read(r, chunk, take, err);
            if (rc == 0 && EVP_DigestUpdate(md, chunk, take) != 1)
                rc = mr_error_set(err, MR_E_CRYPTO, "SHA-256 failed");
            left -= take;
        }
        if (rc == 0 && EVP_DigestFinal_ex(md, sv->sha, NULL) != 1)
            rc = mr_error_set(err, MR_E_CRYPTO, "SHA-256 failed");
        if (rc == 0)
            rc = tar_skip_padding(volume_read, r, e.len, err);
    }
    if (rc == 0)
        rc = volume_check_end(r, err);
    if (chunk != NULL) {
        OPENSSL_cleanse(chunk, CHUNK);
        free(chunk);
    }
    EVP_MD_CTX_free(md);
    return named(rc, name, err);
}

static int digest_matches(const unsigned char md[32], const char *hex)
{
    char h[65];

    volume_hex(md, 32, h);
    return strcmp(h, hex) == 0;
}

/* Pass 2: the next entry, which pass 1 saw as *want, into a fresh buffer. */
static int next_entry(volume_reader *r, const char *name, const struct seen *want,
                      unsigned char **data, mr_error *err)
{
    struct tar_entry e;
    unsigned char md[32];
    int rc = tar_read_header(volume_read, r, want->len, &e, err);

    *data = NULL;
    if (rc == 0)
        rc = mr_error_set(err, MR_E_TAMPERED, "%s: ends early on a second reading", name);
    if (rc < 0)
        return named(rc, name, err);
    if (strcmp(e.name, want->name) != 0 || e.len != want->len)
        return mr_error_set(err, MR_E_TAMPERED, "%s: reads differently a second time", name);
    *data = malloc(e.len ? e.len : 1);
    if (*data == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    rc = volume_read(r, *data, e.len, err);
    if (rc == 0)
        rc = tar_skip_padding(volume_read, r, e.len, err);
    if (rc == 0) {
        SHA256(*data, e.len, md);
        if (memcmp(md, want->sha, 32) != 0)
            rc = mr_error_set(err, MR_E_TAMPERED, "%s: reads differently a second time", name);
    }
    if (rc != 0) {
        OPENSSL_cleanse(*data, e.len);
        free(*data);
        *data = NULL;
    }
    return named(rc, name, err);
}

/* The member names the index may give: exactly "<uidvalidity>-<uid>.eml" of its own
 * entry (anything else — too short, a path, another message's — is not ours). */
static bool index_name_ok(const struct index_entry *e)
{
    char want[48];

    index_member_name(want, sizeof want, e->uidvalidity, e->uid, ".eml");
    return strcmp(e->file, want) == 0;
}

static void wipe_free(unsigned char *p, size_t len)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, len);
        free(p);
    }
}

static int run_volume(const struct reader_options *opt, const struct archive_volume *vol,
                      volume_reader *cr, volume_reader *rr, mr_error *err)
{
    struct scan c = { 0 }, r = { 0 };
    struct index_entry *idx = NULL;
    size_t n_idx = 0;
    char path[BATCHDIR_PATH_MAX];
    int rc;

    rc = batchdir_read_path(opt->dir, vol->name, path, sizeof path, err);
    if (rc == 0)
        rc = opened(opt->dir, vol->name,
                    volume_reader_open(cr, path, opt->content_key, vol->sha256, err), err);
    if (rc == 0)
        rc = scan_volume(cr, vol->name, true, &c, err);
    if (rc != 0)
        goto done;
    if (c.index == NULL) {
        rc = mr_error_set(err, MR_E_TAMPERED, "%s: index.jsonl missing", vol->name);
        goto done;
    }
    rc = index_parse(c.index, c.index_len, &idx, &n_idx, err);
    if (rc != 0) {
        mr_error_prefix(err, "%s", vol->name);
        goto done;
    }
    if (n_idx != c.n || n_idx != vol->messages) {
        rc = mr_error_set(err, MR_E_TAMPERED, "%s: holds %zu messages, index %zu, manifest %zu",
                          vol->name, c.n, n_idx, vol->messages);
        goto done;
    }
    for (size_t i = 0; i < n_idx; i++) {
        if (!index_name_ok(&idx[i]) || strcmp(c.v[i].name, idx[i].file) != 0
            || c.v[i].len != idx[i].pseudo_size
            || !digest_matches(c.v[i].sha, idx[i].pseudo_sha256)) {
            rc = mr_error_set(err, MR_E_TAMPERED, "%s: entry %zu does not match its index "
                              "entry", vol->name, i + 1);
            goto done;
        }
    }
    if (opt->reid_key != NULL) {
        rc = batchdir_read_path(opt->dir, vol->reid_name, path, sizeof path, err);
        if (rc == 0)
            rc = opened(opt->dir, vol->reid_name,
                        volume_reader_open(rr, path, opt->reid_key, vol->reid_sha256, err), err);
        if (rc == 0)
            rc = scan_volume(rr, vol->reid_name, false, &r, err);
        if (rc != 0)
            goto done;
        if (r.n != n_idx) {
            rc = mr_error_set(err, MR_E_TAMPERED, "%s: %zu entries for %zu messages",
                              vol->reid_name, r.n, n_idx);
            goto done;
        }
        for (size_t i = 0; i < n_idx; i++) {
            char want[48];
            index_member_name(want, sizeof want, idx[i].uidvalidity, idx[i].uid, ".reid");
            if (strcmp(r.v[i].name, want) != 0) {
                rc = mr_error_set(err, MR_E_TAMPERED, "%s: entry %zu is not for %s",
                                  vol->reid_name, i + 1, idx[i].file);
                goto done;
            }
        }
        rc = volume_rewind(rr, err);
    }
    if (rc == 0)
        rc = volume_rewind(cr, err);
    /* Pass 2: everything checked; one message at a time. */
    for (size_t i = 0; rc == 0 && i < n_idx; i++) {
        struct reader_message m = { .idx = &idx[i], .volume = vol->name };
        unsigned char *pseudo = NULL, *reid = NULL, *orig = NULL;
        size_t orig_len = 0;

        rc = next_entry(cr, vol->name, &c.v[i], &pseudo, err);
        if (rc == 0 && opt->reid_key != NULL)
            rc = next_entry(rr, vol->reid_name, &r.v[i], &reid, err);
        if (rc == 0 && (opt->want == NULL || opt->want(opt->ctx, &idx[i]))) {
            m.pseudo = pseudo;
            m.pseudo_len = c.v[i].len;
            if (opt->reid_key != NULL) {
                unsigned char md[32];
                rc = pseudo_restore_digest(pseudo, c.v[i].len, reid, r.v[i].len, &orig,
                                           &orig_len, md, err);
                if (rc != 0)
                    mr_error_prefix(err, "%s: %s", vol->name, idx[i].file);
                else if (orig_len != idx[i].size || !digest_matches(md, idx[i].sha256))
                    rc = mr_error_set(err, MR_E_TAMPERED,
                                      "%s: %s does not re-identify to its original SHA-256",
                                      vol->name, idx[i].file);
                m.orig = orig;
                m.orig_len = orig_len;
            }
            if (rc == 0)
                rc = opt->fn(opt->ctx, &m, err);
        }
        wipe_free(orig, orig_len);
        wipe_free(pseudo, c.v[i].len);
        wipe_free(reid, opt->reid_key != NULL ? r.v[i].len : 0);
    }
done:
    index_entries_free(idx, n_idx);
    if (c.index != NULL)
        OPENSSL_cleanse(c.index, c.index_len);
    scan_free(&c);
    scan_free(&r);
    volume_reader_close(cr);
    volume_reader_close(rr);
    return rc;
}

int reader_run(const struct reader_options *opt, mr_error *err)
{
    volume_reader *cr = volume_reader_new(), *rr = volume_reader_new();
    int rc = 0;

    if (cr == NULL || rr == NULL)
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory for a volume reader");
    for (size_t i = 0; rc == 0 && i < opt->manifest->n_volumes; i++) {
        if (opt->volumes != NULL && !opt->volumes[i])
            continue;
        rc = run_volume(opt, &opt->manifest->volumes[i], cr, rr, err);
        if (rc == 0 && opt->volumes_read != NULL)
            (*opt->volumes_read)++;
    }
    volume_reader_free(cr);
    volume_reader_free(rr);
    return rc;
}
