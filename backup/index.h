/*
 * index.h — index.jsonl, the per-volume message index inside the encrypted tar.  One JSON
 * object per line, per message:
 *   {"file":"<uidvalidity>-<uid>.eml","uidvalidity":N,"uid":N,
 *    "internaldate":"YYYY-MM-DDTHH:MM:SSZ","internaldate_unix":N,"tz_min":N,
 *    "flags":"\\Seen \\Answered","size":N,"sha256":"<hex of the original bytes>",
 *    "pseudo_size":N,"pseudo_sha256":"<hex of the archived bytes>","sealed":N,
 *    "tokens":["email:<token>","cpr:<token>",...]}
 * "sealed" counts the message's parts whose bodies went into the reid data (an index
 * written before it existed has no such field: read as 0).
 * It lives only inside the volume: flags or tokens never appear outside the encryption.
 */
#ifndef MAILRET_BACKUP_INDEX_H
#define MAILRET_BACKUP_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "backup/buf.h"
#include "common/error.h"

#define INDEX_FILE "index.jsonl"

struct index_entry {
    char file[48];
    uint32_t uidvalidity, uid;
    time_t internaldate;
    int tz_min;
    char *flags;            /* malloc'd */
    size_t size, pseudo_size;
    char sha256[65], pseudo_sha256[65];
    size_t sealed;          /* parts sealed into the reid data */
    char **tokens;          /* malloc'd "kind:token" strings */
    size_t n_tokens;
};

/* Append one line to out. */
int index_write_line(struct mr_buf *out, const struct index_entry *e, mr_error *err);

/* Parse a whole index.jsonl.  *entries is malloc'd; free with index_entries_free. */
int index_parse(const unsigned char *text, size_t len, struct index_entry **entries,
                size_t *n, mr_error *err);
void index_entry_clear(struct index_entry *e);
void index_entries_free(struct index_entry *entries, size_t n);

/* The archive member name of a message: "<uidvalidity>-<uid>.eml" (or ".reid"). */
void index_member_name(char *out, size_t size, uint32_t uidvalidity, uint32_t uid,
                       const char *suffix);

#endif
