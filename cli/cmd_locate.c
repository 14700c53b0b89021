/* cmd_locate.c — `mailret locate --add BATCH...` (see backup/locator.h): IT gives a batch
 * written before locators existed the locator that targeted restores use. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_it.h"
#include "backup/batchdir.h"
#include "backup/archive.h"
#include "backup/locator.h"
#include "common/audit.h"
#include "common/config.h"
#include "common/log.h"
#include "common/secret.h"
#include "keys/keys.h"


/* The batch's new locator goes to the object store too, where one is attached: on IT's
 * machine that one object (the cache holds only part of the batch, and IT's credentials
 * must then be allowed to put); on the host the batch is mirrored again. */
static int mirror_locator(const char *dir, mr_error *err)
{
    struct archive_manifest m;
    int rc;

    if (batchdir_store_caching()) {
        rc = batchdir_store_put_new(dir, batchdir_name(BATCHDIR_LOCATOR), err);
        if (rc == 1)
            rc = 0;     /* not a directory of the cache */
    } else if (batchdir_store_current() == NULL) {
        return 0;
    } else {
        rc = archive_manifest_read_unverified(dir, &m, err);
        if (rc == 0) {
            rc = batchdir_store_push(dir, m.expires, err);
            archive_manifest_clear(&m);
        }
    }
    return rc != 0 ? mr_error_prefix(err, "locator added here, but not in the object store")
                   : 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret locate --add BATCH... --it-key FILE [--reid-key FILE]\n"
            "                      [--host-key FILE]... [--legacy-manifest-key FILE]\n"
            "                      [--archive-dir DIR --vault-dir DIR --audit-log FILE]\n"
            "\n"
            "IT: build the locator of batches written before locators existed, so that\n"
            "restore --person, --message-id and date ranges decrypt only the volumes that\n"
            "hold a match.  Each batch's manifest must be authentic (pinned host keys or the\n"
            "legacy manifest key); every volume is decrypted and checked as a restore does,\n"
            "and the locator is sealed to the batch's reid epoch key.  The manifest is not\n"
            "changed: the locator is authenticated by a MAC only the reid key's holder can\n"
            "compute.  A batch that has a locator is left alone.  Audited per batch.\n"
            "Passphrases: --it-passphrase-file / $MAILRET_IT_PASSPHRASE / terminal.\n"
            "With [archive] store = s3 on IT's machine the locator is also put into the\n"
            "store (credentials that may write).\n"
            "BATCH is a batch id, a directory name, or 'all'.  Exit 0 ok, 1 a problem.\n");
}

int cmd_locate(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "add", no_argument, NULL, 'a' },
        CLI_IT_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    struct cli_it_args args = { 0 };
    struct cli_it it;
    bool add = false;
    int opt, rc = 0, failures = 0;
    mr_error err;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == 'a') {
            add = true;
            continue;
        }
        rc = cli_it_arg(&args, "locate", opt, optarg);
        if (rc == 0)
            return cli_usage_error("locate", "unknown option");
        if (rc != 1)
            return rc;
    }
    if (!add)
        return cli_usage_error("locate", "say --add");
    if (optind >= argc)
        return cli_usage_error("locate", "name a batch (or 'all')");
    if (args.it_key == NULL)
        return cli_usage_error("locate", "--it-key FILE is required: only IT can read a batch");
    mr_error_clear(&err);
    rc = cli_it_open(ctx, &args, false, &it, &err);
    if (rc != 0)
        return cli_fail("locate", &err);
    rc = cli_it_keys(&it, &args, true, true, &err);
    if (rc == 0)
        rc = cli_it_ready(&it, true, &err);
    if (rc != 0) {
        cli_it_close(&it);
        return cli_fail("locate", &err);
    }
    for (int i = optind; i < argc; i++) {
        struct archive_batch_ref *refs = NULL;
        size_t n = 0;
        char dir[4096];

        if (strcmp(argv[i], "all") == 0) {
            rc = archive_batch_list(it.archive_dir, NULL, &refs, &n, &err);
        } else {
            rc = archive_batch_find(it.archive_dir, argv[i], dir, sizeof dir, &err);
            if (rc == 0 && (refs = calloc(1, sizeof *refs)) == NULL)
                rc = mr_error_set(&err, MR_E_NOMEM, "out of memory");
            if (rc == 0) {
                snprintf(refs->dir, sizeof refs->dir, "%s", dir);
                refs->has_manifest = true;
                n = 1;
            }
        }
        if (rc != 0) {
            cli_fail("locate", &err);
            failures++;
            continue;
        }
        for (size_t j = 0; j < n; j++) {
            const char *base = strrchr(refs[j].dir, '/') + 1;
            struct locator_add_options lo = { .dir = refs[j].dir, .vault_dir = it.vault_dir,
                                              .trust = &it.trust.trust, .it_key = it.it,
                                              .reid_key = it.reid, .audit = it.audit };
            char batch[64], line[MR_ERROR_MSG_MAX];
            size_t msgs = 0;
            if (!refs[j].has_manifest)
                continue;       /* an interrupted run is not a batch */
            mr_error_clear(&err);
            rc = locator_add(&lo, batch, &msgs, &err);
            if (rc == 0)
                rc = mirror_locator(refs[j].dir, &err);
            if (rc == 0) {
                printf("%s\tlocator added\t%zu messages\n", base, msgs);
            } else if (rc == MR_E_EXISTS) {
                printf("%s\thas a locator\n", base);
            } else {
                snprintf(line, sizeof line, "%s", err.msg);
                log_scrub(line);
                printf("%s\tFAILED (%s)\t%s\n", base, mr_status_name(rc), line);
                failures++;
            }
        }
        free(refs);
    }
    cli_it_close(&it);
    return failures == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}
