/* cmd_backup.c — `mailret backup`: archive mail older than the cutoff without deleting
 * anything (from the configured IMAP mailboxes, or from a Maildir with --from-maildir).
 * Maps the configuration onto archive_options; the work is backup/archive.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_setup.h"
#include "cli/cli_store.h"
#include "backup/batchdir.h"
#include "backup/archive.h"
#include "backup/maildir_source.h"
#include "common/audit.h"
#include "common/config.h"
#include "common/mrtime.h"
#include "common/progress.h"
#include "common/runlock.h"
#include "common/secret.h"
#include "imap/imap.h"
#include "keys/keys.h"
#include "purge/purge.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret backup [--account NAME] [--mailbox NAME] [--cutoff DATE | --all]\n"
            "                      [--progress | --no-progress]\n"
            "       mailret backup --from-maildir DIR --mailbox NAME [--cutoff DATE | --all]\n"
            "       mailret backup --push\n"
            "\n"
            "Archive messages older than the cutoff (default: 00:00 on the first day of this\n"
            "month in [retention] timezone) into a new verified batch per mailbox, without\n"
            "deleting anything.  Messages are pseudonymised, packed into volumes of at most\n"
            "[archive] volume_size, compressed, encrypted to fresh epoch keys sealed to IT,\n"
            "written, read back and verified; the batch's manifest is written last.  With\n"
            "[archive] store = s3 the batch is then put into the bucket and read back.\n"
            "\n"
            "  --account NAME       only this account's mailboxes (default: every account;\n"
            "                       batches are filed as NAME:mailbox, except the account\n"
            "                       default's)\n"
            "  --mailbox NAME       only this configured mailbox (with --from-maildir: the\n"
            "                       name the batch is filed under)\n"
            "  --from-maildir DIR   read a Maildir instead of IMAP (UIDVALIDITY 1, UIDs in\n"
            "                       file-name order, INTERNALDATE = mtime, flags and\n"
            "                       keywords from the file name and dovecot-keywords)\n"
            "  --cutoff DATE        YYYY-MM-DD (local) or YYYY-MM-DDTHH:MM:SSZ\n"
            "  --all                no cutoff: every message\n"
            "  --progress, --no-progress  a progress line on stderr (messages, bytes, rate,\n"
            "                       ETA; IMAP only); default on when stderr is a terminal\n"
            "                       and not under systemd\n"
            "  --push               no new batch: put every batch under [archive] dir that\n"
            "                       the object store lacks, or holds with other files or\n"
            "                       sizes, into it (after store = s3 was set, or after a\n"
            "                       push failed); under the run lock\n"
            "Prints one line per batch: mailbox, batch id, messages, volumes, directory\n"
            "(--push: each batch put, and a count).\n");
}

struct imap_feed {
    archive_batch *batch;
    time_t cutoff;
    size_t added;
    mr_progress *progress;
};

struct imap_feed2 {
    struct imap_feed base;
    uint32_t uidvalidity;
};

static int feed_imap(void *ctx, const struct imap_message *msg, mr_error *err)
{
    struct imap_feed2 *f = ctx;
    struct archive_message m = {
        .uidvalidity = f->uidvalidity, .uid = msg->uid, .internaldate = msg->internaldate,
        .internaldate_tz_min = msg->internaldate_tz_min, .flags = msg->flags,
        .bytes = msg->body, .len = msg->body_len,
    };
    int rc;

    progress_add(f->base.progress, 1, msg->body_len);
    if (f->base.cutoff != 0 && msg->internaldate >= f->base.cutoff)
        return 0;
    if (msg->oversized)
        return mr_error_set(err, MR_E_LIMIT, "UID %u is larger than the 4 GiB a message "
                            "can be fetched with", (unsigned)msg->uid);
    rc = archive_batch_add(f->base.batch, &m, err);
    if (rc == 0)
        f->base.added++;
    return rc;
}

/* One batch of account a's mailbox (from the server, or from maildir); the archive names
 * it by its key (cli_mailbox_key), so two accounts' INBOX are two archive mailboxes. */
static int run_batch(struct cli_ctx *ctx, const struct mr_config *cfg,
                     const struct config_account *a, const struct cli_keys *k,
                     audit_log *audit, const char *mailbox, const char *maildir, time_t cutoff,
                     mr_progress *progress, mr_error *err)
{
    char key[CLI_MAILBOX_KEY_MAX];
    struct archive_options o;
    archive_batch *b = NULL;
    struct archive_result *res = NULL;
    imap_conn *conn = NULL;
    char *password = NULL;
    size_t added = 0;
    int rc;

    rc = cli_mailbox_key(a, mailbox, key, sizeof key, err);
    if (rc != 0)
        return rc;
    cli_archive_options(cfg, k, audit, ctx->log, &o);
    o.mailbox = key;
    o.period_end = cutoff;
    o.created = time(NULL);
    rc = mrtime_add_years(o.created, cfg->retention.years, cfg->retention.timezone, &o.expires,
                          err);
    if (rc != 0)
        return rc;
    if (maildir == NULL) {
        struct imap_options io;
        rc = cli_imap_options(a, &io, &password, err);
        if (rc == 0) {
            io.log = ctx->log;
            /* As purge: the archive takes any message the server holds; max_message_size
             * limits ingest only. */
            io.max_literal = PURGE_MAX_MESSAGE_SIZE;
            rc = imap_connect(&io, &conn, err);
        }
        secret_free(password);
        if (rc != 0)
            return rc;
    }
    rc = archive_batch_open(&o, &b, err);
    if (rc == 0 && maildir != NULL)
        rc = maildir_source_feed(maildir, cutoff, b, &added, err);
    if (rc == 0 && maildir == NULL) {
        struct imap_mailbox_info info;
        uint32_t *uids = NULL;
        size_t n = 0;
        rc = imap_examine(conn, mailbox, &info, err);
        if (rc == 0)
            rc = imap_uid_search(conn, 1, 0, cutoff, &uids, &n, err);
        if (rc == 0 && n > 0) {
            struct imap_feed2 f = { .base = { .batch = b, .cutoff = cutoff,
                                              .progress = progress },
                                    .uidvalidity = info.uidvalidity };
            char label[CLI_MAILBOX_KEY_MAX + 16];
            snprintf(label, sizeof label, "backup %s", key);
            progress_start(progress, label, n);
            rc = imap_uid_fetch_set(conn, uids, n, feed_imap, &f, err);
            progress_finish(progress);
            added = f.base.added;
        }
        free(uids);
    }
    imap_close(conn);
    if (rc != 0) {
        if (b != NULL)
            archive_batch_abort(b);
        return mr_error_prefix(err, "mailbox %s", key);
    }
    if (added == 0) {
        /* Nothing older than the cutoff: no empty batch (and no keys) left behind. */
        archive_batch_abort(b);
        printf("%s\tnothing to archive\n", key);
        return 0;
    }
    rc = archive_batch_close(b, &res, err);
    if (rc != 0)
        return mr_error_prefix(err, "mailbox %s", key);
    /* Mirrored to the object store, if one is configured, and read back. */
    rc = batchdir_store_push(res->dir, o.expires, err);
    if (rc != 0) {
        mr_error_prefix(err, "mailbox %s: batch %s is written here but not in the object "
                        "store", key, res->batch_id);
        archive_result_free(res);
        return rc;
    }
    printf("%s\t%s\t%zu messages\t%zu volumes\t%s\t%llu sealed parts in %zu messages\n",
           key, res->batch_id, res->n_messages, res->n_volumes, res->dir,
           res->sealed_parts, res->sealed_messages);
    archive_result_free(res);
    return 0;
}

/* --push: every batch (manifest or tombstone) whose copy in the store differs from the
 * directory by file names or sizes is pushed; the rest cost one listing each. */
static int push_all(struct cli_ctx *ctx, const struct mr_config *cfg, mr_error *err)
{
    struct archive_batch_ref *refs = NULL;
    size_t n = 0, pushed = 0, already = 0, failed = 0;
    runlock *lock = NULL;
    mr_store *store = NULL;
    int rc, first = 0;

    if (cfg->archive.store == CONFIG_STORE_LOCAL)
        return mr_error_set(err, MR_E_CONFIG, "--push: [archive] store is local: there is no "
                            "object store to put batches into");
    rc = runlock_acquire(cfg->state.dir, CLI_LOCK_WAIT_DEFAULT_S, &lock, err);
    if (rc == 0)
        rc = cli_store_attach(cfg, &store, err);
    if (rc == 0)
        rc = archive_batch_list(cfg->archive.dir, NULL, &refs, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *base = strrchr(refs[i].dir, '/');
        struct archive_manifest m;
        time_t until = 0;
        bool did = false;
        mr_error e;
        int brc;

        base = base != NULL ? base + 1 : refs[i].dir;
        if (!refs[i].has_manifest
            && !batchdir_exists(refs[i].dir, batchdir_name(BATCHDIR_TOMBSTONE), NULL))
            continue;   /* an interrupted run, not a batch */
        mr_error_clear(&e);
        if (refs[i].has_manifest && archive_manifest_read_unverified(refs[i].dir, &m, &e) == 0) {
            until = m.expires;
            archive_manifest_clear(&m);
        }
        brc = batchdir_store_sync(refs[i].dir, until, &did, &e);
        if (brc != 0) {
            log_error(ctx->log, "%s", e.msg);
            printf("%s\t%s\tFAILED\n", refs[i].mailbox, base);
            failed++;
            if (first == 0) {
                first = brc;
                *err = e;
            }
        } else if (did) {
            printf("%s\t%s\tput into the object store\n", refs[i].mailbox, base);
            pushed++;
        } else {
            already++;
        }
    }
    if (rc == 0) {
        printf("%zu batch(es) put into the object store, %zu there already, %zu failed\n",
               pushed, already, failed);
        if (first != 0) {
            rc = first;
            mr_error_prefix(err, "%zu batch(es) not in the object store", failed);
        }
    }
    free(refs);
    cli_store_detach(store);
    runlock_release(lock);
    return rc;
}

int cmd_backup(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "mailbox", required_argument, NULL, 'm' },
        { "account", required_argument, NULL, 'A' },
        { "from-maildir", required_argument, NULL, 'd' },
        { "cutoff", required_argument, NULL, 'c' },
        { "all", no_argument, NULL, 'a' },
        { "progress", no_argument, NULL, 'G' },
        { "no-progress", no_argument, NULL, 'g' },
        { "push", no_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *mailbox = NULL, *maildir = NULL, *cutoff_text = NULL, *account = NULL;
    size_t first = 0, count = 0;
    struct mr_config *cfg = NULL;
    struct cli_keys k;
    audit_log *audit = NULL;
    bool all = false, push = false;
    enum cli_progress_mode pmode = CLI_PROGRESS_AUTO;
    mr_progress *progress = NULL;
    mr_store *store = NULL;
    time_t cutoff = 0;
    mr_error err;
    int opt, rc;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'm': mailbox = optarg; break;
        case 'A': account = optarg; break;
        case 'd': maildir = optarg; break;
        case 'c': cutoff_text = optarg; break;
        case 'a': all = true; break;
        case 'G': pmode = CLI_PROGRESS_ON; break;
        case 'g': pmode = CLI_PROGRESS_OFF; break;
        case 'P': push = true; break;
        default: return cli_usage_error("backup", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error("backup", "unexpected argument '%s'", argv[optind]);
    if (maildir != NULL && mailbox == NULL)
        return cli_usage_error("backup", "--from-maildir needs --mailbox NAME");
    if (all && cutoff_text != NULL)
        return cli_usage_error("backup", "--all and --cutoff exclude each other");
    if (push && (all || cutoff_text != NULL || mailbox != NULL || maildir != NULL
                 || account != NULL))
        return cli_usage_error("backup", "--push goes alone");
    mr_error_clear(&err);
    memset(&k, 0, sizeof k);
    rc = cli_config_load(ctx, &cfg, &err);
    if (rc != 0)
        return cli_fail("backup", &err);
    if (push) {
        rc = push_all(ctx, cfg, &err);
        config_free(cfg);
        return rc == 0 ? CLI_EXIT_OK : cli_fail("backup", &err);
    }
    rc = cli_accounts_select(cfg, account, &first, &count, &err);
    if (rc == 0 && maildir != NULL && count > 1)
        rc = mr_error_set(&err, MR_E_INVALID, "--from-maildir with several accounts: give "
                          "--account NAME too");
    if (rc != 0)
        ;
    else if (cutoff_text != NULL)
        rc = mrtime_parse(cutoff_text, cfg->retention.timezone, &cutoff, &err);
    else if (!all)
        rc = mrtime_month_start(time(NULL), cfg->retention.timezone, &cutoff, &err);
    if (rc == 0)
        rc = cli_sweep_tmp(cfg, ctx->log, &err);
    if (rc == 0)
        rc = cli_keys_load(cfg, CLI_NEED_CERTS | CLI_NEED_PSEUDONYM_KEY | CLI_NEED_SIGNER,
                           &k, &err);
    if (rc == 0)
        rc = audit_open(&audit, cfg->audit.log, &err);
    if (rc == 0)
        rc = cli_ledger_anchor(cfg, &k, audit, ctx->log, &err);
    if (rc == 0)
        rc = cli_store_attach(cfg, &store, &err);
    if (rc == 0)
        progress = cli_progress_open(pmode);
    if (rc == 0 && maildir != NULL)
        rc = run_batch(ctx, cfg, &cfg->accounts[first], &k, audit, mailbox, maildir, cutoff,
                       progress, &err);
    for (size_t x = first; rc == 0 && maildir == NULL && x < first + count; x++) {
        const struct config_account *a = &cfg->accounts[x];
        for (size_t i = 0; rc == 0 && i < a->mailboxes.n; i++) {
            if (mailbox != NULL && strcmp(mailbox, a->mailboxes.items[i]) != 0)
                continue;
            rc = run_batch(ctx, cfg, a, &k, audit, a->mailboxes.items[i], NULL, cutoff,
                           progress, &err);
        }
    }
    progress_close(progress);
    cli_store_detach(store);
    audit_close(audit);
    cli_keys_release(&k);
    config_free(cfg);
    return rc == 0 ? CLI_EXIT_OK : cli_fail("backup", &err);
}
