/*
 * fuzz_backup_index.c — libFuzzer target for the index.jsonl reader (backup/index.h).
 *
 * index_parse on the raw input; on success every entry is written back with
 * index_write_line and parsed again, and the two parses must agree (file, UIDs, sizes,
 * digests, flags, tokens).  Errors must follow the convention (negative code + message).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backup/buf.h"
#include "backup/index.h"

static void same_entry(const struct index_entry *a, const struct index_entry *b)
{
    if (strcmp(a->file, b->file) != 0 || a->uidvalidity != b->uidvalidity || a->uid != b->uid
        || a->size != b->size || a->pseudo_size != b->pseudo_size
        || strcmp(a->sha256, b->sha256) != 0 || strcmp(a->pseudo_sha256, b->pseudo_sha256) != 0
        || strcmp(a->flags, b->flags) != 0 || a->n_tokens != b->n_tokens)
        abort();
    for (size_t i = 0; i < a->n_tokens; i++)
        if (strcmp(a->tokens[i], b->tokens[i]) != 0)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct index_entry *e = NULL, *e2 = NULL;
    struct mr_buf out = { 0 };
    size_t n = 0, n2 = 0;
    mr_error err;
    int rc;

    mr_error_clear(&err);
    rc = index_parse(data, size, &e, &n, &err);
    if (rc != 0) {
        if (rc > 0 || err.msg[0] == '\0')
            abort();
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        /* Only round-trip what the writer can express (strings without NUL). */
        if (index_write_line(&out, &e[i], &err) != 0)
            goto done;
    }
    if (index_parse(out.data, out.len, &e2, &n2, &err) != 0 || n2 != n)
        abort();    /* what we wrote ourselves must read back */
    for (size_t i = 0; i < n; i++)
        same_entry(&e[i], &e2[i]);
done:
    buf_free(&out);
    index_entries_free(e, n);
    if (e2 != NULL)
        index_entries_free(e2, n2);
    return 0;
}
