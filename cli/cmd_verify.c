/* cmd_verify.c — `mailret verify BATCH [--deep]` (see backup/verify.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
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
            "\n"
            "Host side: check the manifest's HMAC, every volume's and reid file's size and\n"
            "SHA-256, that no unlisted volume is present and that both sealed epoch keys are\n"
            "in the vault.  --deep (IT): also unseal the epoch keys, decrypt everything and\n"
            "check every message's SHA-256 before and after re-identification.\n"
            "Passphrases: --it-passphrase-file / $MAILRET_IT_PASSPHRASE / terminal.\n"
            "BATCH is a batch id, a directory name, or 'all'.  Exit 0 ok, 1 a problem.\n");
}

int cmd_verify(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "deep", no_argument, NULL, 'd' },
        { "it-key", required_argument, NULL, 'k' },
        { "it-passphrase-file", required_argument, NULL, 'P' },
        { "reid-key", required_argument, NULL, 'K' },
        { "reid-passphrase-file", required_argument, NULL, 'Q' },
        { NULL, 0, NULL, 0 },
    };
    const char *it_key = NULL, *it_pass = NULL, *reid_key = NULL, *reid_pass = NULL;
    struct mr_config *cfg = NULL;
    unsigned char mkey[KEYS_SECRET_LEN];
    audit_log *audit = NULL;
    EVP_PKEY *it = NULL, *reid = NULL;
    bool deep = false;
    int opt, rc, failures = 0;
    mr_error err;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'd': deep = true; break;
        case 'k': it_key = optarg; break;
        case 'P': it_pass = optarg; break;
        case 'K': reid_key = optarg; break;
        case 'Q': reid_pass = optarg; break;
        default: return cli_usage_error("verify", "unknown option");
        }
    }
    if (optind >= argc)
        return cli_usage_error("verify", "name a batch (or 'all')");
    if (deep && it_key == NULL)
        return cli_usage_error("verify", "--deep needs --it-key FILE");
    mr_error_clear(&err);
    rc = cli_config_load(ctx, &cfg, &err);
    if (rc != 0)
        return cli_fail("verify", &err);
    rc = keys_secret_key_read(cfg->keys.manifest_key_file, mkey, &err);
    if (rc == 0 && deep) {
        struct keys_secret_source src = { .file = it_pass, .env = "MAILRET_IT_PASSPHRASE",
                                          .terminal = true, .prompt = "IT key passphrase: " };
        char *pass = NULL;
        rc = keys_secret_read(&src, &pass, &err);
        if (rc == 0)
            rc = keys_private_load(it_key, pass, &it, &err);
        secret_free(pass);
        if (rc == 0 && reid_key != NULL) {
            struct keys_secret_source rsrc = { .file = reid_pass,
                                               .env = "MAILRET_REID_PASSPHRASE",
                                               .terminal = true,
                                               .prompt = "Re-identification key passphrase: " };
            rc = keys_secret_read(&rsrc, &pass, &err);
            if (rc == 0)
                rc = keys_private_load(reid_key, pass, &reid, &err);
            secret_free(pass);
        }
    }
    if (rc == 0)
        rc = audit_open(&audit, cfg->audit.log, &err);
    if (rc != 0) {
        OPENSSL_cleanse(mkey, sizeof mkey);
        EVP_PKEY_free(it);
        EVP_PKEY_free(reid);
        config_free(cfg);
        return cli_fail("verify", &err);
    }
    for (int i = optind; i < argc; i++) {
        struct archive_batch_ref *refs = NULL;
        size_t n = 0;
        char dir[4096];

        if (strcmp(argv[i], "all") == 0) {
            rc = archive_batch_list(cfg->archive.dir, NULL, &refs, &n, &err);
        } else {
            rc = archive_batch_find(cfg->archive.dir, argv[i], dir, sizeof dir, &err);
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
            struct verify_options vo = { .dir = refs[j].dir, .vault_dir = cfg->keys.vault_dir,
                                         .manifest_key = mkey, .deep = deep, .it_key = it,
                                         .reid_key = reid, .audit = audit };
            struct verify_report rep;
            if (!refs[j].has_manifest) {
                printf("%s\tINCOMPLETE (no manifest: an interrupted run, not a batch)\n", base);
                failures++;
                continue;
            }
            mr_error_clear(&err);
            rc = verify_batch(&vo, &rep, &err);
            if (rc == 0 && deep)
                printf("%s\tok\t%zu volumes\t%zu messages decrypted and checked\n", base,
                       rep.volumes, rep.messages);
            else if (rc == 0)
                printf("%s\tok\t%zu volumes\n", base, rep.volumes);
            else {
                char line[MR_ERROR_MSG_MAX];
                snprintf(line, sizeof line, "%s", err.msg);
                log_scrub(line);
                printf("%s\tFAILED (%s)\t%s\n", base, mr_status_name(rc), line);
                failures++;
            }
        }
        free(refs);
    }
    audit_close(audit);
    OPENSSL_cleanse(mkey, sizeof mkey);
    EVP_PKEY_free(it);
    EVP_PKEY_free(reid);
    config_free(cfg);
    return failures == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}
