/* cmd_ingest.c — `mailret ingest`: copy casework mail from the configured shared mailboxes
 * into the member system (ingest/ingest.h) and print the per-mailbox report. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/config.h"
#include "common/runlock.h"
#include "ingest/ingest.h"
#include "ingest/ingest_setup.h"

static void ingest_usage(FILE *out)
{
    fprintf(out,
            "usage: mailret ingest [--json] [--mailbox NAME]... [--batch N] [--max-size SIZE]\n"
            "\n"
            "Copy casework mail from the shared mailboxes ([mailboxes] in the configuration)\n"
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
            "      --mailbox NAME  only this mailbox (repeatable; default: all configured)\n"
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
        { "batch", required_argument, NULL, 'b' },
        { "max-size", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct mr_config *cfg = NULL;
    ingest_setup *setup = NULL;
    runlock *lock = NULL;
    struct ingest_report *report = NULL;
    struct ingest_options *opt;
    const char **only = NULL;
    size_t n_only = 0;
    unsigned long batch = 0;
    uint64_t max_size = 0;
    bool json = false, skipped = false;
    char *jbuf = NULL;          /* the JSON report, printed last with any failure added */
    size_t jlen = 0;
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
    if (rc != 0 || (rc = ingest_setup_open(cfg, ctx->log, &setup, &err)) != 0)
        goto out;
    opt = ingest_setup_options(setup);
    if (n_only > 0) {
        opt->mailboxes = only;
        opt->n_mailboxes = n_only;
    }
    if (batch > 0)
        opt->batch_size = batch;
    if (max_size > 0)
        opt->max_size = max_size;
    rc = ingest_run(opt, &report, &err);
    if (report != NULL) {
        if (json) {
            mr_error jerr;
            FILE *mem = open_memstream(&jbuf, &jlen);
            if ((mem == NULL || ingest_report_json(mem, report, &jerr) != 0) && rc == 0) {
                if (mem == NULL)
                    mr_error_set(&jerr, MR_E_NOMEM, "cannot build the JSON report");
                err = jerr;
                rc = jerr.code;
            }
            if (mem != NULL)
                fclose(mem);
        } else if (report->connected) {
            ingest_report_print(stdout, report);
        }
        fflush(stdout);
    }
out:
    ingest_report_free(report);
    ingest_setup_close(setup);
    runlock_release(lock);
    config_free(cfg);
    free(only);
    if (json && !skipped)
        (void)cli_json_result(stdout, "ingest", jbuf, rc == 0 ? NULL : &err);
    free(jbuf);
    return rc == 0 ? CLI_EXIT_OK : cli_fail("ingest", &err);
}
