/* ingest_setup.c — see ingest_setup.h. */
#include "ingest/ingest_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/secret.h"
#include "common/durable.h"

struct ingest_setup {
    struct ingest_options opt;
    struct imap_options imap;
    struct route_config routing;
    char *password;
    char *state_path;
    char *journal_path;
    members_db *members;
    sink *sink;
};

/* imap_secret_fn for token_command: run once per connection. */
static int setup_token_command(void *ctx, char **secret, mr_error *err)
{
    const struct mr_config *cfg = ctx;

    return secret_command_run(cfg->imap.token_command, (int)cfg->imap.token_timeout, secret,
                              err);
}

int ingest_setup_imap_options(const struct mr_config *cfg, struct imap_options *io,
                              char **password, mr_error *err)
{
    static const enum imap_auth auth[] = {
        [CONFIG_AUTH_LOGIN] = IMAP_AUTH_LOGIN,
        [CONFIG_AUTH_PLAIN] = IMAP_AUTH_PLAIN,
        [CONFIG_AUTH_XOAUTH2] = IMAP_AUTH_XOAUTH2,
        [CONFIG_AUTH_OAUTHBEARER] = IMAP_AUTH_OAUTHBEARER,
    };
    int rc;

    memset(io, 0, sizeof *io);
    io->host = cfg->imap.host;
    io->port = (int)cfg->imap.port;
    io->tls = cfg->imap.tls == CONFIG_TLS_STARTTLS ? IMAP_TLS_STARTTLS : IMAP_TLS_IMAPS;
    io->ca_file = cfg->imap.ca_file;
    io->insecure_skip_verify = cfg->imap.insecure_skip_verify;
    io->user = cfg->imap.user;
    io->connect_timeout_s = (int)cfg->imap.connect_timeout;
    io->io_timeout_s = (int)cfg->imap.io_timeout;
    io->max_literal = (size_t)cfg->imap.max_message_size;
    io->auth = auth[cfg->imap.auth];
    io->throttle_max_wait_s = (int)cfg->imap.throttle_max_wait;
    *password = NULL;
    if (cfg->imap.token_command != NULL) {
        /* ctx is cfg itself: it outlives every connection made with these options. */
        io->secret_fn = setup_token_command;
        io->secret_ctx = (void *)cfg;
        return 0;
    }
    rc = secret_read_text(cfg->imap.password_file, cfg->imap.password_env, password, err);
    if (rc != 0)
        return mr_error_prefix(err, "IMAP password");
    io->password = *password;
    return 0;
}

static char *setup_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int ingest_setup_open(const struct mr_config *cfg, mr_log *log, ingest_setup **out,
                      mr_error *err)
{
    ingest_setup *s = calloc(1, sizeof *s);
    int rc;

    *out = NULL;
    if (s == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if ((rc = durable_mkdirs(cfg->state.dir, 0700, err)) != 0)
        goto fail;
    if ((s->state_path = setup_join(cfg->state.dir, INGEST_STATE_FILE)) == NULL ||
        (s->journal_path = setup_join(cfg->state.dir, "exec-sink.sqlite")) == NULL) {
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = ingest_setup_imap_options(cfg, &s->imap, &s->password, err)) != 0)
        goto fail;
    s->imap.log = log;     /* for the loud insecure_skip_verify warning */
    s->routing = (struct route_config){
        .case_pattern = cfg->members.case_pattern,
        .own_addresses = (const char *const *)cfg->members.own_addresses.items,
        .n_own_addresses = cfg->members.own_addresses.n,
        .own_domains = (const char *const *)cfg->members.own_domains.items,
        .n_own_domains = cfg->members.own_domains.n,
    };
    /* The registry is always the SQLite member database: routing needs it whichever sink
     * receives the mail. */
    if ((rc = members_open(cfg->members.database, &s->members, err)) != 0)
        goto fail;
    switch (cfg->members.backend) {
    case CONFIG_MEMBERS_MAILDIR:
        rc = sink_maildir_open(cfg->members.maildir, &s->sink, err);
        break;
    case CONFIG_MEMBERS_EXEC:
        rc = sink_exec_open(cfg->members.command, s->journal_path, (int)cfg->imap.io_timeout,
                            &s->sink, err);
        /* The member-system command inherits our environment, but not the IMAP password. */
        if (rc == 0 && cfg->imap.password_env != NULL)
            rc = sink_exec_hide_env(s->sink, cfg->imap.password_env, err);
        break;
    default:
        rc = sink_sqlite_open(s->members, &s->sink, err);
        break;
    }
    if (rc != 0)
        goto fail;
    s->opt = (struct ingest_options){
        .imap = &s->imap,
        .mailboxes = (const char *const *)cfg->mailboxes.items,
        .n_mailboxes = cfg->mailboxes.n,
        .sink = s->sink,
        .members = s->members,
        .queue_unrouted = cfg->members.backend != CONFIG_MEMBERS_SQLITE,
        .routing = &s->routing,
        .state_db = s->state_path,
        .batch_size = cfg->imap.fetch_batch,
        .max_size = cfg->imap.max_message_size,
        .log = log,
    };
    *out = s;
    return 0;
fail:
    ingest_setup_close(s);
    return rc;
}

struct ingest_options *ingest_setup_options(ingest_setup *s)
{
    return &s->opt;
}

void ingest_setup_close(ingest_setup *s)
{
    if (s == NULL)
        return;
    sink_close(s->sink);
    members_close(s->members);
    secret_free(s->password);
    free(s->state_path);
    free(s->journal_path);
    free(s);
}
