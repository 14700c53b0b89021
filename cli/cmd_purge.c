/* cmd_purge.c — `mailret purge`: the monthly purge (purge/purge.h).  Maps the
 * configuration onto purge_options, takes the run lock, prints the report. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/progress.h"
#include "cli/cli_setup.h"
#include "common/audit.h"
#include "common/config.h"
#include "common/mrtime.h"
#include "common/runlock.h"
#include "common/secret.h"
#include "ingest/ingest_setup.h"
#include "purge/journal.h"
#include "purge/purge.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret purge [--dry-run] [--cutoff DATE] [--mailbox NAME]...\n"
            "                     [--allow-plain-expunge] [--json] [--lock-wait SECONDS]\n"
            "                     [--progress | --no-progress]\n"
            "\n"
            "The monthly purge.  First ingest (casework into the member system); then, per\n"
            "configured mailbox: finish any batch an interrupted purge left behind; select\n"
            "the messages whose INTERNALDATE is before the cutoff (default 00:00 on the first\n"
            "of this month, [retention] timezone); archive them as one pseudonymised,\n"
            "encrypted batch; and only when every volume is written, read back and verified,\n"
            "UID STORE \\Deleted + UID EXPUNGE exactly those UIDs.  A journal in the state\n"
            "directory makes every step resumable: re-run after a crash.  Runs under the\n"
            "lock <state dir>/mailret.lock.  See docs/PURGE.md.\n"
            "\n"
            "A message older than the cutoff stays on the server, listed by UID with its\n"
            "reason, while the member system has not accepted it (the ingest state says\n"
            "which) or ingest has not seen it; everything else is purged.  A mailbox that\n"
            "fails does not stop the others.\n"
            "\n"
            "  --dry-run              show what would be archived, deleted and held back\n"
            "                         (from the ingest state, delivering nothing); change\n"
            "                         nothing\n"
            "  --cutoff DATE          YYYY-MM-DD (local) or YYYY-MM-DDTHH:MM:SSZ; not in\n"
            "                         the future\n"
            "  --mailbox NAME         only this configured mailbox (repeatable)\n"
            "  --allow-plain-expunge  on a server without UIDPLUS, use plain EXPUNGE, but\n"
            "                         only if no other message carries \\Deleted\n"
            "  --json                 print the report as JSON (on failure with \"error\"\n"
            "                         and \"message\")\n"
            "  --progress, --no-progress  a progress line on stderr (messages, bytes,\n"
            "                         rate, ETA); default on when stderr is a terminal and\n"
            "                         not under systemd\n"
            "  --lock-wait SECONDS    wait this long for another mailret run (an ingest)\n"
            "                         to finish (default 900; 0 = fail at once)\n"
            "\n"
            "Exit status: 0 done (also when nothing was old enough), 1 a mailbox failed or\n"
            "the ingest before it did (the rest was purged; nothing unverified or\n"
            "undelivered was deleted; re-run to resume), 2 usage error.\n");
}

static bool configured(const struct mr_config *cfg, const char *mailbox)
{
    for (size_t i = 0; i < cfg->mailboxes.n; i++)
        if (strcmp(cfg->mailboxes.items[i], mailbox) == 0)
            return true;
    return false;
}

int cmd_purge(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "dry-run", no_argument, NULL, 'n' },
        { "cutoff", required_argument, NULL, 'c' },
        { "mailbox", required_argument, NULL, 'm' },
        { "allow-plain-expunge", no_argument, NULL, 'p' },
        { "json", no_argument, NULL, 'j' },
        { "lock-wait", required_argument, NULL, 'w' },
        { "progress", no_argument, NULL, 'G' },
        { "no-progress", no_argument, NULL, 'g' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct purge_options po;
    struct mr_config *cfg = NULL;
    struct cli_keys keys;
    struct archive_options ao;
    struct imap_options io;
    struct purge_report *report = NULL;
    ingest_setup *isetup = NULL;
    runlock *lock = NULL;
    audit_log *audit = NULL;
    const char *cutoff_text = NULL, **only = NULL;
    char *password = NULL, journal[4096], istate[4096], account[512];
    size_t n_only = 0, jlen = 0;
    char *jbuf = NULL;          /* the JSON report, printed last with any failure added */
    bool json = false;
    enum cli_progress_mode progress = CLI_PROGRESS_AUTO;
    mr_error err;
    int o, rc, lock_wait = CLI_LOCK_WAIT_DEFAULT_S;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    memset(&po, 0, sizeof po);
    memset(&keys, 0, sizeof keys);
    mr_error_clear(&err);
    if ((only = calloc((size_t)argc, sizeof *only)) == NULL) {
        mr_error_set(&err, MR_E_NOMEM, "out of memory");
        return cli_fail("purge", &err);
    }
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'n': po.dry_run = true; break;
        case 'c': cutoff_text = optarg; break;
        case 'm': only[n_only++] = optarg; break;
        case 'p': po.allow_plain_expunge = true; break;
        case 'j': json = true; break;
        case 'G': progress = CLI_PROGRESS_ON; break;
        case 'g': progress = CLI_PROGRESS_OFF; break;
        case 'w':
            if (cli_parse_seconds(optarg, &lock_wait))
                break;
            free(only);
            return cli_usage_error("purge", "--lock-wait takes seconds (0-86400)");
        default:
            free(only);
            return cli_usage_error("purge", "bad option");
        }
    }
    if (optind < argc) {
        free(only);
        return cli_usage_error("purge", "unexpected argument '%s'", argv[optind]);
    }
    rc = cli_config_load(ctx, &cfg, &err);
    for (size_t i = 0; rc == 0 && i < n_only; i++)
        if (!configured(cfg, only[i]))
            rc = mr_error_set(&err, MR_E_CONFIG, "mailbox %s is not in [mailboxes]", only[i]);
    if (rc == 0 && cutoff_text != NULL) {
        rc = mrtime_parse(cutoff_text, cfg->retention.timezone, &po.cutoff, &err);
        if (rc == 0 && po.cutoff > time(NULL))
            rc = mr_error_set(&err, MR_E_INVALID, "--cutoff %s lies in the future", cutoff_text);
    } else if (rc == 0) {
        rc = mrtime_month_start(time(NULL), cfg->retention.timezone, &po.cutoff, &err);
    }
    /* The lock before anything reads or writes state: two purges must never interleave. */
    if (rc == 0)
        rc = runlock_acquire(cfg->state.dir, lock_wait, &lock, &err);
    if (rc == 0 && !po.dry_run)
        rc = cli_sweep_tmp(cfg, ctx->log, &err);
    if (rc == 0)
        rc = cli_keys_load(cfg, CLI_NEED_CERTS | CLI_NEED_PSEUDONYM_KEY
                                      | CLI_NEED_SIGNER, &keys, &err);
    if (rc == 0)
        rc = audit_open(&audit, cfg->audit.log, &err);
    if (rc == 0 && !po.dry_run)
        rc = cli_ledger_anchor(cfg, &keys, audit, ctx->log, &err);
    if (rc == 0)
        rc = cli_state_path(cfg, PURGE_JOURNAL_FILE, journal, sizeof journal, &err);
    if (rc == 0)
        rc = cli_state_path(cfg, INGEST_STATE_FILE, istate, sizeof istate, &err);
    if (rc == 0)
        rc = ingest_setup_imap_options(cfg, &io, &password, &err);
    if (rc == 0 && !po.dry_run)
        rc = ingest_setup_open(cfg, ctx->log, &isetup, &err);
    if (rc == 0) {
        io.password = password;
        io.log = ctx->log;
        /* max_message_size limits ingest only: purge archives whatever the server holds. */
        io.max_literal = PURGE_MAX_MESSAGE_SIZE;
        ingest_account_key(&io, NULL, account, sizeof account);
        po.ingest_state = istate;
        po.account = account;
        cli_archive_options(cfg, &keys, audit, ctx->log, &ao);
        po.imap = &io;
        po.mailboxes = n_only > 0 ? only : (const char *const *)cfg->mailboxes.items;
        po.n_mailboxes = n_only > 0 ? n_only : cfg->mailboxes.n;
        po.archive = &ao;
        po.trust = &keys.trust;
        po.retention_years = cfg->retention.years;
        po.zone = cfg->retention.timezone;
        po.journal_path = journal;
        po.ingest = isetup != NULL ? ingest_setup_options(isetup) : NULL;
        if (po.ingest != NULL && n_only > 0) {
            /* Ingest exactly the mailboxes about to be purged. */
            po.ingest->mailboxes = only;
            po.ingest->n_mailboxes = n_only;
        }
        po.audit = audit;
        po.log = ctx->log;
        po.hook = purge_test_crash_hook;
        po.progress = cli_progress_open(progress);
        rc = purge_run(&po, &report, &err);
        if (report != NULL) {
            if (json) {
                mr_error jerr;
                FILE *mem = open_memstream(&jbuf, &jlen);
                if ((mem == NULL || purge_report_json(mem, report, &jerr) != 0) && rc == 0) {
                    if (mem == NULL)
                        mr_error_set(&jerr, MR_E_NOMEM, "cannot build the JSON report");
                    err = jerr;
                    rc = jerr.code;
                }
                if (mem != NULL)
                    fclose(mem);
            } else {
                purge_report_print(stdout, report);
            }
            fflush(stdout);
        }
    }
    progress_close(po.progress);
    purge_report_free(report);
    secret_free(password);
    ingest_setup_close(isetup);
    audit_close(audit);
    cli_keys_release(&keys);
    runlock_release(lock);
    config_free(cfg);
    free(only);
    if (json)
        (void)cli_json_result(stdout, "purge", jbuf, rc == 0 ? NULL : &err);
    free(jbuf);
    return rc == 0 ? CLI_EXIT_OK : cli_fail("purge", &err);
}
