/* index.c — see index.h.  Jansson keeps the JSON right (escaping of flags and keywords). */
#include "backup/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/mrtime.h"

void index_member_name(char *out, size_t size, uint32_t uidvalidity, uint32_t uid,
                       const char *suffix)
{
    snprintf(out, size, "%u-%u%s", (unsigned)uidvalidity, (unsigned)uid, suffix);
}

int index_write_line(struct mr_buf *out, const struct index_entry *e, mr_error *err)
{
    char date[32];
    json_t *o, *toks;
    char *text;
    int rc;

    mrtime_format_utc(e->internaldate, date, sizeof date);
    toks = json_array();
    for (size_t i = 0; toks != NULL && i < e->n_tokens; i++)
        json_array_append_new(toks, json_string(e->tokens[i]));
    o = json_pack("{s:s, s:I, s:I, s:s, s:I, s:i, s:s, s:I, s:s, s:I, s:s, s:I, s:o}", "file",
                  e->file, "uidvalidity", (json_int_t)e->uidvalidity, "uid",
                  (json_int_t)e->uid, "internaldate", date, "internaldate_unix",
                  (json_int_t)e->internaldate, "tz_min", e->tz_min, "flags",
                  e->flags != NULL ? e->flags : "", "size", (json_int_t)e->size, "sha256",
                  e->sha256, "pseudo_size", (json_int_t)e->pseudo_size, "pseudo_sha256",
                  e->pseudo_sha256, "sealed", (json_int_t)e->sealed, "tokens", toks);
    if (o == NULL)
        return mr_error_set(err, MR_E_NOMEM, "index: cannot build a JSON line");
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    rc = buf_append(out, text, strlen(text), err);
    if (rc == 0)
        rc = buf_append(out, "\n", 1, err);
    free(text);
    return rc;
}

void index_entry_clear(struct index_entry *e)
{
    free(e->flags);
    for (size_t i = 0; i < e->n_tokens; i++)
        free(e->tokens[i]);
    free(e->tokens);
    memset(e, 0, sizeof *e);
}

void index_entries_free(struct index_entry *entries, size_t n)
{
    for (size_t i = 0; i < n; i++)
        index_entry_clear(&entries[i]);
    free(entries);
}

static int parse_line(json_t *o, struct index_entry *e, size_t lineno, mr_error *err)
{
    const char *file = NULL, *flags = NULL, *sha = NULL, *psha = NULL;
    json_int_t uidv = 0, uid = 0, date = 0, size = 0, psize = 0, sealed = 0;
    int tz = 0;
    json_t *toks = NULL;
    json_error_t jerr;

    if (json_unpack_ex(o, &jerr, 0,
                       "{s:s, s:I, s:I, s:I, s:i, s:s, s:I, s:s, s:I, s:s, s?I, s:o}", "file",
                       &file, "uidvalidity", &uidv, "uid", &uid, "internaldate_unix", &date,
                       "tz_min", &tz, "flags", &flags, "size", &size, "sha256", &sha,
                       "pseudo_size", &psize, "pseudo_sha256", &psha, "sealed", &sealed,
                       "tokens", &toks) != 0
        || !json_is_array(toks) || strlen(file) >= sizeof e->file || strlen(sha) != 64
        || strlen(psha) != 64 || uidv < 0 || uidv > UINT32_MAX || uid < 0 || uid > UINT32_MAX
        || size < 0 || psize < 0 || sealed < 0)
        return mr_error_set(err, MR_E_PARSE, "index.jsonl line %zu is malformed", lineno);
    snprintf(e->file, sizeof e->file, "%s", file);
    e->uidvalidity = (uint32_t)uidv;
    e->uid = (uint32_t)uid;
    e->internaldate = (time_t)date;
    e->tz_min = tz;
    e->size = (size_t)size;
    e->pseudo_size = (size_t)psize;
    e->sealed = (size_t)sealed;
    memcpy(e->sha256, sha, 65);
    memcpy(e->pseudo_sha256, psha, 65);
    e->flags = strdup(flags);
    e->n_tokens = json_array_size(toks);
    e->tokens = calloc(e->n_tokens ? e->n_tokens : 1, sizeof *e->tokens);
    if (e->flags == NULL || e->tokens == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    for (size_t i = 0; i < e->n_tokens; i++) {
        const char *t = json_string_value(json_array_get(toks, i));
        if (t == NULL)
            return mr_error_set(err, MR_E_PARSE, "index.jsonl line %zu: bad token", lineno);
        e->tokens[i] = strdup(t);
        if (e->tokens[i] == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    return 0;
}

int index_parse(const unsigned char *text, size_t len, struct index_entry **entries,
                size_t *n, mr_error *err)
{
    struct index_entry *v = NULL;
    size_t cnt = 0, cap = 0, pos = 0, lineno = 0;
    int rc = 0;

    while (pos < len) {
        const unsigned char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        json_error_t jerr;
        json_t *o;

        lineno++;
        if (end == pos) {
            pos = end + 1;
            continue;
        }
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 64;
            struct index_entry *nv = realloc(v, nc * sizeof *nv);
            if (nv == NULL) {
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
                break;
            }
            v = nv;
            cap = nc;
        }
        o = json_loadb((const char *)text + pos, end - pos, 0, &jerr);
        if (o == NULL) {
            rc = mr_error_set(err, MR_E_PARSE, "index.jsonl line %zu is not JSON", lineno);
            break;
        }
        memset(&v[cnt], 0, sizeof v[cnt]);
        rc = parse_line(o, &v[cnt], lineno, err);
        json_decref(o);
        cnt++;
        if (rc != 0)
            break;
        pos = end + 1;
    }
    if (rc != 0) {
        index_entries_free(v, cnt);
        return rc;
    }
    *entries = v;
    *n = cnt;
    return 0;
}
