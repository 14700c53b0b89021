/* cmd_ingest.c — `mailret ingest`: copy casework mail from the configured shared mailboxes
 * into the member system (ingest/ingest.h) and print the per-mailbox report. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_setup.h"
#include "common/config.h"
#include "common/runlock.h"
#include "ingest/ingest.h"

static void ingest_usage(FILE *out)
{
    fprintf(out,
            "usage: mailret ingest [--json] [--account NAME] [--mailbox NAME]... [--batch N]\n"
            "                      [--max-size SIZE]\n"
            "\n"
            "Copy casework mail from the shared mailboxes (every [account NAME]'s mailbox\n"
            "lines, or [mailboxes], in the configuration)\n"
            "into the member system.  Mailboxes are opened read-only (EXAMINE) and fetched\n"
            "with BODY.PEEK[], so flags stay as they are.  Only messages above the last UID\n"
            "ingested are fetched; a re-run after success fetches nothing.  Each message is\n"
            "routed by, in order: a case reference in the subject, the sender's registered\n"
            "address, a registered CPR number in the subject or text; the fund's own mail and\n"
            "auto-replies/bounces are recognised and skipped; everything else is queued as\n"
            "unrouted for manual handling.  A message the member system refuses is recorded\n"
            "by UID in the state and retried first on every run; it holds up nothing else,\n"
            "and purge keeps it on the server until it is delivered.  A mailbox that fails\n"
            "does not stop the others.  See docs/INGEST.md.\n"
            "\n"
            "Options:\n"
            "      --json          print the report as one JSON object (on failure with\n"
            "                      \"error\" and \"message\")\n"
            "      --account NAME  only this account (default: every account, one after the\n"
            "                      other; one that fails does not stop the others)\n"
            "      --mailbox NAME  only this mailbox (repeatable; default: all configured);\n"
            "                      with several accounts, give --account too\n"
            "      --batch N       messages per UID FETCH (default [imap] fetch_batch, 200)\n"
            "      --max-size SIZE skip and record larger messages (default [imap]\n"
            "                      max_message_size, 64M)\n"
            "  -h, --help          this text\n"
            "\n"
            "Exit status: 0 every mailbox ingested, 1 a failure (connection, TLS, login,\n"
            "database, a mailbox) or messages the sink did not take (retried next run; the\n"
            "rest was ingested), 2 usage error.\n");
}

int cmd_ingest(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option options[] = {
        { "json", no_argument, NULL, 'j' },
        { "mailbox", required_argument, NULL, 'm' },
        { "account", required_argument, NULL, 'a' },
        { "batch", required_argument, NULL, 'b' },
        { "max-size", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct mr_config *cfg = NULL;
    cli_ingest *setup = NULL;
    const char *account = NULL;
    size_t first = 0, count = 0;
    json_t *jaccounts = NULL;   /* with named accounts: one report per account */
    mr_error aerr;              /* the first account's failure */
    int arc = 0;
    runlock *lock = NULL;
    struct ingest_report *report = NULL;
    const char **only = NULL;
    size_t n_only = 0;
    unsigned long batch = 0;
    uint64_t max_size = 0;
    bool json = false, skipped = false;
    char *jbuf = NULL;          /* the JSON report, printed last with any failure added */
    mr_error err;
    int o, rc;

    if ((only = calloc((size_t)argc, sizeof *only)) == NULL) {
        mr_error_set(&err, MR_E_NOMEM, "out of memory");
        return cli_fail("ingest", &err);
    }
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        char *end;
        switch (o) {
        case 'j':
            json = true;
            break;
        case 'm':
            only[n_only++] = optarg;
            break;
        case 'a':
            account = optarg;
            break;
        case 'b':
            errno = 0;
            batch = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || batch == 0 || batch > 100000) {
                free(only);
                return cli_usage_error("ingest", "--batch wants a number from 1 to 100000");
            }
            break;
        case 's':
            if (config_parse_size(optarg, &max_size, &err) != 0 || max_size == 0) {
                free(only);
                return cli_usage_error("ingest", "--max-size wants a size such as 64M");
            }
            break;
        case 'h':
            free(only);
            ingest_usage(stdout);
            return CLI_EXIT_OK;
        default:
            free(only);
            return cli_usage_error("ingest", "bad option");
        }
    }
    if (optind < argc) {
        free(only);
        return cli_usage_error("ingest", "unexpected argument '%s'", argv[optind]);
    }
    mr_error_clear(&err);
    if ((rc = cli_config_load(ctx, &cfg, &err)) != 0)
        goto out;
    /* Every five minutes from a timer: while a purge (which ingests first itself), an
     * expire or another ingest runs, this run has nothing to add; skipping is success. */
    rc = runlock_acquire(cfg->state.dir, 0, &lock, &err);
    if (rc == MR_E_STATE) {
        log_info(ctx->log, "another mailret run is active; this ingest skipped (the next "
                           "run catches up)");
        if (json)
            printf("{\"skipped\":\"another mailret run is active\"}\n");
        rc = 0;
        skipped = true;
        goto out;
    }
    if (rc != 0 || (rc = cli_accounts_select(cfg, account, &first, &count, &err)) != 0)
        goto out;
    if (n_only > 0 && count > 1) {
        rc = mr_error_set(&err, MR_E_INVALID, "--mailbox with several accounts: give "
                          "--account NAME too");
        goto out;
    }
    if (!cfg->accounts[0].borrowed && (jaccounts = json_array()) == NULL) {
        rc = mr_error_set(&err, MR_E_NOMEM, "out of memory");
        goto out;
    }
    /* One account after the other, each on its own connection; a failing account is
     * reported and the others still run. */
    for (size_t i = first; i < first + count; i++) {
        const struct config_account *a = &cfg->accounts[i];
        struct ingest_options *opt;

        ingest_report_free(report);
        report = NULL;
        cli_ingest_close(setup);
        setup = NULL;
        rc = cli_ingest_open(cfg, a, ctx->log, &setup, &err);
        if (rc == 0) {
            opt = cli_ingest_options(setup);
            if (n_only > 0) {
                opt->mailboxes = only;
                opt->n_mailboxes = n_only;
            }
            if (batch > 0)
                opt->batch_size = batch;
            if (max_size > 0)
                opt->max_size = max_size;
            rc = ingest_run(opt, &report, &err);
        }
        if (rc != 0 && jaccounts != NULL)
            mr_error_prefix(&err, "account %s", a->name);
        if (rc != 0 && arc == 0) {
            arc = rc;
            aerr = err;
        }
        if (rc != 0 && count > 1)
            log_error(ctx->log, "%s", err.msg);
        if (report == NULL)
            continue;
        if (json) {
            mr_error jerr;
            char *one = NULL;
            size_t one_len = 0;
            FILE *mem = open_memstream(&one, &one_len);
            int jrc = mem == NULL ? -1 : ingest_report_json(mem, report, &jerr);
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
                arc = mr_error_set(&aerr, MR_E_NOMEM, "cannot build the JSON report");
            }
        } else if (report->connected) {
            if (jaccounts != NULL)
                printf("account %s\n", a->name);
            ingest_report_print(stdout, report);
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
out:
    ingest_report_free(report);
    cli_ingest_close(setup);
    json_decref(jaccounts);
    runlock_release(lock);
    config_free(cfg);
    free(only);
    if (json && !skipped)
        (void)cli_json_result(stdout, "ingest", jbuf, rc == 0 ? NULL : &err);
    free(jbuf);
    return rc == 0 ? CLI_EXIT_OK : cli_fail("ingest", &err);
}
