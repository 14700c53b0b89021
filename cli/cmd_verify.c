/* cmd_verify.c — `mailret verify BATCH [--deep]` (see backup/verify.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/cli_it.h"
#include "backup/archive.h"
#include "backup/verify.h"
#include "common/audit.h"
#include "common/config.h"
#include "common/secret.h"
#include "keys/keys.h"


static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret verify BATCH... [--deep --it-key FILE [--reid-key FILE]]\n"
            "                      [--host-key FILE]... [--legacy-manifest-key FILE]\n"
            "                      [--trust-unsigned]\n"
            "                      [--archive-dir DIR --vault-dir DIR --audit-log FILE]\n"
            "\n"
            "Check that a batch is authentic and whole: the manifest's Ed25519 signature\n"
            "against the pinned host keys (--host-key FILE, the host's keyring; default\n"
            "[keys] host_keyring; batches from before signing: the legacy manifest HMAC),\n"
            "every volume's and reid file's size and SHA-256, that no unlisted volume is\n"
            "present, that both sealed epoch keys are in the vault and their certificates\n"
            "are the ones the manifest names.  --deep (IT): also unseal the epoch keys,\n"
            "decrypt everything and check every message's SHA-256 before and after\n"
            "re-identification.  On IT's machine give --archive-dir/--vault-dir/--audit-log\n"
            "instead of a configuration.  --trust-unsigned checks the rest of a batch whose\n"
            "manifest is not authentic (audited); such a batch is still reported as failed.\n"
            "Passphrases: --it-passphrase-file / $MAILRET_IT_PASSPHRASE / terminal.\n"
            "With [archive] store = s3 on IT's machine, every object is read back from the\n"
            "store and checked (not the cache in [archive] dir).\n"
            "BATCH is a batch id, a directory name, or 'all'.  Exit 0 ok, 1 a problem.\n");
}

int cmd_verify(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "deep", no_argument, NULL, 'd' },
        CLI_IT_LONG_OPTIONS,
        CLI_IT_TRUST_UNSIGNED_OPTION,
        { NULL, 0, NULL, 0 },
    };
    struct cli_it_args args = { 0 };
    struct cli_it it;
    bool deep = false;
    int opt, rc = 0, failures = 0;
    mr_error err;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == 'd') {
            deep = true;
            continue;
        }
        rc = cli_it_arg(&args, "verify", opt, optarg);
        if (rc == 0)
            return cli_usage_error("verify", "unknown option");
        if (rc != 1)
            return rc;
    }
    if (optind >= argc)
        return cli_usage_error("verify", "name a batch (or 'all')");
    if (deep && args.it_key == NULL)
        return cli_usage_error("verify", "--deep needs --it-key FILE");
    mr_error_clear(&err);
    rc = cli_it_open(ctx, &args, false, &it, &err);
    if (rc != 0)
        return cli_fail("verify", &err);
    if (deep)
        rc = cli_it_keys(&it, &args, true, true, &err);
    if (rc == 0)
        rc = cli_it_ready(&it, false, &err);
    if (rc != 0) {
        cli_it_close(&it);
        return cli_fail("verify", &err);
    }
    for (int i = optind; i < argc; i++) {
        struct archive_batch_ref *refs = NULL;
        size_t n = 0;
        char dir[4096];

        if (strcmp(argv[i], "all") == 0) {
            rc = archive_batch_list(it.archive_dir, NULL, &refs, &n, &err);
        } else {
            rc = archive_batch_find(it.archive_dir, argv[i], dir, sizeof dir, &err);
            if (rc == 0 && (refs = calloc(1, sizeof *refs)) != NULL) {
                snprintf(refs->dir, sizeof refs->dir, "%s", dir);
                refs->has_manifest = true;
                n = 1;
            }
        }
        if (rc != 0) {
            cli_fail("verify", &err);
            failures++;
            continue;
        }
        for (size_t j = 0; j < n; j++) {
            const char *base = strrchr(refs[j].dir, '/') + 1;
            struct verify_options vo = { .dir = refs[j].dir, .vault_dir = it.vault_dir,
                                         .trust = &it.trust.trust, .deep = deep,
                                         .it_key = it.it, .reid_key = it.reid,
                                         .audit = it.audit };
            struct verify_report rep;
            char how[128];
            if (!refs[j].has_manifest) {
                printf("%s\tINCOMPLETE (no manifest: an interrupted run, not a batch)\n", base);
                failures++;
                continue;
            }
            mr_error_clear(&err);
            rc = verify_batch(&vo, &rep, &err);
            if (rep.auth == ARCHIVE_AUTH_SIGNED)
                snprintf(how, sizeof how, "signed by %s", rep.signer);
            else
                snprintf(how, sizeof how, "%s", archive_auth_name(rep.auth));
            if (rc == 0 && rep.auth == ARCHIVE_AUTH_OVERRIDDEN) {
                char line[sizeof rep.auth_problem];
                snprintf(line, sizeof line, "%s", rep.auth_problem);
                log_scrub(line);
                printf("%s\tUNVERIFIED\tthe manifest is not authentic (%s); files match it"
                       "%s\n", base, line, deep ? " and decrypt" : "");
                failures++;
            } else if (rc == 0 && deep) {
                printf("%s\tok\t%zu volumes\t%zu messages decrypted and checked\t%s\n", base,
                       rep.volumes, rep.messages, how);
            } else if (rc == 0) {
                printf("%s\tok\t%zu volumes\t%s\n", base, rep.volumes, how);
            } else {
                char line[MR_ERROR_MSG_MAX];
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
