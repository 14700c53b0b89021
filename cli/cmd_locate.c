/* cmd_locate.c — `mailret locate --add BATCH...` (see backup/locator.h): IT gives a batch
 * written before locators existed the locator that targeted restores use. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_setup.h"
#include "cli/cli_store.h"
#include "backup/archive.h"
#include "backup/batchdir.h"
#include "backup/locator.h"
#include "common/audit.h"
#include "common/config.h"
#include "common/log.h"
#include "common/secret.h"
#include "keys/keys.h"

#define MAX_KEYS 64

/* The batch's new locator goes to the object store too, where one is attached. */
static int mirror_locator(const char *dir, mr_error *err)
{
    struct archive_manifest m;
    int rc;

    if (batchdir_store_current() == NULL)
        return 0;
    rc = archive_manifest_read_unverified(dir, &m, err);
    if (rc == 0) {
        rc = batchdir_store_push(dir, m.expires, err);
        archive_manifest_clear(&m);
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
            "BATCH is a batch id, a directory name, or 'all'.  Exit 0 ok, 1 a problem.\n");
}

int cmd_locate(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "add", no_argument, NULL, 'a' },
        { "it-key", required_argument, NULL, 'k' },
        { "it-passphrase-file", required_argument, NULL, 'P' },
        { "reid-key", required_argument, NULL, 'K' },
        { "reid-passphrase-file", required_argument, NULL, 'Q' },
        { "host-key", required_argument, NULL, 'H' },
        { "legacy-manifest-key", required_argument, NULL, 'G' },
        { "archive-dir", required_argument, NULL, 'A' },
        { "vault-dir", required_argument, NULL, 'V' },
        { "audit-log", required_argument, NULL, 'L' },
        { NULL, 0, NULL, 0 },
    };
    const char *it_key = NULL, *it_pass = NULL, *reid_key = NULL, *reid_pass = NULL;
    const char *host_keys[MAX_KEYS], *legacy_key = NULL;
    const char *archive_dir = NULL, *vault_dir = NULL, *audit_path = NULL;
    size_t n_host_keys = 0;
    struct cli_trust trust = { 0 };
    struct mr_config *cfg = NULL;
    audit_log *audit = NULL;
    EVP_PKEY *it = NULL, *reid = NULL;
    mr_store *store = NULL;
    bool add = false;
    int opt, rc = 0, failures = 0;
    mr_error err;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'a': add = true; break;
        case 'k': it_key = optarg; break;
        case 'P': it_pass = optarg; break;
        case 'K': reid_key = optarg; break;
        case 'Q': reid_pass = optarg; break;
        case 'H':
            if (n_host_keys == MAX_KEYS)
                return cli_usage_error("locate", "too many --host-key");
            host_keys[n_host_keys++] = optarg;
            break;
        case 'G': legacy_key = optarg; break;
        case 'A': archive_dir = optarg; break;
        case 'V': vault_dir = optarg; break;
        case 'L': audit_path = optarg; break;
        default: return cli_usage_error("locate", "unknown option");
        }
    }
    if (!add)
        return cli_usage_error("locate", "say --add");
    if (optind >= argc)
        return cli_usage_error("locate", "name a batch (or 'all')");
    if (it_key == NULL)
        return cli_usage_error("locate", "--it-key FILE is required: only IT can read a batch");
    mr_error_clear(&err);
    /* The configuration is optional on IT's machine; explicit options win. */
    if (archive_dir == NULL || vault_dir == NULL || audit_path == NULL
        || ctx->config_explicit) {
        rc = cli_config_load(ctx, &cfg, &err);
        if (rc != 0)
            return cli_fail("locate", &err);
        if (archive_dir == NULL)
            archive_dir = cfg->archive.dir;
        if (vault_dir == NULL)
            vault_dir = cfg->keys.vault_dir;
        if (audit_path == NULL)
            audit_path = cfg->audit.log;
    }
    rc = cli_trust_setup(cfg, host_keys, n_host_keys, legacy_key, false, &trust, &err);
    if (rc == 0)
        rc = cli_private_key_load(it_key, it_pass, "MAILRET_IT_PASSPHRASE",
                                  "IT key passphrase: ", &it, &err);
    if (rc == 0 && reid_key != NULL)
        rc = cli_private_key_load(reid_key, reid_pass, "MAILRET_REID_PASSPHRASE",
                                  "Re-identification key passphrase: ", &reid, &err);
    if (rc == 0)
        rc = audit_open(&audit, audit_path, &err);
    /* With the configuration's object store: what locate adds is mirrored there. */
    if (rc == 0 && cfg != NULL && batchdir_store_current() == NULL) {
        rc = cli_store_open(cfg, &store, &err);
        if (rc == 0 && store != NULL)
            rc = batchdir_store_attach(archive_dir, store, cfg->archive.store_prefix, &err);
    }
    if (rc != 0) {
        cli_store_detach(store);
        cli_trust_release(&trust);
        EVP_PKEY_free(it);
        EVP_PKEY_free(reid);
        config_free(cfg);
        return cli_fail("locate", &err);
    }
    for (int i = optind; i < argc; i++) {
        struct archive_batch_ref *refs = NULL;
        size_t n = 0;
        char dir[4096];

        if (strcmp(argv[i], "all") == 0) {
            rc = archive_batch_list(archive_dir, NULL, &refs, &n, &err);
        } else {
            rc = archive_batch_find(archive_dir, argv[i], dir, sizeof dir, &err);
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
            struct locator_add_options lo = { .dir = refs[j].dir, .vault_dir = vault_dir,
                                              .trust = &trust.trust, .it_key = it,
                                              .reid_key = reid, .audit = audit };
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
    cli_store_detach(store);
    audit_close(audit);
    cli_trust_release(&trust);
    EVP_PKEY_free(it);
    EVP_PKEY_free(reid);
    config_free(cfg);
    return failures == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}
