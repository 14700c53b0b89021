/* cmd_members.c — `mailret members import FILE.csv`: load the member registry into the
 * SQLite member system (ingest/members_import.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/config.h"
#include "common/durable.h"
#include "ingest/members.h"
#include "ingest/members_import.h"

static void members_usage(FILE *out)
{
    fprintf(out,
            "usage: mailret members import [--db PATH] FILE.csv\n"
            "\n"
            "Load the member registry that ingest routes by.  FILE.csv is UTF-8, RFC 4180,\n"
            "with the header row\n"
            "    member_id,cpr,name,emails,cases\n"
            "where emails and cases are lists separated by ';'.  The file is the whole\n"
            "registry: it replaces the previous one in one transaction (documents already\n"
            "stored stay).  Every bad row is reported as FILE:LINE: cause, without the\n"
            "row's values; if any row is bad nothing is changed.\n"
            "\n"
            "Options:\n"
            "      --db PATH  the member database (default: [members] database in the\n"
            "                 configuration, <state dir>/members.sqlite)\n"
            "  -h, --help     this text\n"
            "\n"
            "Exit status: 0 imported, 1 bad rows or other failure, 2 usage error.\n");
}

static void members_print_row_error(void *ctx, const char *msg)
{
    char line[MR_ERROR_MSG_MAX];

    (void)ctx;
    /* The reader names file and line only, but scrub anyway: a file name could be
     * anything. */
    snprintf(line, sizeof line, "%s", msg);
    log_scrub(line);
    fprintf(stderr, "mailret members: %s\n", line);
}

static int members_import_cmd(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option options[] = {
        { "db", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct mr_config *cfg = NULL;
    struct members_import_result res;
    const char *db_path = NULL;
    members_db *db = NULL;
    mr_error err;
    int opt, rc;

    optind = 0;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'd':
            db_path = optarg;
            break;
        case 'h':
            members_usage(stdout);
            return CLI_EXIT_OK;
        default:
            return cli_usage_error("members", "bad option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("members", "import needs exactly one FILE.csv");
    mr_error_clear(&err);
    if (db_path == NULL) {
        if (cli_config_load(ctx, &cfg, &err) != 0)
            return cli_fail("members", &err);
        db_path = cfg->members.database;
        /* The default database lives in the state directory, which may not exist yet. */
        if (durable_mkdirs(cfg->state.dir, 0700, &err) != 0) {
            config_free(cfg);
            return cli_fail("members", &err);
        }
    }
    rc = members_open(db_path, &db, &err);
    if (rc == 0)
        rc = members_import_csv(db, argv[optind], members_print_row_error, NULL, &res, &err);
    if (rc == 0) {
        printf("imported %zu members (%zu addresses, %zu CPR numbers, %zu cases) into %s\n",
               res.members, res.addresses, res.cprs, res.cases, db_path);
        log_info(ctx->log, "member registry imported: %zu members, %zu addresses, %zu CPR "
                           "numbers, %zu cases", res.members, res.addresses, res.cprs, res.cases);
    }
    members_close(db);
    config_free(cfg);
    return rc == 0 ? CLI_EXIT_OK : cli_fail("members", &err);
}

int cmd_members(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        members_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "import") == 0)
        return members_import_cmd(ctx, argc - 1, argv + 1);
    return cli_usage_error("members", "unknown subcommand '%s'", argv[1]);
}
