/* verify.c — see verify.h. */
#include "backup/verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/archive.h"
#include "backup/batchdir.h"
#include "backup/locator.h"
#include "backup/reader.h"
#include "backup/volume.h"
#include "keys/keys.h"

static int check_file(const char *dir, const char *name, unsigned long long size,
                      const char *sha, mr_error *err)
{
    char path[BATCHDIR_PATH_MAX], hex[VOLUME_SHA256_HEX];
    unsigned long long got = 0;
    int rc;

    /* Reading from the object store, the stored object is what is checked, not a copy
     * the cache may hold from an earlier run. */
    rc = batchdir_store_verify(dir, name, size, sha, err);
    if (rc <= 0)
        return rc;
    rc = batchdir_path(dir, name, path, sizeof path, err);
    if (rc != 0)
        return rc;
    rc = volume_file_hash(path, &got, hex, err);
    if (rc == MR_E_NOTFOUND)
        return mr_error_set(err, MR_E_NOTFOUND, "%s is missing", name);
    if (rc != 0)
        return rc;
    if (got != size)
        return mr_error_set(err, MR_E_TAMPERED, "%s: size %llu, manifest says %llu", name, got,
                            size);
    if (strcmp(hex, sha) != 0)
        return mr_error_set(err, MR_E_TAMPERED, "%s: SHA-256 differs from the manifest", name);
    return 0;
}

/* A content file the manifest does not list is someone's addition (or a leftover). */
static int check_stray(void *ctx, const char *name, mr_error *err)
{
    const struct archive_manifest *m = ctx;

    if (!batchdir_is_content(name))
        return 0;
    for (size_t i = 0; i < m->n_volumes; i++)
        if (strcmp(name, m->volumes[i].name) == 0 || strcmp(name, m->volumes[i].reid_name) == 0)
            return 0;
    return mr_error_set(err, MR_E_TAMPERED, "%s is not listed in the manifest", name);
}

static int check_strays(const char *dir, const struct archive_manifest *m, mr_error *err)
{
    int rc = batchdir_list(dir, check_stray, (void *)m, err);

    return rc == MR_E_NOTFOUND ? mr_error_set(err, MR_E_IO, "cannot read %s", dir) : rc;
}

/* The vault's certificate must be the one the signed manifest names. */
static int check_cert(const char *vault, const char *id, const char *fpr, mr_error *err)
{
    char got[KEYS_FPR_LEN + 1];
    int rc = keys_epoch_cert_fingerprint(vault, id, got, err);

    if (rc != 0)
        return rc;
    if (strcmp(got, fpr) != 0)
        return mr_error_set(err, MR_E_TAMPERED, "%s.crt.pem in the vault is not the epoch "
                            "certificate the manifest names", id);
    return 0;
}

struct deep_ctx {
    size_t messages;
    const locator *loc;             /* NULL: the batch has none */
};

static bool same_tokens(const struct locator_entry *e, const struct index_entry *idx)
{
    if (e->n_tokens != idx->n_tokens)
        return false;
    for (size_t i = 0; i < e->n_tokens; i++)
        if (strcmp(e->tokens[i], idx->tokens[i]) != 0)
            return false;
    return true;
}

/* Counts the messages and, when the batch has a locator, checks that its entry for
 * this message says what the volume's index says. */
static int count_msg(void *ctx, const struct reader_message *m, mr_error *err)
{
    struct deep_ctx *dc = ctx;
    size_t i = dc->messages++;

    if (dc->loc == NULL)
        return 0;
    if (i >= locator_count(dc->loc))
        return mr_error_set(err, MR_E_TAMPERED, "the locator lists fewer messages than the "
                            "volumes hold");
    const struct locator_entry *e = locator_at(dc->loc, i);
    if (e->internaldate != m->idx->internaldate || !same_tokens(e, m->idx))
        return mr_error_set(err, MR_E_TAMPERED, "the locator disagrees with %s about %s",
                            m->volume, m->idx->file);
    return 0;
}

int verify_batch(const struct verify_options *opt, struct verify_report *rep, mr_error *err)
{
    struct archive_manifest m;
    EVP_PKEY *ck = NULL, *rk = NULL;
    int rc;

    memset(rep, 0, sizeof *rep);
    if (opt->trust == NULL)
        return mr_error_set(err, MR_E_INVALID, "verify: no trust settings");
    rc = archive_manifest_read(opt->dir, opt->trust, &m, err);
    if (rc != 0)
        return rc;
    snprintf(rep->batch_id, sizeof rep->batch_id, "%s", m.batch_id);
    rep->auth = m.auth;
    snprintf(rep->signer, sizeof rep->signer, "%s", m.signer);
    snprintf(rep->auth_problem, sizeof rep->auth_problem, "%s", m.auth_problem);
    for (size_t i = 0; rc == 0 && i < m.n_volumes; i++) {
        const struct archive_volume *v = &m.volumes[i];
        rc = check_file(opt->dir, v->name, v->size, v->sha256, err);
        if (rc == 0)
            rc = check_file(opt->dir, v->reid_name, v->reid_size, v->reid_sha256, err);
        if (rc == 0)
            rep->volumes++;
    }
    if (rc == 0 && m.locator_name[0] != '\0')
        rc = check_file(opt->dir, m.locator_name, m.locator_size, m.locator_sha256, err);
    if (rc == 0)
        rc = check_strays(opt->dir, &m, err);
    if (rc == 0 && opt->vault_dir != NULL) {
        if (!keys_epoch_present(opt->vault_dir, m.content_key_id))
            rc = mr_error_set(err, MR_E_NOTFOUND, "content epoch key %s is missing from the "
                              "vault", m.content_key_id);
        else if (!keys_epoch_present(opt->vault_dir, m.reid_key_id))
            rc = mr_error_set(err, MR_E_NOTFOUND, "reid epoch key %s is missing from the vault",
                              m.reid_key_id);
        if (rc == 0 && m.content_cert_fpr[0] != '\0')
            rc = check_cert(opt->vault_dir, m.content_key_id, m.content_cert_fpr, err);
        if (rc == 0 && m.reid_cert_fpr[0] != '\0')
            rc = check_cert(opt->vault_dir, m.reid_key_id, m.reid_cert_fpr, err);
    }
    if (rc == 0 && opt->deep) {
        struct deep_ctx dc = { 0 };
        locator *loc = NULL;
        mr_error lerr;
        int lrc = 0;
        if (opt->it_key == NULL)
            rc = mr_error_set(err, MR_E_AUTH, "--deep needs IT's private key");
        if (rc == 0)
            rc = keys_epoch_unseal(opt->vault_dir, m.content_key_id, opt->it_key, opt->audit,
                                   &ck, err);
        if (rc == 0)
            rc = keys_epoch_unseal(opt->vault_dir, m.reid_key_id,
                                   opt->reid_key != NULL ? opt->reid_key : opt->it_key,
                                   opt->audit, &rk, err);
        /* The volumes are the evidence: their problems are reported first, the
         * locator's after them. */
        if (rc == 0) {
            mr_error_clear(&lerr);
            lrc = locator_open(opt->dir, &m, rk, &loc, &lerr);
            if (lrc == MR_E_NOTFOUND)
                lrc = 0;        /* written before locators existed */
            dc.loc = loc;
        }
        if (rc == 0) {
            struct reader_options ro = { .dir = opt->dir, .manifest = &m, .content_key = ck,
                                         .reid_key = rk, .fn = count_msg, .ctx = &dc };
            rc = reader_run(&ro, err);
        }
        if (rc == 0 && dc.messages != m.message_count)
            rc = mr_error_set(err, MR_E_TAMPERED, "%zu messages decrypted, manifest says %zu",
                              dc.messages, m.message_count);
        if (rc == 0 && lrc != 0) {
            rc = lrc;
            if (err != NULL)
                *err = lerr;
        }
        if (rc == 0 && loc != NULL && locator_count(loc) != dc.messages)
            rc = mr_error_set(err, MR_E_TAMPERED, "the locator lists %zu messages, the volumes "
                              "hold %zu", locator_count(loc), dc.messages);
        locator_free(loc);
        rep->messages = dc.messages;
    }
    if (opt->audit != NULL) {
        const struct audit_field f[] = {
            { "batch", m.batch_id },
            { "depth", opt->deep ? "deep" : "host" },
            { "status", rc == 0 ? "ok" : mr_status_name(rc) },
            { "auth", archive_auth_name(m.auth) },
            { "signer", m.signer },
        };
        mr_error aerr;
        int arc = audit_append(opt->audit, "batch.verify", f, 5, rc == 0 ? err : &aerr);
        if (rc == 0)
            rc = arc;
    }
    EVP_PKEY_free(ck);
    EVP_PKEY_free(rk);
    archive_manifest_clear(&m);
    return rc;
}
