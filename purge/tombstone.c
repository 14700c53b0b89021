/* tombstone.c — the tombstone file (see tombstone.h).  The signature (format 1: the HMAC)
 * covers the compact, key-sorted JSON of every other field, which jansson reproduces byte
 * for byte on reading. */
#include "purge/tombstone.h"
#include "backup/batchdir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "common/durable.h"
#include "common/mrtime.h"
#include "backup/volume.h"
#include "keys/keys.h"

void purge_tombstone_from_manifest(const struct archive_manifest *m, time_t when,
                                   struct purge_tombstone *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->batch_id, sizeof t->batch_id, "%s", m->batch_id);
    snprintf(t->mailbox, sizeof t->mailbox, "%s", m->mailbox);
    t->period_start = m->period_start;
    t->period_end = m->period_end;
    t->created = m->created;
    t->expires = m->expires;
    t->expired = when;
    t->message_count = m->message_count;
    snprintf(t->content_key_id, sizeof t->content_key_id, "%s", m->content_key_id);
    snprintf(t->reid_key_id, sizeof t->reid_key_id, "%s", m->reid_key_id);
}

static void fmt(time_t t, char buf[24])
{
    if (t == 0)
        buf[0] = '\0';
    else
        mrtime_format_utc(t, buf, 24);
}

static int parse(const char *s, time_t *out)
{
    *out = 0;
    if (s == NULL || *s == '\0')
        return 0;
    return mrtime_parse_utc(s, out, NULL) == 0 ? 0 : -1;
}

static const char *str_or_empty(json_t *v)
{
    const char *s = json_string_value(v);

    return s != NULL ? s : "";
}

static void mac_hex(const unsigned char *key, const char *data, char out[65])
{
    static const char hexd[] = "0123456789abcdef";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    HMAC(EVP_sha256(), key, ARCHIVE_KEY_LEN, (const unsigned char *)data, strlen(data), mac, &len);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hexd[mac[i] >> 4];
        out[2 * i + 1] = hexd[mac[i] & 15];
    }
    out[64] = '\0';
}

static json_t *body(const struct purge_tombstone *t)
{
    char ps[24], pe[24], c[24], e[24], x[24];

    fmt(t->period_start, ps);
    fmt(t->period_end, pe);
    fmt(t->created, c);
    fmt(t->expires, e);
    fmt(t->expired, x);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:{s:s, s:s}, s:s, s:b}",
                     "format", PURGE_TOMBSTONE_FORMAT, "batch_id", t->batch_id, "mailbox",
                     t->mailbox, "period_start", ps, "period_end", pe, "created", c, "expires",
                     e, "expired", x, "message_count", (json_int_t)t->message_count,
                     "shredded_epoch_keys", "content", t->content_key_id, "reid",
                     t->reid_key_id, "status", "expired", "manifest_verified",
                     (int)!t->manifest_unverified);
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    static const char hexd[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[b[i] >> 4];
        out[2 * i + 1] = hexd[b[i] & 15];
    }
    out[2 * n] = '\0';
}

int purge_tombstone_write(const char *dir, const struct purge_tombstone *t,
                          EVP_PKEY *signing_key, mr_error *err)
{
    json_t *o = body(t);
    char *text = NULL, sig_hex[2 * KEYS_SIG_LEN + 1], signer[KEYS_ID_LEN + 1];
    unsigned char sig[KEYS_SIG_LEN];
    int rc;

    if (o == NULL)
        return mr_error_set(err, MR_E_NOMEM, "tombstone: cannot build JSON");
    if (signing_key == NULL) {
        json_decref(o);
        return mr_error_set(err, MR_E_INVALID, "tombstone: no signing key");
    }
    rc = keys_key_id(signing_key, signer, err);
    if (rc == 0)
        json_object_set_new(o, "signer", json_string(signer));
    text = rc == 0 ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (rc == 0 && text == NULL)
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (rc == 0)
        rc = keys_sign(signing_key, text, strlen(text), sig, err);
    free(text);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    hex(sig, KEYS_SIG_LEN, sig_hex);
    json_object_set_new(o, "ed25519_signature", json_string(sig_hex));
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (text == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    {
        size_t len = strlen(text);
        char *line = malloc(len + 2);
        if (line == NULL) {
            free(text);
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        }
        memcpy(line, text, len);
        line[len] = '\n';
        rc = batchdir_write(dir, batchdir_name(BATCHDIR_TOMBSTONE), line, len + 1, err);
        free(line);
    }
    free(text);
    return rc;
}

/* Removes the authentication field from o and checks it over the rest. */
static int tomb_authenticate(json_t *o, const struct archive_trust *trust, const char *path,
                             mr_error *err)
{
    const char *format = json_string_value(json_object_get(o, "format"));
    bool v2 = format != NULL && strcmp(format, PURGE_TOMBSTONE_FORMAT) == 0;
    json_t *given = json_incref(json_object_get(o, v2 ? "ed25519_signature" : "hmac_sha256"));
    const char *g = json_string_value(given);
    char *text;
    int rc = 0;

    if (!v2 && (format == NULL || strcmp(format, PURGE_TOMBSTONE_FORMAT_V1) != 0)) {
        json_decref(given);
        return mr_error_set(err, MR_E_UNSUPPORTED, "%s: unknown format", path);
    }
    json_object_del(o, v2 ? "ed25519_signature" : "hmac_sha256");
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL) {
        json_decref(given);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    if (v2) {
        unsigned char sig[KEYS_SIG_LEN];
        const char *signer = json_string_value(json_object_get(o, "signer"));
        if (signer == NULL || g == NULL || strlen(g) != 2 * KEYS_SIG_LEN ||
            volume_unhex(g, sig, KEYS_SIG_LEN) != 0)
            rc = mr_error_set(err, MR_E_TAMPERED, "%s: unsigned", path);
        else if (keys_keyring_verify(trust->keyring, signer, text, strlen(text), sig, err) != 0)
            rc = mr_error_prefix(err, "%s", path);
    } else if (trust->legacy_key == NULL) {
        rc = mr_error_set(err, MR_E_TAMPERED, "%s: legacy HMAC and no manifest key", path);
    } else {
        char mac[65];
        mac_hex(trust->legacy_key, text, mac);
        if (g == NULL || strlen(g) != 64 || CRYPTO_memcmp(g, mac, 64) != 0)
            rc = mr_error_set(err, MR_E_TAMPERED, "%s: HMAC does not match", path);
    }
    free(text);
    json_decref(given);
    return rc;
}

int purge_tombstone_read(const char *dir, const struct archive_trust *trust,
                         struct purge_tombstone *t, mr_error *err)
{
    static const struct archive_trust none = { 0 };
    char path[BATCHDIR_PATH_MAX];
    json_error_t jerr;
    json_t *o, *keys, *mv;
    int bad = 0, rc;

    memset(t, 0, sizeof *t);
    rc = batchdir_path(dir, batchdir_name(BATCHDIR_TOMBSTONE), path, sizeof path, err);
    if (rc != 0)
        return rc;
    o = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        FILE *f = fopen(path, "r");
        if (f == NULL)
            return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                                  "cannot read %s", path);
        fclose(f);
        return mr_error_set(err, MR_E_PARSE, "%s is not JSON (line %d)", path, jerr.line);
    }
    rc = tomb_authenticate(o, trust != NULL ? trust : &none, path, err);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    mv = json_object_get(o, "manifest_verified");
    t->manifest_unverified = json_is_false(mv);
    keys = json_object_get(o, "shredded_epoch_keys");
    snprintf(t->batch_id, sizeof t->batch_id, "%s",
             str_or_empty(json_object_get(o, "batch_id")));
    snprintf(t->mailbox, sizeof t->mailbox, "%s",
             str_or_empty(json_object_get(o, "mailbox")));
    snprintf(t->content_key_id, sizeof t->content_key_id, "%s",
             str_or_empty(json_object_get(keys, "content")));
    snprintf(t->reid_key_id, sizeof t->reid_key_id, "%s",
             str_or_empty(json_object_get(keys, "reid")));
    bad |= parse(json_string_value(json_object_get(o, "period_start")), &t->period_start);
    bad |= parse(json_string_value(json_object_get(o, "period_end")), &t->period_end);
    bad |= parse(json_string_value(json_object_get(o, "created")), &t->created);
    bad |= parse(json_string_value(json_object_get(o, "expires")), &t->expires);
    bad |= parse(json_string_value(json_object_get(o, "expired")), &t->expired);
    t->message_count = (size_t)json_integer_value(json_object_get(o, "message_count"));
    json_decref(o);
    if (bad || t->batch_id[0] == '\0')
        return mr_error_set(err, MR_E_PARSE, "%s: missing or malformed fields", path);
    return 0;
}
