/* cli_config.c — cli_config_load (cli.h): the configuration for a command, and the
 * logging settings it carries. */
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/config.h"

/* The file's [log] settings replace main's stderr logger, except that a -v/-q given on
 * the command line (anything but the default level) wins over the file's level. */
static int apply_log_settings(struct cli_ctx *ctx, const struct mr_config *cfg, mr_error *err)
{
    enum log_level level = ctx->log_level;
    mr_log *log = NULL;
    int rc;

    if (cfg->log.level_set && ctx->log_level == LOG_LEVEL_INFO)
        level = cfg->log.level;
    if (cfg->log.file == NULL && level == ctx->log_level)
        return 0;
    rc = log_open(&log, level, cfg->log.file, err);
    if (rc != 0)
        return mr_error_prefix(err, "%s: [log] file", cfg->path);
    log_close(ctx->log);
    ctx->log = log;
    ctx->log_level = level;
    return 0;
}

/* Everything mailret writes goes under the state directory's owner: run as anyone else
 * (root above all) it would leave files that owner cannot read or replace, and the next
 * run as the service user would find a "damaged" batch or a "BROKEN" audit log. */
static int check_state_owner(const struct mr_config *cfg, mr_error *err)
{
    struct stat st;

    if (cfg->state.dir == NULL || stat(cfg->state.dir, &st) != 0)
        return 0;       /* not made yet: the first run makes it, as this user */
    if (st.st_uid != geteuid())
        return mr_error_set(err, MR_E_PERM, "the state directory %s belongs to uid %u, not to "
                            "the user running mailret (uid %u): run mailret as its owner",
                            cfg->state.dir, (unsigned)st.st_uid, (unsigned)geteuid());
    return 0;
}

int cli_config_parse(struct cli_ctx *ctx, struct mr_config **out, mr_error *err)
{
    const char *path;
    int rc;

    if (ctx == NULL || out == NULL)
        return mr_error_set(err, MR_E_INVALID, "cli_config_parse: bad arguments");
    *out = NULL;
    path = ctx->config_path != NULL ? ctx->config_path : CONFIG_DEFAULT_PATH;
    rc = config_load(path, out, err);
    if (rc == MR_E_NOTFOUND && !ctx->config_explicit)
        return mr_error_prefix(err, "no configuration (give -c FILE or set MAILRET_CONFIG)");
    return rc;
}

int cli_config_load(struct cli_ctx *ctx, struct mr_config **out, mr_error *err)
{
    int rc = cli_config_parse(ctx, out, err);

    if (rc != 0)
        return rc;
    rc = apply_log_settings(ctx, *out, err);
    if (rc == 0)
        rc = check_state_owner(*out, err);
    if (rc != 0) {
        config_free(*out);
        *out = NULL;
    }
    return rc;
}
