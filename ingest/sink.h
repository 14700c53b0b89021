/*
 * sink.h — where routed mail goes: one driver interface (as isync's driver struct) with
 * three drivers: the built-in SQLite member system, a Maildir per member, and an external
 * command.  The ingest run wraps each fetched batch in begin … deliver* … commit, and
 * commits its own state only after the sink's commit returned, so a crash repeats at most
 * one batch; every driver therefore makes delivery idempotent on (account, mailbox,
 * UIDVALIDITY, UID, SHA-256).
 *
 * Unrouted mail (rule "none") is delivered too, to the driver's queue for manual handling;
 * "own" and "auto" mail is not delivered at all.
 */
#ifndef MAILRET_INGEST_SINK_H
#define MAILRET_INGEST_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"
#include "ingest/members.h"
#include "ingest/route.h"

struct sink_message {
    const char *account;
    const char *mailbox;
    uint32_t uidvalidity, uid;
    time_t internaldate;
    const unsigned char *raw;
    size_t len;
    const char *sha256_hex;
    const char *message_id;         /* may be NULL */
    const struct route_result *route;
};

enum sink_outcome {
    SINK_DELIVERED = 0,
    SINK_DUPLICATE = 1,     /* already there (a repeated batch): not an error */
    SINK_REJECTED = 2,      /* not delivered this time (err says why); retried next run */
};

/* A driver.  deliver returns non-zero only for failures that must stop the run (database
 * gone, disk full); a per-message refusal is SINK_REJECTED with err filled. */
struct sink_driver {
    const char *name;
    int (*begin)(void *self, mr_error *err);
    int (*deliver)(void *self, const struct sink_message *m, enum sink_outcome *out,
                   mr_error *err);
    int (*commit)(void *self, mr_error *err);   /* durable when it returns 0 */
    void (*rollback)(void *self);
    void (*close)(void *self);
};

typedef struct sink sink;

/* For drivers: wrap a driver and its private state (closed by sink_close). */
int sink_new(const struct sink_driver *drv, void *self, sink **out, mr_error *err);
/* For drivers: the private state if s was made with drv, else NULL. */
void *sink_driver_state(sink *s, const struct sink_driver *drv);

int sink_begin(sink *s, mr_error *err);
int sink_deliver(sink *s, const struct sink_message *m, enum sink_outcome *out, mr_error *err);
int sink_commit(sink *s, mr_error *err);
void sink_rollback(sink *s);
void sink_close(sink *s);
const char *sink_name(const sink *s);

/* The drivers. */
/* SQLite member system; db stays owned by the caller and must outlive the sink. */
int sink_sqlite_open(members_db *db, sink **out, mr_error *err);
/* DIR/<member id>/{tmp,new,cur}; unrouted mail in DIR/_unrouted. */
int sink_maildir_open(const char *dir, sink **out, mr_error *err);
/* `/bin/sh -c command` with the message on stdin and MAILRET_MEMBER, MAILRET_CASE,
 * MAILRET_RULE, MAILRET_MAILBOX, MAILRET_UIDVALIDITY, MAILRET_UID, MAILRET_SHA256 in the
 * environment; exit 0 = delivered.  journal_path is a small SQLite file recording each
 * delivery at once, so that a repeated batch does not run the command twice. */
int sink_exec_open(const char *command, const char *journal_path, int timeout_s, sink **out,
                   mr_error *err);
/* Keep the environment variable `name` out of the command's environment: the IMAP
 * password's ([imap] password_env), which the command must never see.  Only for a sink
 * from sink_exec_open (MR_E_INVALID otherwise); may be called more than once. */
int sink_exec_hide_env(sink *s, const char *name, mr_error *err);

#endif
