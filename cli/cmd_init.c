/* cmd_init.c — `mailret init [--user NAME]`: create the directories the configuration
 * names (state, archive, vault, log) with the service user as owner and private modes,
 * so that every later command can run as that user.  Idempotent: a second run changes
 * nothing and says so. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/config.h"

#define INIT_DEFAULT_USER "mailret"
#define INIT_MAX_DIRS 8

struct init_dir {
    const char *what;
    char path[PATH_MAX];
    mode_t mode;
    bool adopt;     /* an existing directory is given owner and mode too */
};

struct init_owner {
    uid_t uid;
    gid_t gid;
    char user[64], group[64];
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mailret init [--user NAME]\n"
            "\n"
            "Create the directories the configuration names, owned by the service user\n"
            "(--user, default '%s' when run as root, else the calling user):\n"
            "  [state] dir, [archive] dir and [keys] vault_dir  mode 0700\n"
            "  the directory of [log] file (if one is set)       mode 0750, only if missing\n"
            "A state, archive or vault directory that exists is given that owner and mode;\n"
            "system directories (/srv, /var/lib, ...) are refused.  Missing parent\n"
            "directories are created owned by the caller, mode 0755.  One line per change;\n"
            "a second run changes nothing.  Refuses symbolic links and non-directories.\n"
            "Run it as root before `keys init-host` (which runs as the service user).\n",
            INIT_DEFAULT_USER);
}

static int owner_lookup(const char *name, struct init_owner *o)
{
    struct passwd *pw;
    struct group *gr;

    errno = 0;
    pw = name != NULL ? getpwnam(name) : getpwuid(geteuid());
    if (pw == NULL) {
        if (name != NULL)
            fprintf(stderr, "mailret init: no user '%s' (create the service user first, "
                            "e.g. with systemd-sysusers or useradd --system)\n", name);
        else
            fprintf(stderr, "mailret init: cannot look up the calling user\n");
        return -1;
    }
    o->uid = pw->pw_uid;
    o->gid = pw->pw_gid;
    snprintf(o->user, sizeof o->user, "%s", pw->pw_name);
    gr = getgrgid(pw->pw_gid);
    if (gr != NULL)
        snprintf(o->group, sizeof o->group, "%s", gr->gr_name);
    else
        snprintf(o->group, sizeof o->group, "%u", (unsigned)pw->pw_gid);
    return 0;
}

/* Directories the system owns: never handed to the service user, whatever the
 * configuration says. */
static bool system_dir(const char *path)
{
    static const char *const sys[] = { "/", "/bin", "/boot", "/dev", "/etc", "/home",
                                       "/lib", "/opt", "/proc", "/root", "/run", "/sbin",
                                       "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib",
                                       "/var/log", "/var/tmp", "/var/cache", "/usr/local",
                                       "/mnt", "/media" };
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
        if (strcmp(path, sys[i]) == 0)
            return true;
    return false;
}

static int add_dir(struct init_dir *v, size_t *n, const char *what, const char *path,
                   mode_t mode, bool adopt)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(v[i].path, path) == 0)
            return 0;
    if (*n >= INIT_MAX_DIRS || strlen(path) >= sizeof v[0].path || path[0] != '/') {
        fprintf(stderr, "mailret init: %s: unusable path %.80s\n", what, path);
        return -1;
    }
    v[*n].what = what;
    snprintf(v[*n].path, sizeof v[*n].path, "%s", path);
    /* Trailing slashes would make the symlink check below look at the target. */
    for (size_t len = strlen(v[*n].path); len > 1 && v[*n].path[len - 1] == '/';)
        v[*n].path[--len] = '\0';
    v[*n].mode = mode;
    v[*n].adopt = adopt;
    if (system_dir(v[*n].path)) {
        fprintf(stderr, "mailret init: %s directory %s is a system directory; give mailret "
                        "its own directory below it\n", what, v[*n].path);
        return -1;
    }
    (*n)++;
    return 0;
}

/* Create the missing ancestors of path (owned by the caller, 0755). */
static int make_parents(const char *path)
{
    char buf[PATH_MAX];
    struct stat st;

    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (lstat(buf, &st) != 0) {
            if (errno != ENOENT || mkdir(buf, 0755) != 0 || chmod(buf, 0755) != 0) {
                fprintf(stderr, "mailret init: cannot create %s: %s\n", buf, strerror(errno));
                return -1;
            }
            printf("created %s (0755)\n", buf);
        } else if (!S_ISDIR(st.st_mode)) {
            /* A symbolic link to a directory is fine above the directory itself. */
            if (!S_ISLNK(st.st_mode) || stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
                fprintf(stderr, "mailret init: %s exists and is not a directory\n", buf);
                return -1;
            }
        }
        *p = '/';
    }
    return 0;
}

/* Bring one directory to owner and mode.  Works on a descriptor opened without following
 * a symbolic link, so that a link planted in a directory the service user can write never
 * makes root hand another directory to it. */
static int ensure_dir(const struct init_dir *d, const struct init_owner *o, bool root)
{
    struct stat st;
    bool created = false;
    int fd;

    if (make_parents(d->path) != 0)
        return -1;
    if (mkdir(d->path, d->mode) == 0)
        created = true;
    else if (errno != EEXIST) {
        fprintf(stderr, "mailret init: cannot create %s (%s): %s\n", d->path, d->what,
                strerror(errno));
        return -1;
    }
    fd = open(d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        /* O_DIRECTORY|O_NOFOLLOW reports a link as ENOTDIR; name it as what it is. */
        if (lstat(d->path, &st) == 0 && S_ISLNK(st.st_mode))
            e = ELOOP;
        if (fd >= 0)
            close(fd);
        if (e == ELOOP || e == ENOTDIR)
            fprintf(stderr, "mailret init: %s (%s) is %s; give the real directory in the "
                            "configuration\n", d->path, d->what,
                    e == ELOOP ? "a symbolic link" : "not a directory");
        else
            fprintf(stderr, "mailret init: cannot open %s: %s\n", d->path, strerror(e));
        return -1;
    }
    if (!created && !d->adopt) {
        close(fd);
        return 0;
    }
    if (st.st_uid != o->uid || st.st_gid != o->gid) {
        if (!root && st.st_uid != o->uid) {
            fprintf(stderr, "mailret init: %s (%s) belongs to uid %u; run mailret init as "
                            "root to give it to %s\n", d->path, d->what, (unsigned)st.st_uid,
                    o->user);
            close(fd);
            return -1;
        }
        if (fchown(fd, o->uid, o->gid) != 0) {
            fprintf(stderr, "mailret init: cannot give %s to %s:%s: %s\n", d->path, o->user,
                    o->group, strerror(errno));
            close(fd);
            return -1;
        }
        if (!created)
            printf("owner of %s set to %s:%s (was %u:%u)\n", d->path, o->user, o->group,
                   (unsigned)st.st_uid, (unsigned)st.st_gid);
    }
    if ((st.st_mode & 07777) != d->mode) {
        if (fchmod(fd, d->mode) != 0) {
            fprintf(stderr, "mailret init: cannot set mode of %s: %s\n", d->path,
                    strerror(errno));
            close(fd);
            return -1;
        }
        if (!created)
            printf("mode of %s set to %04o (was %04o)\n", d->path, (unsigned)d->mode,
                   (unsigned)(st.st_mode & 07777));
    }
    if (created)
        printf("created %s (%s, %s:%s %04o)\n", d->path, d->what, o->user, o->group,
               (unsigned)d->mode);
    close(fd);
    return created ? 1 : 0;
}

int cmd_init(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "user", required_argument, NULL, 'u' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *user = NULL;
    struct init_dir dirs[INIT_MAX_DIRS];
    struct init_owner owner;
    struct mr_config *cfg = NULL;
    size_t n = 0;
    bool root = geteuid() == 0;
    mr_error err;
    int opt, rc = 0;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    while ((opt = getopt_long(argc, argv, "u:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'u': user = optarg; break;
        default: return cli_usage_error("init", "bad option");
        }
    }
    if (optind < argc)
        return cli_usage_error("init", "unexpected argument '%s'", argv[optind]);
    if (user == NULL && root)
        user = INIT_DEFAULT_USER;
    if (owner_lookup(user, &owner) != 0)
        return CLI_EXIT_FAILURE;
    if (!root && owner.uid != geteuid()) {
        fprintf(stderr, "mailret init: only root can give directories to %s\n", owner.user);
        return CLI_EXIT_FAILURE;
    }
    if (root && owner.uid == 0) {
        fprintf(stderr, "mailret init: refusing to make root the service user; give "
                        "--user NAME\n");
        return CLI_EXIT_FAILURE;
    }
    mr_error_clear(&err);
    if (cli_config_parse(ctx, &cfg, &err) != 0)
        return cli_fail("init", &err);
    if (add_dir(dirs, &n, "state", cfg->state.dir, 0700, true) != 0
        || add_dir(dirs, &n, "archive", cfg->archive.dir, 0700, true) != 0
        || add_dir(dirs, &n, "vault", cfg->keys.vault_dir, 0700, true) != 0)
        rc = -1;
    if (rc == 0 && cfg->log.file != NULL) {
        char buf[PATH_MAX];
        snprintf(buf, sizeof buf, "%s", cfg->log.file);
        /* Created when missing, but an existing one (say /var/log itself) is left alone. */
        if (!system_dir(dirname(buf)))
            rc = add_dir(dirs, &n, "log", buf, 0750, false);
    }
    config_free(cfg);
    if (rc != 0)
        return CLI_EXIT_FAILURE;
    for (size_t i = 0; i < n; i++)
        if (ensure_dir(&dirs[i], &owner, root) < 0)
            return CLI_EXIT_FAILURE;
    printf("ok: %zu directories owned by %s:%s\n", n, owner.user, owner.group);
    return CLI_EXIT_OK;
}
