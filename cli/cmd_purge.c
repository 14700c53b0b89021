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
#include "cli/cli_store.h"
#include "common/audit.h"
#include "common/config.h"
#include "common/mrtime.h"
#include "common/runlock.h"
#include "common/secret.h"
#include "purge/journal.h"
#include "purge/purge.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret purge [--dry-run] [--cutoff DATE] [--account NAME]\n"
            "                     [--mailbox NAME]...\n"
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
            "lock <state dir>/mailret.lock.  See docs/PURGE.md.  With [archive] store = s3\n"
            "the batch must also be in the bucket and read back before anything is\n"
            "expunged; when the store fails, the batch stays here and the next purge\n"
            "stores it and expunges.\n"
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
            "  --account NAME         only this account (default: every account, one\n"
            "                         after the other; one that fails does not stop the\n"
            "                         others)\n"
            "  --mailbox NAME         only this configured mailbox (repeatable; with\n"
            "                         several accounts, give --account too)\n"
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

static bool configured(const struct config_account *a, const char *mailbox)
{
    for (size_t i = 0; i < a->mailboxes.n; i++)
        if (strcmp(a->mailboxes.items[i], mailbox) == 0)
            return true;
    return false;
}

/* One account's purge: its connection, ingest first and mailboxes; po holds what all
 * accounts share. */
static int purge_account(struct cli_ctx *ctx, const struct mr_config *cfg,
                         const struct config_account *a, struct purge_options *po,
                         const char *const *only, size_t n_only,
                         struct purge_report **report, mr_error *err)
{
    struct imap_options io;
    cli_ingest *isetup = NULL;
    char *password = NULL, account[512], prefix[CONFIG_ACCOUNT_NAME_MAX + 2];
    int rc = cli_imap_options(a, &io, &password, err);

    if (rc == 0 && !po->dry_run)
        rc = cli_ingest_open(cfg, a, ctx->log, &isetup, err);
    if (rc == 0) {
        io.log = ctx->log;
        /* max_message_size limits ingest only: purge archives whatever the server holds. */
        io.max_literal = PURGE_MAX_MESSAGE_SIZE;
        ingest_account_key(&io, cli_account_state_key(a), account, sizeof account);
        po->account = account;
        po->key_prefix = cli_account_prefix(a, prefix, sizeof prefix);
        po->imap = &io;
        po->mailboxes = n_only > 0 ? only : (const char *const *)a->mailboxes.items;
        po->n_mailboxes = n_only > 0 ? n_only : a->mailboxes.n;
        po->ingest = isetup != NULL ? cli_ingest_options(isetup) : NULL;
        if (po->ingest != NULL && n_only > 0) {
            /* Ingest exactly the mailboxes about to be purged. */
            po->ingest->mailboxes = only;
            po->ingest->n_mailboxes = n_only;
        }
        rc = purge_run(po, report, err);
    }
    po->imap = NULL;
    po->ingest = NULL;
    po->account = po->key_prefix = NULL;
    cli_ingest_close(isetup);
    secret_free(password);
    return rc;
}

int cmd_purge(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "dry-run", no_argument, NULL, 'n' },
        { "cutoff", required_argument, NULL, 'c' },
        { "mailbox", required_argument, NULL, 'm' },
        { "account", required_argument, NULL, 'a' },
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
    struct purge_report *report = NULL;
    json_t *jaccounts = NULL;
    const char *account = NULL;
    size_t first = 0, count = 0;
    runlock *lock = NULL;
    audit_log *audit = NULL;
    mr_store *store = NULL;
    mr_error store_err;
    const char *cutoff_text = NULL, **only = NULL;
    char journal[4096], istate[4096];
    size_t n_only = 0;
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
        case 'a': account = optarg; break;
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
    if (rc == 0)
        rc = cli_accounts_select(cfg, account, &first, &count, &err);
    if (rc == 0 && n_only > 0 && count > 1)
        rc = mr_error_set(&err, MR_E_INVALID, "--mailbox with several accounts: give --account "
                          "NAME too");
    for (size_t i = 0; rc == 0 && i < n_only; i++)
        if (!configured(&cfg->accounts[first], only[i]))
            rc = cfg->accounts[first].borrowed
                     ? mr_error_set(&err, MR_E_CONFIG, "mailbox %s is not in [mailboxes]", only[i])
                     : mr_error_set(&err, MR_E_CONFIG, "mailbox %s is not in [account %s]",
                                    only[i], cfg->accounts[first].name);
    if (rc == 0 && !cfg->accounts[0].borrowed && (jaccounts = json_array()) == NULL)
        rc = mr_error_set(&err, MR_E_NOMEM, "out of memory");
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
    /* The object store every batch is mirrored to: one that cannot be opened fails every
     * mailbox after the ingest, with its one line (a dry run does not need it). */
    if (rc == 0 && !po.dry_run && cli_store_attach(cfg, &store, &store_err) != 0)
        po.store_error = &store_err;
    if (rc == 0)
        rc = cli_state_path(cfg, PURGE_JOURNAL_FILE, journal, sizeof journal, &err);
    if (rc == 0)
        rc = cli_state_path(cfg, CLI_INGEST_STATE_FILE, istate, sizeof istate, &err);
    if (rc == 0) {
        mr_error aerr;
        int arc = 0;

        po.ingest_state = istate;
        cli_archive_options(cfg, &keys, audit, ctx->log, &ao);
        po.archive = &ao;
        po.trust = &keys.trust;
        po.retention_years = cfg->retention.years;
        po.zone = cfg->retention.timezone;
        po.journal_path = journal;
        po.audit = audit;
        po.log = ctx->log;
        po.hook = purge_test_crash_hook;
        po.progress = cli_progress_open(progress);
        /* One account after the other; one that fails does not stop the others. */
        for (size_t i = first; i < first + count; i++) {
            const struct config_account *a = &cfg->accounts[i];
            purge_report_free(report);
            report = NULL;
            rc = purge_account(ctx, cfg, a, &po, only, n_only, &report, &err);
            if (rc != 0 && jaccounts != NULL)
                mr_error_prefix(&err, "account %s", a->name);
            if (rc != 0 && count > 1)
                log_error(ctx->log, "%s", err.msg);
            if (rc != 0 && arc == 0) {
                arc = rc;
                aerr = err;
            }
            if (report == NULL)
                continue;
            if (json) {
                mr_error jerr;
                char *one = NULL;
                size_t one_len = 0;
                FILE *mem = open_memstream(&one, &one_len);
                int jrc = mem == NULL ? mr_error_set(&jerr, MR_E_NOMEM, "cannot build the JSON "
                                                     "report")
                                      : purge_report_json(mem, report, &jerr);
                if (mem != NULL)
                    fclose(mem);
                if (jrc == 0 && jaccounts != NULL) {
                    jrc = cli_json_account_add(jaccounts, a->name, one, &jerr);
                } else if (jrc == 0) {
                    free(jbuf);
                    jbuf = one;
                    one = NULL;
                }
                free(one);
                if (jrc != 0 && arc == 0) {
                    arc = jrc;
                    aerr = jerr;
                }
            } else {
                if (jaccounts != NULL)
                    printf("account %s\n", a->name);
                purge_report_print(stdout, report);
            }
            fflush(stdout);
        }
        if (jaccounts != NULL && json) {
            free(jbuf);
            if ((jbuf = cli_json_accounts_dump(jaccounts)) == NULL && arc == 0)
                arc = mr_error_set(&aerr, MR_E_NOMEM, "cannot build the JSON report");
        }
        rc = arc;
        if (rc != 0)
            err = aerr;
    }
    progress_close(po.progress);
    cli_store_detach(store);
    purge_report_free(report);
    json_decref(jaccounts);
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
