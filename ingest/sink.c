/* sink.c — see sink.h: the dispatch shared by all drivers. */
#include "ingest/sink.h"

#include <stdlib.h>

struct sink {
    const struct sink_driver *drv;
    void *self;
};

int sink_new(const struct sink_driver *drv, void *self, sink **out, mr_error *err)
{
    sink *s = malloc(sizeof *s);

    if (s == NULL) {
        drv->close(self);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    s->drv = drv;
    s->self = self;
    *out = s;
    return 0;
}

void *sink_driver_state(sink *s, const struct sink_driver *drv)
{
    return s != NULL && s->drv == drv ? s->self : NULL;
}

int sink_begin(sink *s, mr_error *err)
{
    return s->drv->begin(s->self, err);
}

int sink_deliver(sink *s, const struct sink_message *m, enum sink_outcome *out, mr_error *err)
{
    return s->drv->deliver(s->self, m, out, err);
}

int sink_commit(sink *s, mr_error *err)
{
    return s->drv->commit(s->self, err);
}

void sink_rollback(sink *s)
{
    s->drv->rollback(s->self);
}

void sink_close(sink *s)
{
    if (s == NULL)
        return;
    s->drv->close(s->self);
    free(s);
}

const char *sink_name(const sink *s)
{
    return s->drv->name;
}
