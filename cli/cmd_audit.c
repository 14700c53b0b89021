/* cmd_audit.c — `mailret audit verify [-c CONF | --log PATH]`: check the audit log's hash
 * chain and its head file (common/audit.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/audit.h"
#include "common/config.h"

static void audit_usage(FILE *out)
{
    fprintf(out,
            "usage: mailret audit verify [-c FILE | --log PATH]\n"
            "\n"
            "Verify the audit log: every line is a JSON record, seq counts up by one, each\n"
            "record carries the SHA-256 of the one before, and the head file beside the log\n"
            "matches the last record (so that records cut off the end are noticed too).\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE  take the log's path from [audit] log in FILE\n"
            "      --log PATH     verify this log file (no configuration needed)\n"
            "  -h, --help         this text\n"
            "\n"
            "Exit status: 0 intact, 1 damaged or unreadable (the first bad line is named),\n"
            "2 usage error.\n");
}

static int audit_verify_cmd(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "log", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *log_path = NULL;
    struct mr_config *cfg = NULL;
    mr_error err;
    size_t n = 0;
    int opt, rc;

    optind = 0;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            ctx->config_path = optarg;
            ctx->config_explicit = true;
            break;
        case 'l':
            log_path = optarg;
            break;
        case 'h':
            audit_usage(stdout);
            return CLI_EXIT_OK;
        default:
            return cli_usage_error("audit", "bad option");
        }
    }
    if (optind < argc)
        return cli_usage_error("audit", "unexpected argument '%s'", argv[optind]);
    mr_error_clear(&err);
    if (log_path == NULL) {
        if (cli_config_load(ctx, &cfg, &err) != 0)
            return cli_fail("audit", &err);
        log_path = cfg->audit.log;
    }
    rc = audit_verify(log_path, &n, &err);
    if (rc == 0) {
        printf("audit log %s: %zu records, chain intact\n", log_path, n);
        log_info(ctx->log, "audit log %s verified: %zu records", log_path, n);
    } else {
        log_error(ctx->log, "audit log verification failed (%s)", mr_status_name(rc));
    }
    config_free(cfg);
    return rc == 0 ? CLI_EXIT_OK : cli_fail("audit", &err);
}

int cmd_audit(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        audit_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "verify") == 0)
        return audit_verify_cmd(ctx, argc - 1, argv + 1);
    return cli_usage_error("audit", "unknown subcommand '%s'", argv[1]);
}
