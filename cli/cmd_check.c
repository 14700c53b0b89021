/* cmd_check.c — `mailret check`: the compliance check (purge/check.h) for monitoring and
 * auditors.  Exit status 0 all good, 1 warnings, 2 violations (or the check could not
 * run: compliance not shown is not compliance). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_setup.h"
#include "common/config.h"
#include "common/mrtime.h"
#include "common/secret.h"
#include "ingest/ingest_setup.h"
#include "purge/check.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret check [--json] [--offline] [--at DATE]\n"
            "\n"
            "Compliance check.  For every batch: mailbox, period, created, expires and a\n"
            "status: ok, expiring (within [retention] expiring_warn_days), OVERDUE (past\n"
            "expiry and still restorable), held (legal hold), damaged (manifest or volume),\n"
            "key-missing, key-present-after-expiry, expired (tombstone), incomplete (no\n"
            "manifest).  For every configured mailbox: nothing older than the last monthly\n"
            "cutoff is left (the purge really ran; one day of grace after the 1st).  The\n"
            "audit log's hash chain verifies.  See docs/COMPLIANCE.md.\n"
            "\n"
            "  --json        one JSON object instead of the table\n"
            "  --offline     do not connect to IMAP (mailboxes are not checked)\n"
            "  --at DATE     evaluate as of DATE (YYYY-MM-DD local, or ...THH:MM:SSZ)\n"
            "\n"
            "Exit status: 0 all good, 1 warnings, 2 violations or the check could not run.\n");
}

int cmd_check(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "offline", no_argument, NULL, 'o' },
        { "at", required_argument, NULL, 'a' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct check_options co;
    struct check_report *report = NULL;
    struct mr_config *cfg = NULL;
    struct cli_keys keys;
    struct imap_options io;
    const char *at_text = NULL;
    char *password = NULL;
    bool json = false, offline = false;
    mr_error err;
    int o, rc, status;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'j': json = true; break;
        case 'o': offline = true; break;
        case 'a': at_text = optarg; break;
        default: return cli_usage_error("check", "bad option");
        }
    }
    if (optind < argc)
        return cli_usage_error("check", "unexpected argument '%s'", argv[optind]);
    memset(&co, 0, sizeof co);
    memset(&keys, 0, sizeof keys);
    mr_error_clear(&err);
    co.at = time(NULL);
    rc = cli_config_load(ctx, &cfg, &err);
    if (rc == 0 && at_text != NULL)
        rc = mrtime_parse(at_text, cfg->retention.timezone, &co.at, &err);
    if (rc == 0)
        rc = cli_keys_load(cfg, CLI_NEED_TRUST, &keys, &err);
    if (rc == 0 && !offline)
        rc = ingest_setup_imap_options(cfg, &io, &password, &err);
    if (rc == 0) {
        io.password = password;
        io.log = ctx->log;
        co.archive_dir = cfg->archive.dir;
        co.vault_dir = cfg->keys.vault_dir;
        co.trust = &keys.trust;
        co.warn_days = cfg->retention.expiring_warn_days;
        co.zone = cfg->retention.timezone;
        co.imap = offline ? NULL : &io;
        co.mailboxes = (const char *const *)cfg->mailboxes.items;
        co.n_mailboxes = cfg->mailboxes.n;
        co.grace = 86400;
        co.audit_path = cfg->audit.log;
        co.log = ctx->log;
        rc = check_run(&co, &report, &err);
    }
    secret_free(password);
    cli_keys_release(&keys);
    config_free(cfg);
    if (rc != 0) {
        cli_fail("check", &err);
        return CLI_EXIT_USAGE;  /* 2: not shown compliant */
    }
    if (json) {
        if (check_report_json(stdout, report, &err) != 0) {
            check_report_free(report);
            cli_fail("check", &err);
            return 2;
        }
    } else {
        check_report_print(stdout, report);
    }
    fflush(stdout);
    status = (int)report->level;
    if (status != 0)
        log_warn(ctx->log, "compliance check: %zu warning(s), %zu violation(s)",
                 report->warnings, report->violations);
    check_report_free(report);
    return status;
}
