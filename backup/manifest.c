/* manifest.c — the manifest: the batch's table of contents and its only claim to exist.
 * Format 2 (written): `<body>,"ed25519_signature":"<hex>"}\n`, the Ed25519 signature by
 * the host's signing key over the exact bytes `<body>}`, whose "signer" field names the
 * key.  Format 1 (read only): the same shape with `,"hmac_sha256":"<hex>"` under the
 * legacy manifest key.  The bytes on disk are what is checked: no JSON canonicalisation. */
#include "backup/archive.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "backup/batchdir.h"
#include "backup/volume.h"
#include "common/durable.h"
#include "common/mrtime.h"

#define HMAC_TAG ",\"hmac_sha256\":\""
#define SIG_TAG ",\"ed25519_signature\":\""
#define MANIFEST_MAX (16 * 1024 * 1024)
#define MF batchdir_name(BATCHDIR_MANIFEST)

/* Times are UTC text; 0 (not set, e.g. hold_since) is the empty string. */
static void fmt_time(time_t t, char buf[24])
{
    if (t == 0)
        buf[0] = '\0';
    else
        mrtime_format_utc(t, buf, 24);
}

static int parse_time(const char *s, time_t *out)
{
    *out = 0;
    if (s == NULL || *s == '\0')
        return 0;
    return mrtime_parse_utc(s, out, NULL) == 0 ? 0 : -1;
}

static void hmac_hex(const unsigned char *key, const void *data, size_t len, char out[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;

    HMAC(EVP_sha256(), key, ARCHIVE_KEY_LEN, data, len, mac, &mac_len);
    volume_hex(mac, 32, out);
}

int archive_manifest_write(const char *dir, const struct archive_manifest *m,
                           EVP_PKEY *signing_key, mr_error *err)
{
    char t_ps[24], t_pe[24], t_c[24], t_e[24], t_v[24], t_h[24], sig_hex[2 * KEYS_SIG_LEN + 1];
    char signer[KEYS_ID_LEN + 1];
    unsigned char sig[KEYS_SIG_LEN];
    json_t *o, *vols;
    char *body = NULL, *file = NULL;
    size_t blen, flen;
    int rc;

    if (signing_key == NULL)
        return mr_error_set(err, MR_E_INVALID, "manifest: no signing key");
    if (strlen(m->content_cert_fpr) != 64 || strlen(m->reid_cert_fpr) != 64)
        return mr_error_set(err, MR_E_INVALID, "manifest: epoch certificate fingerprints "
                            "missing");
    rc = keys_key_id(signing_key, signer, err);
    if (rc != 0)
        return rc;
    fmt_time(m->period_start, t_ps);
    fmt_time(m->period_end, t_pe);
    fmt_time(m->created, t_c);
    fmt_time(m->expires, t_e);
    fmt_time(m->verified, t_v);
    fmt_time(m->hold_since, t_h);
    vols = json_array();
    for (size_t i = 0; vols != NULL && i < m->n_volumes; i++) {
        const struct archive_volume *v = &m->volumes[i];
        json_array_append_new(
            vols, json_pack("{s:s, s:I, s:s, s:I, s:s, s:I, s:s}", "name", v->name, "size",
                            (json_int_t)v->size, "sha256", v->sha256, "messages",
                            (json_int_t)v->messages, "reid", v->reid_name, "reid_size",
                            (json_int_t)v->reid_size, "reid_sha256", v->reid_sha256));
    }
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s},"
                  " s:{s:s, s:s}, s:I, s:I, s:b, s:s, s:o, s:I}",
                  "format", ARCHIVE_FORMAT, "batch_id", m->batch_id, "mailbox", m->mailbox,
                  "period_start", t_ps, "period_end", t_pe, "created", t_c, "expires", t_e,
                  "verified", t_v, "epoch_keys", "content", m->content_key_id, "reid",
                  m->reid_key_id, "epoch_certs", "content", m->content_cert_fpr, "reid",
                  m->reid_cert_fpr, "holders", "content", m->content_holder, "reid",
                  m->reid_holder, "message_count", (json_int_t)m->message_count,
                  "bytes_original", (json_int_t)m->bytes_original, "hold", (int)m->hold,
                  "hold_since", t_h, "volumes", vols, "pseudonym_epoch",
                  (json_int_t)m->pseudonym_epoch);
    if (o == NULL)
        return mr_error_set(err, MR_E_NOMEM, "manifest: cannot build JSON");
    if ((m->locator_name[0] != '\0'
         && json_object_set_new(o, "locator",
                                json_pack("{s:s, s:I, s:s}", "name", m->locator_name, "size",
                                          (json_int_t)m->locator_size, "sha256",
                                          m->locator_sha256)) != 0)
        || (m->has_ledger
         && json_object_set_new(o, "erasure_ledger",
                                json_pack("{s:I, s:s}", "count", (json_int_t)m->ledger_count,
                                          "head", m->ledger_head)) != 0)
        || (m->has_audit
            && json_object_set_new(o, "audit", json_pack("{s:I, s:s}", "seq",
                                                         (json_int_t)m->audit_seq, "head",
                                                         m->audit_head)) != 0)
        /* the signer stays the last field, right before the signature */
        || json_object_set_new(o, "signer", json_string(signer)) != 0) {
        json_decref(o);
        return mr_error_set(err, MR_E_NOMEM, "manifest: cannot build JSON");
    }
    body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (body == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    blen = strlen(body);        /* ends with '}' */
    rc = keys_sign(signing_key, body, blen, sig, err);
    if (rc != 0) {
        free(body);
        return mr_error_prefix(err, "manifest");
    }
    volume_hex(sig, KEYS_SIG_LEN, sig_hex);
    flen = blen - 1 + strlen(SIG_TAG) + 2 * KEYS_SIG_LEN + 3;
    file = malloc(flen + 1);
    if (file == NULL) {
        free(body);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    memcpy(file, body, blen - 1);
    snprintf(file + blen - 1, flen + 2 - blen, "%s%s\"}\n", SIG_TAG, sig_hex);
    /* A hold re-writes an existing manifest: the rename replaces it atomically. */
    rc = batchdir_write(dir, batchdir_name(BATCHDIR_MANIFEST), file, strlen(file), err);
    free(body);
    free(file);
    return rc;
}

static void copy_str(json_t *o, const char *k, char *dst, size_t size)
{
    const char *s = json_string_value(json_object_get(o, k));

    snprintf(dst, size, "%s", s != NULL ? s : "");
}

/* {"<count_key>":N,"head":"<64 hex>"} or absent. */
static int parse_anchor(json_t *a, const char *count_key, bool *has,
                        unsigned long long *count, char head[65])
{
    json_t *c, *h;

    *has = false;
    if (a == NULL)
        return 0;
    c = json_object_get(a, count_key);
    h = json_object_get(a, "head");
    if (!json_is_integer(c) || json_integer_value(c) < 0 || !json_is_string(h)
        || strlen(json_string_value(h)) != 64
        || strspn(json_string_value(h), "0123456789abcdef") != 64)
        return -1;
    *count = (unsigned long long)json_integer_value(c);
    memcpy(head, json_string_value(h), 65);
    *has = true;
    return 0;
}

static int parse_body(json_t *o, struct archive_manifest *m, mr_error *err)
{
    json_t *vols = json_object_get(o, "volumes");
    json_t *keys = json_object_get(o, "epoch_keys"), *holders = json_object_get(o, "holders");
    int bad = 0;

    json_t *certs = json_object_get(o, "epoch_certs");
    bool v2;

    copy_str(o, "format", m->format, sizeof m->format);
    v2 = strcmp(m->format, ARCHIVE_FORMAT) == 0;
    if (!v2 && strcmp(m->format, ARCHIVE_FORMAT_V1) != 0)
        return mr_error_set(err, MR_E_UNSUPPORTED, "manifest format '%s' is not %s",
                            m->format, ARCHIVE_FORMAT);
    if (v2) {
        copy_str(certs, "content", m->content_cert_fpr, sizeof m->content_cert_fpr);
        copy_str(certs, "reid", m->reid_cert_fpr, sizeof m->reid_cert_fpr);
        copy_str(o, "signer", m->signer, sizeof m->signer);
        if (strlen(m->content_cert_fpr) != 64 || strlen(m->reid_cert_fpr) != 64
            || strlen(m->signer) != KEYS_ID_LEN)
            return mr_error_set(err, MR_E_PARSE, "manifest: signer or epoch certificate "
                                "fingerprints missing");
    }
    copy_str(o, "batch_id", m->batch_id, sizeof m->batch_id);
    copy_str(o, "mailbox", m->mailbox, sizeof m->mailbox);
    bad |= parse_time(json_string_value(json_object_get(o, "period_start")), &m->period_start);
    bad |= parse_time(json_string_value(json_object_get(o, "period_end")), &m->period_end);
    bad |= parse_time(json_string_value(json_object_get(o, "created")), &m->created);
    bad |= parse_time(json_string_value(json_object_get(o, "expires")), &m->expires);
    bad |= parse_time(json_string_value(json_object_get(o, "verified")), &m->verified);
    bad |= parse_time(json_string_value(json_object_get(o, "hold_since")), &m->hold_since);
    copy_str(keys, "content", m->content_key_id, sizeof m->content_key_id);
    copy_str(keys, "reid", m->reid_key_id, sizeof m->reid_key_id);
    copy_str(holders, "content", m->content_holder, sizeof m->content_holder);
    copy_str(holders, "reid", m->reid_holder, sizeof m->reid_holder);
    m->message_count = (size_t)json_integer_value(json_object_get(o, "message_count"));
    m->bytes_original = (unsigned long long)json_integer_value(
        json_object_get(o, "bytes_original"));
    m->hold = json_is_true(json_object_get(o, "hold"));
    if (json_object_get(o, "locator") != NULL) {
        json_t *l = json_object_get(o, "locator");
        copy_str(l, "name", m->locator_name, sizeof m->locator_name);
        copy_str(l, "sha256", m->locator_sha256, sizeof m->locator_sha256);
        m->locator_size = (unsigned long long)json_integer_value(json_object_get(l, "size"));
        /* Used as a path, like the volume names. */
        if (strcmp(m->locator_name, batchdir_name(BATCHDIR_LOCATOR)) != 0
            || strlen(m->locator_sha256) != 64)
            return mr_error_set(err, MR_E_PARSE, "manifest: the locator entry is malformed");
    }
    /* Batches from before pseudonym-key epochs name none: they used epoch 0. */
    {
        json_t *pe = json_object_get(o, "pseudonym_epoch");
        if (pe != NULL && (!json_is_integer(pe) || json_integer_value(pe) < 0
                           || json_integer_value(pe) > KEYS_PSEUDONYM_EPOCH_MAX))
            bad = 1;
        m->pseudonym_epoch = pe != NULL && !bad ? (unsigned)json_integer_value(pe) : 0;
    }
    if (parse_anchor(json_object_get(o, "erasure_ledger"), "count", &m->has_ledger,
                     &m->ledger_count, m->ledger_head) != 0
        || parse_anchor(json_object_get(o, "audit"), "seq", &m->has_audit, &m->audit_seq,
                        m->audit_head) != 0)
        return mr_error_set(err, MR_E_PARSE, "manifest: malformed ledger or audit anchor");
    if (bad || m->batch_id[0] == '\0' || m->expires == 0 || !json_is_array(vols))
        return mr_error_set(err, MR_E_PARSE, "manifest: missing or malformed fields");
    m->n_volumes = json_array_size(vols);
    m->volumes = calloc(m->n_volumes ? m->n_volumes : 1, sizeof *m->volumes);
    if (m->volumes == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n_volumes; i++) {
        json_t *v = json_array_get(vols, i);
        struct archive_volume *av = &m->volumes[i];
        copy_str(v, "name", av->name, sizeof av->name);
        copy_str(v, "sha256", av->sha256, sizeof av->sha256);
        copy_str(v, "reid", av->reid_name, sizeof av->reid_name);
        copy_str(v, "reid_sha256", av->reid_sha256, sizeof av->reid_sha256);
        av->size = (unsigned long long)json_integer_value(json_object_get(v, "size"));
        av->reid_size = (unsigned long long)json_integer_value(json_object_get(v, "reid_size"));
        av->messages = (size_t)json_integer_value(json_object_get(v, "messages"));
        /* Names are used as paths: accept only our own shape. */
        if (!batchdir_is_volume_name(av->name) || !batchdir_is_reid_name(av->reid_name)
            || strlen(av->sha256) != 64 || strlen(av->reid_sha256) != 64)
            return mr_error_set(err, MR_E_PARSE, "manifest: volume %zu is malformed", i + 1);
    }
    return 0;
}

const char *archive_auth_name(enum archive_auth auth)
{
    switch (auth) {
    case ARCHIVE_AUTH_SIGNED: return "signed";
    case ARCHIVE_AUTH_LEGACY_HMAC: return "legacy-hmac";
    case ARCHIVE_AUTH_OVERRIDDEN: return "UNVERIFIED (override)";
    default: return "unchecked";
    }
}

/* The trailing authentication field, if the text ends with exactly `<tag><hex>"}\n`. */
static char *find_tail(char *text, const char *tag, size_t hex_len)
{
    char *last = NULL;

    for (char *p = strstr(text, tag); p != NULL; p = strstr(p + 1, tag))
        last = p;
    if (last == NULL || strlen(last) != strlen(tag) + hex_len + 3
        || strcmp(last + strlen(tag) + hex_len, "\"}\n") != 0)
        return NULL;
    return last;
}

/* Checks the text's signature or HMAC (m->format and m->signer already parsed). */
static int authenticate(char *text, const struct archive_trust *trust,
                        struct archive_manifest *m, mr_error *err)
{
    bool v2 = strcmp(m->format, ARCHIVE_FORMAT) == 0;
    char *tag = v2 ? find_tail(text, SIG_TAG, 2 * KEYS_SIG_LEN) : find_tail(text, HMAC_TAG, 64);
    char saved;
    int rc;

    if (tag == NULL)
        return mr_error_set(err, MR_E_TAMPERED, v2 ? "unsigned (no signature field)"
                                                    : "no HMAC field");
    saved = tag[0];
    tag[0] = '}';       /* the authenticated bytes: the body with its closing brace */
    if (v2) {
        unsigned char sig[KEYS_SIG_LEN];
        if (volume_unhex(tag + strlen(SIG_TAG), sig, KEYS_SIG_LEN) != 0)
            rc = mr_error_set(err, MR_E_TAMPERED, "malformed signature");
        else if (keys_keyring_size(trust->keyring) == 0)
            rc = mr_error_set(err, MR_E_TAMPERED, "no pinned host key to check the signature "
                              "against (--host-key)");
        else
            rc = keys_keyring_verify(trust->keyring, m->signer, text,
                                     (size_t)(tag - text) + 1, sig, err);
        if (rc == 0)
            m->auth = ARCHIVE_AUTH_SIGNED;
    } else if (trust->legacy_key == NULL) {
        rc = mr_error_set(err, MR_E_TAMPERED, "legacy format 1 (HMAC) and no manifest key to "
                          "check it");
    } else {
        char mac[65];
        hmac_hex(trust->legacy_key, text, (size_t)(tag - text) + 1, mac);
        rc = CRYPTO_memcmp(mac, tag + strlen(HMAC_TAG), 64) == 0
                 ? 0
                 : mr_error_set(err, MR_E_TAMPERED, "HMAC does not match (altered, or another "
                                "manifest key)");
        if (rc == 0)
            m->auth = ARCHIVE_AUTH_LEGACY_HMAC;
    }
    tag[0] = saved;
    return rc;
}

static int manifest_load(const char *dir, const struct archive_trust *trust,
                         struct archive_manifest *m, mr_error *err)
{
    unsigned char *raw = NULL;
    char *text = NULL;
    size_t len = 0;
    json_t *o;
    json_error_t jerr;
    int rc;

    memset(m, 0, sizeof *m);
    rc = batchdir_read(dir, MF, MANIFEST_MAX, &raw, &len, err);
    if (rc == MR_E_NOTFOUND)
        return mr_error_set(err, MR_E_NOTFOUND, "%s: no manifest (not a complete batch)", dir);
    if (rc != 0)
        return rc;
    text = (char *)raw;
    if (strlen(text) != len) {
        free(text);
        return mr_error_set(err, MR_E_TAMPERED, "%s in %s holds a NUL byte", MF, dir);
    }
    o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        free(text);
        return mr_error_set(err, MR_E_PARSE, "%s in %s is not JSON (line %d)", MF, dir,
                            jerr.line);
    }
    rc = parse_body(o, m, err);
    json_decref(o);
    if (rc != 0) {
        free(text);
        archive_manifest_clear(m);
        return mr_error_prefix(err, "%s in %s", MF, dir);
    }
    if (trust != NULL) {
        mr_error aerr;
        mr_error_clear(&aerr);
        rc = authenticate(text, trust, m, &aerr);
        if (rc != 0 && trust->accept_unverified) {
            snprintf(m->auth_problem, sizeof m->auth_problem, "%s", aerr.msg);
            m->auth = ARCHIVE_AUTH_OVERRIDDEN;
            rc = 0;
        } else if (rc != 0) {
            if (err != NULL)
                *err = aerr;
            mr_error_prefix(err, "%s in %s", MF, dir);
            archive_manifest_clear(m);
        }
    }
    free(text);
    return rc;
}

int archive_manifest_read(const char *dir, const struct archive_trust *trust,
                          struct archive_manifest *m, mr_error *err)
{
    static const struct archive_trust none = { 0 };

    return manifest_load(dir, trust != NULL ? trust : &none, m, err);
}

int archive_manifest_read_unverified(const char *dir, struct archive_manifest *m,
                                     mr_error *err)
{
    return manifest_load(dir, NULL, m, err);
}

void archive_manifest_clear(struct archive_manifest *m)
{
    free(m->volumes);
    memset(m, 0, sizeof *m);
}

int archive_batch_set_hold(const char *dir, bool hold, const struct archive_trust *trust,
                           EVP_PKEY *signing_key, const char *vault_dir, audit_log *audit,
                           mr_error *err)
{
    struct archive_manifest m;
    struct archive_trust strict = { 0 };
    int rc;

    /* A hold re-signs the manifest: never on the strength of the override. */
    if (trust != NULL) {
        strict = *trust;
        strict.accept_unverified = false;
    }
    rc = archive_manifest_read(dir, &strict, &m, err);
    if (rc != 0)
        return rc;
    if (m.auth == ARCHIVE_AUTH_LEGACY_HMAC) {
        rc = keys_epoch_cert_fingerprint(vault_dir, m.content_key_id, m.content_cert_fpr, err);
        if (rc == 0)
            rc = keys_epoch_cert_fingerprint(vault_dir, m.reid_key_id, m.reid_cert_fpr, err);
        if (rc != 0)
            mr_error_prefix(err, "re-signing legacy manifest in %s", dir);
    }
    if (rc == 0 && (m.hold != hold || m.auth == ARCHIVE_AUTH_LEGACY_HMAC)) {
        if (m.hold != hold) {
            m.hold = hold;
            m.hold_since = hold ? time(NULL) : 0;
        }
        rc = archive_manifest_write(dir, &m, signing_key, err);
    }
    if (rc == 0 && audit != NULL) {
        const struct audit_field f[] = {
            { "batch", m.batch_id },
            { "hold", hold ? "on" : "off" },
        };
        rc = audit_append(audit, "batch.hold", f, 2, err);
    }
    archive_manifest_clear(&m);
    return rc;
}
