/*
 * itest_ingest_util.h — the fixture of the itest_ingest_*.c tests (header-only, like
 * itest_imap_util.h): a fresh user on the test server, a scratch directory with a member
 * database loaded from a registry and its SQLite sink, and ingest options for that
 * user's INBOX over IMAPS, which each test adjusts (routing, batch size, account).
 */
#ifndef MAILRET_ITEST_INGEST_UTIL_H
#define MAILRET_ITEST_INGEST_UTIL_H

#include "integration/itest_imap_util.h"
#include "ingest/ingest.h"
#include "ingest/members_import.h"

struct it_ingest {
    struct it_server srv;
    char user[64], password[64];
    char *dir;                      /* scratch, removed by it_ingest_free */
    char state[512];                /* dir/state.sqlite */
    members_db *db;                 /* dir/members.sqlite, the registry imported */
    sink *sink;
    struct imap_options io;
    struct route_config rc;         /* empty: no own domains */
    struct ingest_options opt;      /* INBOX, io, rc, db, sink, state; no account key */
    const char *mailboxes[1];
};

/* f must stay where it is (opt points into it).  registry: members CSV text. */
static inline int it_ingest_init(struct it_ingest *f, const char *prefix,
                                 const char *registry, mr_error *err)
{
    struct members_import_result res;
    char path[512], db[512];
    int rc;

    memset(f, 0, sizeof *f);
    it_server_load(&f->srv);
    if (it_new_user(&f->srv, f->user, f->password) != 0)
        return mr_error_set(err, MR_E_IO, "cannot add a test user");
    f->dir = th_tempdir(prefix);
    if (f->dir == NULL)
        return mr_error_set(err, MR_E_IO, "no scratch directory");
    snprintf(path, sizeof path, "%s/members.csv", f->dir);
    if (th_write_file(path, registry, strlen(registry)) != 0)
        return mr_error_set(err, MR_E_IO, "cannot write %s", path);
    snprintf(db, sizeof db, "%s/members.sqlite", f->dir);
    rc = members_open(db, &f->db, err);
    if (rc == 0)
        rc = members_import_csv(f->db, path, NULL, NULL, &res, err);
    if (rc == 0)
        rc = sink_sqlite_open(f->db, &f->sink, err);
    snprintf(f->state, sizeof f->state, "%s/state.sqlite", f->dir);
    it_options(&f->io, &f->srv, IMAP_TLS_IMAPS, f->user, f->password);
    f->mailboxes[0] = "INBOX";
    f->opt = (struct ingest_options){ .imap = &f->io, .mailboxes = f->mailboxes,
                                      .n_mailboxes = 1, .sink = f->sink, .members = f->db,
                                      .routing = &f->rc, .state_db = f->state };
    return rc;
}

static inline void it_ingest_free(struct it_ingest *f)
{
    sink_close(f->sink);
    members_close(f->db);
    th_rmtree(f->dir);
    free(f->dir);
    it_server_free(&f->srv);
}

#endif
