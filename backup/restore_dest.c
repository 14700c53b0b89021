/* restore_dest.c — see restore.h: the dispatch shared by the restore destinations, and
 * what makes them idempotent: the set of keys (SHA-256) of what each already holds. */
#include "backup/restore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/volume.h"

struct restore_dest {
    const struct restore_driver *drv;
    void *self;
    unsigned char (*keys)[32];      /* open addressing; an all-zero slot is empty */
    size_t cap, n, present;
};

static size_t slot_of(const struct restore_dest *d, const unsigned char k[32])
{
    size_t h;

    memcpy(&h, k, sizeof h);        /* a SHA-256 is as good a hash as any */
    h &= d->cap - 1;
    while (memcmp(d->keys[h], k, 32) != 0) {
        static const unsigned char zero[32];
        if (memcmp(d->keys[h], zero, 32) == 0)
            break;
        h = (h + 1) & (d->cap - 1);
    }
    return h;
}

static bool key_has(const struct restore_dest *d, const unsigned char k[32])
{
    static const unsigned char zero[32];

    return d->cap > 0 && memcmp(d->keys[slot_of(d, k)], zero, 32) != 0;
}

static int key_add(struct restore_dest *d, const unsigned char k[32], mr_error *err)
{
    static const unsigned char zero[32];

    if ((d->n + 1) * 2 > d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 1024;
        unsigned char (*old)[32] = d->keys;
        size_t oc = d->cap;
        if ((d->keys = calloc(nc, 32)) == NULL) {
            d->keys = old;
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        }
        d->cap = nc;
        for (size_t i = 0; i < oc; i++)
            if (memcmp(old[i], zero, 32) != 0)
                memcpy(d->keys[slot_of(d, old[i])], old[i], 32);
        free(old);
    }
    size_t s = slot_of(d, k);
    if (memcmp(d->keys[s], zero, 32) == 0) {
        memcpy(d->keys[s], k, 32);
        d->n++;
    }
    return 0;
}

static int scan_one(void *ctx, const char *hex, mr_error *err)
{
    struct restore_dest *d = ctx;
    unsigned char k[32];

    if (volume_unhex(hex, k, 32) != 0 || hex[64] != '\0')
        return mr_error_set(err, MR_E_INTERNAL, "restore: bad key from the %s driver",
                            d->drv->name);
    d->present++;
    return key_add(d, k, err);
}

int restore_dest_new(const struct restore_driver *drv, void *self, restore_dest **out,
                     mr_error *err)
{
    restore_dest *d = calloc(1, sizeof *d);
    int rc;

    *out = NULL;
    if (d == NULL) {
        drv->close(self);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    d->drv = drv;
    d->self = self;
    if ((rc = drv->scan(self, scan_one, d, err)) != 0) {
        restore_dest_close(d);
        return mr_error_prefix(err, "%s destination", drv->name);
    }
    *out = d;
    return 0;
}

int restore_dest_put(restore_dest *d, const struct restore_msg *m, bool *duplicate,
                     mr_error *err)
{
    char hex[65];
    unsigned char k[32];
    int rc;

    *duplicate = false;
    if ((rc = d->drv->key(d->self, m->bytes, m->len, hex, err)) != 0)
        return rc;
    if (volume_unhex(hex, k, 32) != 0 || hex[64] != '\0')
        return mr_error_set(err, MR_E_INTERNAL, "restore: bad key");
    if (key_has(d, k)) {
        *duplicate = true;
        return 0;
    }
    rc = d->drv->put(d->self, m, err);
    if (rc == 0)
        rc = key_add(d, k, err);
    return rc;
}

int restore_dest_finish(restore_dest *d, mr_error *err)
{
    return d->drv->finish(d->self, err);
}

void restore_dest_close(restore_dest *d)
{
    if (d == NULL)
        return;
    d->drv->close(d->self);
    free(d->keys);
    free(d);
}

const char *restore_dest_name(const restore_dest *d)
{
    return d->drv->name;
}

size_t restore_dest_keywords_dropped(const restore_dest *d)
{
    return d->drv->keywords_dropped != NULL ? d->drv->keywords_dropped(d->self) : 0;
}

size_t restore_dest_present(const restore_dest *d)
{
    return d->present;
}
