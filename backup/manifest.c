/* manifest.c — manifest.json: the batch's table of contents and its only claim to exist.
 * Authentication: the file is `<body>,"hmac_sha256":"<hex>"}\n` where the HMAC covers the
 * exact bytes `<body>}` — the bytes on disk, so no JSON canonicalisation is involved. */
#include "backup/archive.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "backup/volume.h"
#include "common/durable.h"
#include "common/mrtime.h"

#define HMAC_TAG ",\"hmac_sha256\":\""
#define MANIFEST_MAX (16 * 1024 * 1024)

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
                           const unsigned char *key, mr_error *err)
{
    char t_ps[24], t_pe[24], t_c[24], t_e[24], t_v[24], t_h[24], mac[65], path[4200];
    json_t *o, *vols = json_array();
    char *body = NULL, *file = NULL;
    size_t blen;
    int rc;

    fmt_time(m->period_start, t_ps);
    fmt_time(m->period_end, t_pe);
    fmt_time(m->created, t_c);
    fmt_time(m->expires, t_e);
    fmt_time(m->verified, t_v);
    fmt_time(m->hold_since, t_h);
    for (size_t i = 0; vols != NULL && i < m->n_volumes; i++) {
        const struct archive_volume *v = &m->volumes[i];
        json_array_append_new(
            vols, json_pack("{s:s, s:I, s:s, s:I, s:s, s:I, s:s}", "name", v->name, "size",
                            (json_int_t)v->size, "sha256", v->sha256, "messages",
                            (json_int_t)v->messages, "reid", v->reid_name, "reid_size",
                            (json_int_t)v->reid_size, "reid_sha256", v->reid_sha256));
    }
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:I,"
                  " s:I, s:b, s:s, s:o}",
                  "format", ARCHIVE_FORMAT, "batch_id", m->batch_id, "mailbox", m->mailbox,
                  "period_start", t_ps, "period_end", t_pe, "created", t_c, "expires", t_e,
                  "verified", t_v, "epoch_keys", "content", m->content_key_id, "reid",
                  m->reid_key_id, "holders", "content", m->content_holder, "reid",
                  m->reid_holder, "message_count", (json_int_t)m->message_count,
                  "bytes_original", (json_int_t)m->bytes_original, "hold", (int)m->hold,
                  "hold_since", t_h, "volumes", vols);
    if (o == NULL)
        return mr_error_set(err, MR_E_NOMEM, "manifest: cannot build JSON");
    body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (body == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    blen = strlen(body);        /* ends with '}' */
    hmac_hex(key, body, blen, mac);
    file = malloc(blen + sizeof HMAC_TAG + 64 + 4);
    if (file == NULL) {
        free(body);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    memcpy(file, body, blen - 1);
    snprintf(file + blen - 1, sizeof HMAC_TAG + 64 + 4, "%s%s\"}\n", HMAC_TAG, mac);
    snprintf(path, sizeof path, "%s/%s", dir, ARCHIVE_MANIFEST);
    rc = durable_write_file(path, file, strlen(file), 0640, err);
    free(body);
    free(file);
    return rc;
}

static void copy_str(json_t *o, const char *k, char *dst, size_t size)
{
    const char *s = json_string_value(json_object_get(o, k));

    snprintf(dst, size, "%s", s != NULL ? s : "");
}

static int parse_body(json_t *o, struct archive_manifest *m, mr_error *err)
{
    json_t *vols = json_object_get(o, "volumes");
    json_t *keys = json_object_get(o, "epoch_keys"), *holders = json_object_get(o, "holders");
    int bad = 0;

    copy_str(o, "format", m->format, sizeof m->format);
    if (strcmp(m->format, ARCHIVE_FORMAT) != 0)
        return mr_error_set(err, MR_E_UNSUPPORTED, "manifest format '%s' is not %s",
                            m->format, ARCHIVE_FORMAT);
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
        if (strncmp(av->name, "vol-", 4) != 0 || strchr(av->name, '/') != NULL
            || strncmp(av->reid_name, "reid-", 5) != 0 || strchr(av->reid_name, '/') != NULL
            || strlen(av->sha256) != 64 || strlen(av->reid_sha256) != 64)
            return mr_error_set(err, MR_E_PARSE, "manifest: volume %zu is malformed", i + 1);
    }
    return 0;
}

int archive_manifest_read(const char *dir, const unsigned char *key,
                          struct archive_manifest *m, mr_error *err)
{
    char path[4200], mac[65];
    FILE *f;
    char *text = NULL, *tag;
    size_t len = 0;
    json_t *o;
    json_error_t jerr;
    int rc;

    memset(m, 0, sizeof *m);
    snprintf(path, sizeof path, "%s/%s", dir, ARCHIVE_MANIFEST);
    f = fopen(path, "rb");
    if (f == NULL)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                              "%s: no manifest (not a complete batch)", dir);
    text = malloc(MANIFEST_MAX + 1);
    if (text == NULL) {
        fclose(f);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    len = fread(text, 1, MANIFEST_MAX + 1, f);
    fclose(f);
    if (len > MANIFEST_MAX) {
        free(text);
        return mr_error_set(err, MR_E_LIMIT, "%s is too large", path);
    }
    text[len] = '\0';
    /* Split off the trailing HMAC field; its exact shape is part of the format. */
    tag = NULL;
    for (char *p = strstr(text, HMAC_TAG); p != NULL; p = strstr(p + 1, HMAC_TAG))
        tag = p;
    if (tag == NULL || strlen(tag) != strlen(HMAC_TAG) + 64 + 3
        || strcmp(tag + strlen(HMAC_TAG) + 64, "\"}\n") != 0) {
        free(text);
        return mr_error_set(err, MR_E_TAMPERED, "manifest.json in %s: HMAC field missing or "
                            "malformed", dir);
    }
    if (key != NULL) {
        char *given = tag + strlen(HMAC_TAG);
        char saved[2] = { tag[0], tag[1] };
        tag[0] = '}';
        hmac_hex(key, text, (size_t)(tag - text) + 1, mac);
        tag[0] = saved[0];
        (void)saved[1];
        if (CRYPTO_memcmp(mac, given, 64) != 0) {
            free(text);
            return mr_error_set(err, MR_E_TAMPERED,
                                "manifest.json in %s: HMAC does not match (altered, or another "
                                "manifest key)", dir);
        }
    }
    o = json_loadb(text, len, 0, &jerr);
    free(text);
    if (o == NULL)
        return mr_error_set(err, MR_E_PARSE, "manifest.json in %s is not JSON (line %d)", dir,
                            jerr.line);
    rc = parse_body(o, m, err);
    json_decref(o);
    if (rc != 0) {
        archive_manifest_clear(m);
        return mr_error_prefix(err, "%s", dir);
    }
    return 0;
}

void archive_manifest_clear(struct archive_manifest *m)
{
    free(m->volumes);
    memset(m, 0, sizeof *m);
}

int archive_batch_set_hold(const char *dir, bool hold, const unsigned char *key,
                           audit_log *audit, mr_error *err)
{
    struct archive_manifest m;
    int rc = archive_manifest_read(dir, key, &m, err);

    if (rc != 0)
        return rc;
    if (m.hold != hold) {
        m.hold = hold;
        m.hold_since = hold ? time(NULL) : 0;
        rc = archive_manifest_write(dir, &m, key, err);
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
