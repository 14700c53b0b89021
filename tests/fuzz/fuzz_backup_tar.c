/*
 * fuzz_backup_tar.c — libFuzzer target for the tar reader (backup/tar.h).
 *
 * tar_read_next over the input (as a memory source) until the end marker or an error,
 * with a 1 MiB entry limit.  Every entry read is written again with tar_write_entry
 * (when the writer accepts its name) and read back: name and data must survive the
 * round trip.  Errors must carry a negative code and a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backup/buf.h"
#include "backup/tar.h"

#define MAX_ENTRY (1024 * 1024)

static void roundtrip(const struct tar_entry *e)
{
    struct mr_buf out = { 0 };
    struct tar_entry back;
    struct tar_mem_src src;
    mr_error err;
    int rc;

    if (tar_write_entry(&out, e->name, 0, e->data, e->len, &err) != 0
        || tar_write_end(&out, &err) != 0) {
        buf_free(&out);
        return;     /* a name the writer refuses (e.g. with a newline) */
    }
    src = (struct tar_mem_src){ .data = out.data, .len = out.len };
    rc = tar_read_next(tar_mem_read, &src, MAX_ENTRY, &back, &err);
    if (rc != 1 || strcmp(back.name, e->name) != 0 || back.len != e->len
        || (e->len > 0 && memcmp(back.data, e->data, e->len) != 0))
        abort();
    free(back.data);
    rc = tar_read_next(tar_mem_read, &src, MAX_ENTRY, &back, &err);
    if (rc != 0)
        abort();    /* then the end marker */
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tar_mem_src src = { .data = data, .len = size, .pos = 0 };
    struct tar_entry e;
    mr_error err;
    int rc, n = 0;

    mr_error_clear(&err);
    while ((rc = tar_read_next(tar_mem_read, &src, MAX_ENTRY, &e, &err)) == 1) {
        if (e.data == NULL || e.name[0] == '\0')
            abort();
        roundtrip(&e);
        free(e.data);
        if (++n > 10000)
            abort();    /* each entry consumes at least one block: cannot happen */
    }
    if (rc < 0 && err.msg[0] == '\0')
        abort();
    if (rc > 1)
        abort();
    return 0;
}
