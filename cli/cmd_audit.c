/* cmd_audit.c — `mailret audit verify [-c CONF | --log PATH] [--anchor HEAD|FILE]`: check
 * the audit log's hash chain and its head file (common/audit.h), and optionally that it
 * still holds a head seen outside the host. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "backup/archive.h"
#include "cli/cli.h"
#include "cli/cli_setup.h"
#include "common/audit.h"
#include "common/config.h"

#define ANCHOR_FILE_MAX (16 * 1024 * 1024)
#define MAX_HOST_KEYS 16

static void audit_usage(FILE *out)
{
    fprintf(out,
            "usage: mailret audit verify [-c FILE | --log PATH] [--anchor HEAD|FILE\n"
            "                            [--host-key FILE]...]\n"
            "\n"
            "Verify the audit log: every line is a JSON record, seq counts up by one, each\n"
            "record carries the SHA-256 of the one before, and the head file beside the log\n"
            "matches the last record (so that records cut off the end are noticed too).\n"
            "Someone with the host's disk could rewrite the log and recompute all that;\n"
            "--anchor checks the log against a head kept elsewhere: the record at that seq\n"
            "must have that hash.\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE  take the log's path from [audit] log in FILE\n"
            "      --log PATH     verify this log file (no configuration needed)\n"
            "      --anchor A     SEQ:HASH; or a batch's manifest.json (its signature is\n"
            "                     checked against the pinned host keys, then its \"audit\"\n"
            "                     head is used); or a file holding a head: the log's .head\n"
            "                     file or a journal line \"audit head seq=N hash=H\" (the\n"
            "                     last one in the file is used)\n"
            "      --host-key FILE  pinned host public keys for a manifest anchor (default\n"
            "                     [keys] host_keyring)\n"
            "  -h, --help         this text\n"
            "\n"
            "Exit status: 0 intact, 1 damaged or unreadable (the first bad line is named),\n"
            "2 usage error.\n");
}

static bool hash_ok(const char *h)
{
    return strlen(h) == 64 && strspn(h, "0123456789abcdef") == 64;
}

/* A manifest anchor: authenticated first, since only a signed head is worth checking
 * against. */
static int anchor_from_manifest(struct cli_ctx *ctx, const char *path,
                                const char *const *host_keys, size_t n_host_keys,
                                long long *seq, char hash[65], mr_error *err)
{
    struct mr_config *cfg = NULL;
    struct cli_trust t = { 0 };
    struct archive_manifest m;
    char *copy = strdup(path);
    int rc;

    if (copy == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (n_host_keys == 0 && (rc = cli_config_load(ctx, &cfg, err)) != 0) {
        free(copy);
        return mr_error_prefix(err, "--anchor %s: the host keys come from the configuration "
                               "or --host-key", path);
    }
    rc = cli_trust_setup(cfg, host_keys, n_host_keys, NULL, false, &t, err);
    if (rc == 0)
        rc = archive_manifest_read(dirname(copy), &t.trust, &m, err);
    if (rc == 0) {
        if (!m.has_audit)
            rc = mr_error_set(err, MR_E_NOTFOUND, "manifest %s records no audit head (written "
                              "before manifests carried one)", path);
        else if (m.audit_seq == 0)
            rc = mr_error_set(err, MR_E_NOTFOUND, "manifest %s was signed before the first "
                              "audit record", path);
        *seq = (long long)m.audit_seq;
        memcpy(hash, m.audit_head, 65);
        archive_manifest_clear(&m);
    }
    cli_trust_release(&t);
    config_free(cfg);
    free(copy);
    return rc;
}

static int anchor_parse(struct cli_ctx *ctx, const char *arg, const char *const *host_keys,
                        size_t n_host_keys, long long *seq, char hash[65], mr_error *err)
{
    char *text = NULL, *end = NULL;
    size_t len = 0;
    FILE *f;
    int rc = 0;

    /* SEQ:HASH */
    {
        long long v = strtoll(arg, &end, 10);
        if (end != arg && *end == ':' && hash_ok(end + 1) && v > 0) {
            *seq = v;
            memcpy(hash, end + 1, 65);
            return 0;
        }
    }
    f = fopen(arg, "rb");
    if (f == NULL)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                              "--anchor %s: neither SEQ:HASH nor a readable file", arg);
    text = malloc(ANCHOR_FILE_MAX + 1);
    if (text != NULL)
        len = fread(text, 1, ANCHOR_FILE_MAX, f);
    fclose(f);
    if (text == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    text[len] = '\0';
    if (strstr(text, "\"format\":\"mailret-batch/") != NULL) {
        free(text);
        return anchor_from_manifest(ctx, arg, host_keys, n_host_keys, seq, hash, err);
    }
    {
        json_error_t jerr;
        json_t *o = json_loadb(text, len, 0, &jerr);
        json_t *js = json_object_get(o, "seq"), *jh = json_object_get(o, "hash");
        if (json_is_integer(js) && json_is_string(jh) && hash_ok(json_string_value(jh))) {
            *seq = json_integer_value(js);
            memcpy(hash, json_string_value(jh), 65);
            json_decref(o);
            free(text);
            return *seq > 0 ? 0 : mr_error_set(err, MR_E_INVALID, "--anchor %s: seq 0", arg);
        }
        json_decref(o);
    }
    {
        regex_t re;
        regmatch_t mt[3];
        const char *p = text;
        bool found = false;
        if (regcomp(&re, "seq=([0-9]+) hash=([0-9a-f]{64})", REG_EXTENDED) != 0) {
            free(text);
            return mr_error_set(err, MR_E_INTERNAL, "regcomp failed");
        }
        while (regexec(&re, p, 3, mt, p == text ? 0 : REG_NOTBOL) == 0) {
            *seq = strtoll(p + mt[1].rm_so, NULL, 10);
            memcpy(hash, p + mt[2].rm_so, 64);
            hash[64] = '\0';
            found = true;
            p += mt[0].rm_eo;
        }
        regfree(&re);
        if (!found)
            rc = mr_error_set(err, MR_E_PARSE, "--anchor %s: no audit head in it (a manifest, "
                              "a .head file or a line \"audit head seq=N hash=H\")", arg);
    }
    free(text);
    return rc;
}

static int audit_verify_cmd(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "log", required_argument, NULL, 'l' },
        { "anchor", required_argument, NULL, 'a' },
        { "host-key", required_argument, NULL, 'H' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *log_path = NULL, *anchor = NULL, *host_keys[MAX_HOST_KEYS];
    size_t n_host_keys = 0;
    long long anchor_seq = 0;
    char anchor_hash[65] = "";
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
        case 'a':
            anchor = optarg;
            break;
        case 'H':
            if (n_host_keys == MAX_HOST_KEYS)
                return cli_usage_error("audit", "too many --host-key");
            host_keys[n_host_keys++] = optarg;
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
    rc = anchor == NULL ? 0 : anchor_parse(ctx, anchor, host_keys, n_host_keys, &anchor_seq,
                                           anchor_hash, &err);
    if (rc != 0) {
        config_free(cfg);
        return cli_fail("audit", &err);
    }
    rc = anchor == NULL ? audit_verify(log_path, &n, &err)
                        : audit_verify_anchor(log_path, anchor_seq, anchor_hash, &n, &err);
    if (rc == 0 && anchor != NULL) {
        printf("audit log %s: %zu records, chain intact, record %lld matches the anchor\n",
               log_path, n, anchor_seq);
        log_info(ctx->log, "audit log %s verified against an anchor: %zu records", log_path, n);
    } else if (rc == 0) {
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
