/* tombstone.c — expired.json (see tombstone.h).  The HMAC covers the compact, key-sorted
 * JSON of every other field, which jansson reproduces byte for byte on reading. */
#include "purge/tombstone.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "common/durable.h"
#include "common/mrtime.h"

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
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:{s:s, s:s}, s:s}",
                     "format", PURGE_TOMBSTONE_FORMAT, "batch_id", t->batch_id, "mailbox",
                     t->mailbox, "period_start", ps, "period_end", pe, "created", c, "expires",
                     e, "expired", x, "message_count", (json_int_t)t->message_count,
                     "shredded_epoch_keys", "content", t->content_key_id, "reid",
                     t->reid_key_id, "status", "expired");
}

int purge_tombstone_write(const char *dir, const struct purge_tombstone *t,
                          const unsigned char key[ARCHIVE_KEY_LEN], mr_error *err)
{
    json_t *o = body(t);
    char *text = NULL, mac[65], path[4200];
    int rc;

    if (o == NULL)
        return mr_error_set(err, MR_E_NOMEM, "tombstone: cannot build JSON");
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL) {
        json_decref(o);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    mac_hex(key, text, mac);
    free(text);
    json_object_set_new(o, "hmac_sha256", json_string(mac));
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (text == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/%s", dir, PURGE_TOMBSTONE);
    {
        size_t len = strlen(text);
        char *line = malloc(len + 2);
        if (line == NULL) {
            free(text);
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        }
        memcpy(line, text, len);
        line[len] = '\n';
        rc = durable_write_file(path, line, len + 1, 0640, err);
        free(line);
    }
    free(text);
    return rc;
}

int purge_tombstone_read(const char *dir, const unsigned char *key, struct purge_tombstone *t,
                         mr_error *err)
{
    char path[4200], mac[65];
    json_error_t jerr;
    json_t *o, *given, *keys;
    const char *g;
    int bad = 0;

    memset(t, 0, sizeof *t);
    snprintf(path, sizeof path, "%s/%s", dir, PURGE_TOMBSTONE);
    o = json_load_file(path, 0, &jerr);
    if (o == NULL) {
        FILE *f = fopen(path, "r");
        if (f == NULL)
            return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                                  "cannot read %s", path);
        fclose(f);
        return mr_error_set(err, MR_E_PARSE, "%s is not JSON (line %d)", path, jerr.line);
    }
    given = json_incref(json_object_get(o, "hmac_sha256"));
    g = json_string_value(given);
    json_object_del(o, "hmac_sha256");
    if (key != NULL) {
        char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        if (text == NULL) {
            json_decref(given);
            json_decref(o);
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        }
        mac_hex(key, text, mac);
        free(text);
        if (g == NULL || strlen(g) != 64 || CRYPTO_memcmp(g, mac, 64) != 0) {
            json_decref(given);
            json_decref(o);
            return mr_error_set(err, MR_E_TAMPERED, "%s: HMAC does not match", path);
        }
    }
    json_decref(given);
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
