/* sink_sqlite.c — the built-in member system as a sink (members.h does the SQL). */
#include "ingest/sink.h"

#include <stdlib.h>

static int sqlite_begin(void *self, mr_error *err)
{
    return members_begin(self, err);
}

static int sqlite_deliver(void *self, const struct sink_message *m, enum sink_outcome *out,
                          mr_error *err)
{
    const struct route_result *r = m->route;
    bool routed = r->rule == ROUTE_CASE || r->rule == ROUTE_SENDER || r->rule == ROUTE_CPR
                  || r->rule == ROUTE_MANUAL;
    struct members_doc d = {
        .member_id = routed ? r->member : NULL,
        .case_id = (r->rule == ROUTE_CASE || r->rule == ROUTE_MANUAL) && r->case_id[0] != '\0'
                       ? r->case_id : NULL,
        .rule = route_rule_name(r->rule),
        .message_id = m->message_id,
        .sha256_hex = m->sha256_hex,
        .received = m->internaldate,
        .account = m->account,
        .mailbox = m->mailbox,
        .uidvalidity = m->uidvalidity,
        .uid = m->uid,
        .raw = m->raw,
        .raw_len = m->len,
    };
    bool dup;
    int rc;

    if (r->rule == ROUTE_OWN || r->rule == ROUTE_AUTO) {
        *out = SINK_DELIVERED;      /* nothing to store: not casework */
        return 0;
    }
    if ((rc = members_savepoint(self, err)) != 0)
        return rc;
    rc = members_store(self, &d, &dup, err);
    if (rc == MR_E_INVALID || rc == MR_E_LIMIT || rc == MR_E_NOSPACE) {
        /* This document only: undo it and keep the batch's others. */
        mr_error uerr;
        if (members_undo(self, &uerr) != 0)
            return mr_error_set(err, uerr.code, "%s (after: %s)", uerr.msg, err->msg);
        *out = SINK_REJECTED;
        return 0;
    }
    if (rc != 0) {
        mr_error uerr;
        (void)members_undo(self, &uerr);
        return rc;
    }
    if ((rc = members_release(self, err)) != 0)
        return rc;
    *out = dup ? SINK_DUPLICATE : SINK_DELIVERED;
    return 0;
}

static int sqlite_commit(void *self, mr_error *err)
{
    return members_commit(self, err);
}

static void sqlite_rollback(void *self)
{
    members_rollback(self);
}

static void sqlite_close(void *self)
{
    (void)self;     /* the members_db belongs to the caller */
}

static const struct sink_driver sqlite_driver = {
    .name = "sqlite",
    .begin = sqlite_begin,
    .deliver = sqlite_deliver,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .close = sqlite_close,
};

int sink_sqlite_open(members_db *db, sink **out, mr_error *err)
{
    return sink_new(&sqlite_driver, db, out, err);
}
