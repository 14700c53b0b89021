/* cmd_config.c — `mailret config check | show`: find a configuration's mistakes before a
 * timer does (like `sshd -t`), and print what mailret will actually use (like
 * `doveconf`).  check goes beyond parsing: files the configuration names must exist with
 * modes that keep secrets secret. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/config.h"
#include "common/secret.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret config check\n"
            "       mailret config show\n"
            "\n"
            "check  parse the configuration (-c FILE, $MAILRET_CONFIG or the default) and\n"
            "       check what it names: the secret files (regular, no access for group or\n"
            "       others), the certificates and keys, the CA file, the directories (mode\n"
            "       0700 for state and vault), the exec sink's program (run by /bin/sh -c), the\n"
            "       time zone.  Every\n"
            "       problem is printed as FILE:LINE: message on standard error (\"warning:\"\n"
            "       for what `mailret init` or `keys init-host` will create).  Exit 0 when\n"
            "       there is no error, 1 otherwise.\n"
            "show   print every key with the value mailret uses, defaults included (marked\n"
            "       \"# default\"), as a file mailret accepts.  Secrets are never shown: the\n"
            "       file holds only where they are.\n");
}

struct checker {
    const struct mr_config *cfg;
    const struct config_account *account;   /* whose keys section "account" means */
    int errors, warnings;
};

static void report(struct checker *ck, bool warning, const char *section, const char *key,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* One line per finding, at the line that set the key (or the file's first line for a
 * default), so that editors and CI annotate the right place. */
static void report(struct checker *ck, bool warning, const char *section, const char *key,
                   const char *fmt, ...)
{
    int line = key == NULL ? 0
               : strcmp(section, "account") == 0 ? config_account_key_line(ck->account, key)
                                                 : config_key_line(ck->cfg, section, key);
    char acct[16 + CONFIG_ACCOUNT_NAME_MAX];
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (section != NULL && strcmp(section, "account") == 0) {
        snprintf(acct, sizeof acct, "account %s", ck->account->name);
        section = ck->account->borrowed ? "imap" : acct;
    }
    fprintf(stderr, "%s:%d: %s%s%s%s%s\n", ck->cfg->path, line > 0 ? line : 1,
            warning ? "warning: " : "", key != NULL && line == 0 ? "[" : "",
            key != NULL && line == 0 ? section : "", key != NULL && line == 0 ? "] " : "",
            msg);
    if (warning)
        ck->warnings++;
    else
        ck->errors++;
}

/* A file others could change the content of (group/other write) or a directory others
 * could add to is unsafe for anything mailret trusts. */
static void check_file(struct checker *ck, const char *section, const char *key,
                       const char *path, bool secret, const char *missing_hint)
{
    struct stat st;

    if (path == NULL)
        return;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT && missing_hint != NULL)
            report(ck, true, section, key, "%s: %s does not exist yet (%s)", key, path,
                   missing_hint);
        else
            report(ck, false, section, key, "%s: %s: %s", key, path, strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        report(ck, false, section, key, "%s: %s is not a regular file", key, path);
        return;
    }
    if (secret && (st.st_mode & 077) != 0)
        report(ck, false, section, key,
               "%s: %s has mode %04o; a secret must not be readable by group or others "
               "(chmod 0600)", key, path, (unsigned)(st.st_mode & 07777));
    else if ((st.st_mode & 022) != 0)
        report(ck, false, section, key, "%s: %s has mode %04o; writable by group or others "
               "(chmod go-w)", key, path, (unsigned)(st.st_mode & 07777));
    else if (access(path, R_OK) != 0)
        report(ck, false, section, key, "%s: %s is not readable by this user (uid %u)", key,
               path, (unsigned)geteuid());
}

static void check_dir(struct checker *ck, const char *section, const char *key,
                      const char *path, mode_t forbidden, bool init_creates)
{
    struct stat st;

    if (path == NULL)
        return;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT && init_creates)
            report(ck, true, section, key,
                   "%s: %s does not exist yet (`mailret init` creates it)", key, path);
        else
            report(ck, false, section, key, "%s: %s: %s", key, path, strerror(errno));
        return;
    }
    if (!S_ISDIR(st.st_mode))
        report(ck, false, section, key, "%s: %s is not a directory", key, path);
    else if ((st.st_mode & forbidden) != 0)
        report(ck, false, section, key, "%s: %s has mode %04o; must not allow %s (chmod %s)",
               key, path, (unsigned)(st.st_mode & 07777),
               (forbidden & 044) ? "any access by group or others" : "writes by others",
               (forbidden & 044) ? "0700" : "o-w");
}

/* The directory a file will be created in must exist. */
static void check_parent(struct checker *ck, const char *section, const char *key,
                         const char *path, const char *creator)
{
    char buf[PATH_MAX];
    struct stat st;

    if (path == NULL || strlen(path) >= sizeof buf)
        return;
    snprintf(buf, sizeof buf, "%s", path);
    if (stat(path, &st) == 0 || stat(dirname(buf), &st) == 0)
        return;
    report(ck, true, section, key, "%s: directory %s does not exist yet (%s creates it)", key,
           buf, creator);
}

static void check_exec(struct checker *ck, const char *command)
{
    char prog[PATH_MAX];
    size_t n = strcspn(command, " \t");
    struct stat st;

    if (n >= sizeof prog) {
        report(ck, false, "members", "command", "command: program name too long");
        return;
    }
    memcpy(prog, command, n);
    prog[n] = '\0';
    if (prog[0] != '/') {
        /* /bin/sh -c runs it: a bare name is looked up in the service's PATH. */
        report(ck, true, "members", "command",
               "command: '%.80s' is not an absolute path; /bin/sh looks it up in the "
               "service's PATH", prog);
        return;
    }
    if (stat(prog, &st) != 0)
        report(ck, false, "members", "command", "command: %s: %s", prog, strerror(errno));
    else if (!S_ISREG(st.st_mode) || access(prog, X_OK) != 0)
        report(ck, false, "members", "command", "command: %s is not an executable file",
               prog);
    else if ((st.st_mode & 022) != 0)
        report(ck, false, "members", "command",
               "command: %s has mode %04o; writable by group or others", prog,
               (unsigned)(st.st_mode & 07777));
}

static void check_config_file(struct checker *ck)
{
    struct stat st;

    if (stat(ck->cfg->path, &st) == 0 && (st.st_mode & 002) != 0)
        report(ck, false, NULL, NULL, "the configuration file is writable by others "
               "(mode %04o; chmod o-w)", (unsigned)(st.st_mode & 07777));
}

static int check(struct cli_ctx *ctx)
{
    struct mr_config *cfg = NULL;
    struct checker ck = { 0 };
    mr_error err;
    const char *hint_keys = "`mailret keys init-host` creates it";

    mr_error_clear(&err);
    if (cli_config_parse(ctx, &cfg, &err) != 0) {
        /* config_load's messages already read FILE:LINE: message. */
        char line[MR_ERROR_MSG_MAX];
        snprintf(line, sizeof line, "%s", err.msg);
        log_scrub(line);
        fprintf(stderr, "%s\n", line);
        return CLI_EXIT_FAILURE;
    }
    ck.cfg = cfg;
    check_config_file(&ck);
    /* Every account's files ("account": its own section, [imap] without accounts). */
    for (size_t i = 0; i < cfg->n_accounts; i++) {
        const struct config_imap *imap = &cfg->accounts[i].imap;
        ck.account = &cfg->accounts[i];
        check_file(&ck, "account", "ca_file", imap->ca_file, false, NULL);
        if (imap->password_file != NULL) {
            check_file(&ck, "account", "password_file", imap->password_file, true, NULL);
        } else if (imap->password_env != NULL && getenv(imap->password_env) == NULL) {
            report(&ck, true, "account", "password_env",
                   "password_env: $%s is not set in this environment (the service must set "
                   "it)", imap->password_env);
        }
    }
    check_file(&ck, "keys", "it_cert", cfg->keys.it_cert, false, hint_keys);
    if (strcmp(cfg->keys.reid_cert, cfg->keys.it_cert) != 0)
        check_file(&ck, "keys", "reid_cert", cfg->keys.reid_cert, false, hint_keys);
    check_file(&ck, "keys", "pseudonym_key_file", cfg->keys.pseudonym_key_file, true,
               hint_keys);
    /* The manifest key only verifies batches from before manifests were signed: no host
     * made since has one, and init-host does not create it.  Checked where it is. */
    if (config_key_line(cfg, "keys", "manifest_key_file") > 0 ||
        access(cfg->keys.manifest_key_file, F_OK) == 0)
        check_file(&ck, "keys", "manifest_key_file", cfg->keys.manifest_key_file, true,
                   NULL);
    check_dir(&ck, "state", "dir", cfg->state.dir, 077, true);
    check_dir(&ck, "keys", "vault_dir", cfg->keys.vault_dir, 077, true);
    check_dir(&ck, "archive", "dir", cfg->archive.dir, 002, true);
    if (cfg->archive.store == CONFIG_STORE_S3) {
        check_file(&ck, "archive", "store_ca_file", cfg->archive.store_ca_file, false, NULL);
        if (cfg->archive.store_credentials_file != NULL)
            check_file(&ck, "archive", "store_credentials_file",
                       cfg->archive.store_credentials_file, true, NULL);
        else if (getenv("AWS_ACCESS_KEY_ID") == NULL || getenv("AWS_SECRET_ACCESS_KEY") == NULL)
            report(&ck, true, "archive", "store", "store: no store_credentials_file, and "
                   "$AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY are not both set in this "
                   "environment (the service must set them)");
    }
    check_parent(&ck, "audit", "log", cfg->audit.log, "`mailret init`");
    check_parent(&ck, "state", "erasure_ledger", cfg->state.erasure_ledger, "`mailret init`");
    if (cfg->log.file != NULL)
        check_parent(&ck, "log", "file", cfg->log.file, "`mailret init`");
    switch (cfg->members.backend) {
    case CONFIG_MEMBERS_SQLITE:
        check_parent(&ck, "members", "database", cfg->members.database, "`mailret init`");
        break;
    case CONFIG_MEMBERS_MAILDIR:
        check_dir(&ck, "members", "maildir", cfg->members.maildir, 002, false);
        break;
    case CONFIG_MEMBERS_EXEC:
        check_exec(&ck, cfg->members.command);
        break;
    }
    /* The time zone and the case pattern were checked while loading. */
    if (ck.errors == 0)
        printf("%s: OK%s\n", cfg->path,
               ck.warnings ? " (with warnings: run the commands they name)" : "");
    else
        printf("%s: %d error%s\n", cfg->path, ck.errors, ck.errors == 1 ? "" : "s");
    config_free(cfg);
    return ck.errors == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

static int show(struct cli_ctx *ctx)
{
    struct mr_config *cfg = NULL;
    mr_error err;
    int rc;

    mr_error_clear(&err);
    rc = cli_config_parse(ctx, &cfg, &err);
    if (rc == 0)
        rc = config_show(cfg, stdout, &err);
    config_free(cfg);
    return rc == 0 ? CLI_EXIT_OK : cli_fail("config", &err);
}

int cmd_config(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (argc > 2)
        return cli_usage_error("config", "unexpected argument '%s'", argv[2]);
    if (strcmp(argv[1], "check") == 0)
        return check(ctx);
    if (strcmp(argv[1], "show") == 0)
        return show(ctx);
    return cli_usage_error("config", "unknown subcommand '%s'", argv[1]);
}
