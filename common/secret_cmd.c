/*
 * secret_cmd.c — a secret printed by a command (token_command: a fresh OAuth access
 * token for every connection).  See secret.h.
 *
 * No shell: the configured line is split into words here and the program is started with
 * posix_spawnp, so that nothing in the line is interpreted twice and no shell sees the
 * environment.  The child gets an allow-listed environment only (mailret's own may hold
 * other secrets, e.g. password_env's variable), no descriptor of ours but stderr, and a
 * process group of its own so that a timeout kills whatever it started too.
 */
#include "common/secret.h"
#include "common/child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

extern char **environ;

/* ---------------------------------------------------------------- parsing */

void secret_command_free(char **argv)
{
    if (argv == NULL)
        return;
    for (size_t i = 0; argv[i] != NULL; i++)
        free(argv[i]);
    free(argv);
}

int secret_command_parse(const char *line, char ***argv_out, mr_error *err)
{
    size_t len = line != NULL ? strlen(line) : 0, n = 0;
    char **argv = NULL, *word = NULL;
    const char *p = line;
    int rc = 0;

    *argv_out = NULL;
    if (len == 0)
        return mr_error_set(err, MR_E_CONFIG, "empty command");
    argv = calloc(SECRET_CMD_MAX_WORDS + 1, sizeof *argv);
    word = malloc(len + 1);
    if (argv == NULL || word == NULL) {
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        size_t w = 0;
        bool have = false;

        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        if (*p == '~') {
            rc = mr_error_set(err, MR_E_CONFIG, "'~' is not expanded (no shell runs the "
                              "command): write the full path");
            goto out;
        }
        while (*p != '\0' && *p != ' ' && *p != '\t') {
            if (*p == '\'') {
                const char *end = strchr(p + 1, '\'');
                if (end == NULL) {
                    rc = mr_error_set(err, MR_E_CONFIG, "unterminated single quote");
                    goto out;
                }
                memcpy(word + w, p + 1, (size_t)(end - p - 1));
                w += (size_t)(end - p - 1);
                p = end + 1;
            } else if (*p == '"') {
                for (p++; *p != '"'; p++) {
                    if (*p == '\0') {
                        rc = mr_error_set(err, MR_E_CONFIG, "unterminated double quote");
                        goto out;
                    }
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                        p++;
                    word[w++] = *p;
                }
                p++;
            } else if (*p == '\\') {
                if (p[1] == '\0') {
                    rc = mr_error_set(err, MR_E_CONFIG, "backslash at the end of the command");
                    goto out;
                }
                word[w++] = p[1];
                p += 2;
            } else if (strchr("|&;<>()$`", *p) != NULL) {
                rc = mr_error_set(err, MR_E_CONFIG, "'%c' would need a shell, and the command "
                                  "runs without one: quote it, or put the pipeline in a script",
                                  *p);
                goto out;
            } else {
                word[w++] = *p++;
            }
            have = true;
        }
        if (!have)
            continue;
        if (n == SECRET_CMD_MAX_WORDS) {
            rc = mr_error_set(err, MR_E_CONFIG, "more than %d words", SECRET_CMD_MAX_WORDS);
            goto out;
        }
        if ((argv[n] = strndup(word, w)) == NULL) {
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
            goto out;
        }
        n++;
    }
    if (n == 0 || argv[0][0] == '\0')
        rc = mr_error_set(err, MR_E_CONFIG, "empty command");
out:
    free(word);
    if (rc != 0) {
        secret_command_free(argv);
        return rc;
    }
    *argv_out = argv;
    return 0;
}

/* ---------------------------------------------------------------- running */

static bool env_allowed(const char *entry)
{
    static const char *const names[] = {
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR",
        "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
        "ALL_PROXY", "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE",
        "REQUESTS_CA_BUNDLE", "CREDENTIALS_DIRECTORY",
    };
    const char *eq = strchr(entry, '=');
    size_t n;

    if (eq == NULL)
        return false;
    n = (size_t)(eq - entry);
    if ((n > 3 && strncmp(entry, "LC_", 3) == 0) ||
        (n > 14 && strncmp(entry, "MAILRET_TOKEN_", 14) == 0))
        return true;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && strncmp(entry, names[i], n) == 0)
            return true;
    return false;
}

static const char *prog_name(const char *argv0)
{
    const char *slash = strrchr(argv0, '/');

    return slash != NULL && slash[1] != '\0' ? slash + 1 : argv0;
}

int secret_command_run(char *const argv[], int timeout_s, char **out, mr_error *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    struct timespec deadline;
    sigset_t none, deflt;
    char **env = NULL, *buf = NULL;
    size_t n_env = 0, len = 0;
    int pipefd[2] = { -1, -1 }, rc = 0, status, spawn_rc;
    bool too_much = false, timed_out = false, killed = false;
    const char *name;
    pid_t pid;

    if (out == NULL || argv == NULL || argv[0] == NULL)
        return mr_error_set(err, MR_E_INVALID, "secret_command_run: no command");
    *out = NULL;
    name = prog_name(argv[0]);
    if (timeout_s <= 0)
        timeout_s = 30;

    while (environ[n_env] != NULL)
        n_env++;
    env = calloc(n_env + 1, sizeof *env);
    buf = malloc(SECRET_CMD_MAX_OUTPUT + 1);
    if (env == NULL || buf == NULL) {
        free(env);
        free(buf);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    for (size_t i = 0, j = 0; i < n_env; i++)
        if (env_allowed(environ[i]))
            env[j++] = environ[i];

    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        rc = mr_error_errno(err, MR_E_IO, errno, "token_command %s: cannot create a pipe",
                            name);
        goto out;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    sigemptyset(&deflt);
    sigaddset(&deflt, SIGPIPE);
    sigaddset(&deflt, SIGINT);
    sigaddset(&deflt, SIGTERM);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &deflt);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETPGROUP);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    /* Nothing of ours but stderr: not the IMAP socket, not a key file. */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    spawn_rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(pipefd[1]);
    pipefd[1] = -1;
    if (spawn_rc != 0) {
        rc = mr_error_errno(err, spawn_rc == ENOENT ? MR_E_NOTFOUND : MR_E_IO, spawn_rc,
                            "token_command %s cannot be started", name);
        goto out;
    }

    child_deadline(&deadline, timeout_s);
    for (;;) {
        struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
        long left = child_ms_left(&deadline);
        ssize_t r;

        if (left <= 0) {
            timed_out = true;
            break;
        }
        r = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = mr_error_errno(err, MR_E_IO, errno, "token_command %s: poll", name);
            break;
        }
        if (r == 0)
            continue;
        r = read(pipefd[0], buf + len, SECRET_CMD_MAX_OUTPUT + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = mr_error_errno(err, MR_E_IO, errno, "token_command %s: reading its output",
                                name);
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > SECRET_CMD_MAX_OUTPUT) {
            too_much = true;
            break;
        }
    }
    close(pipefd[0]);
    pipefd[0] = -1;
    status = child_reap(pid, &deadline, timed_out || too_much || rc != 0, &killed);
    if (rc != 0)
        goto out;
    if (timed_out || (killed && !too_much)) {
        rc = mr_error_set(err, MR_E_TIMEOUT, "token_command %s did not finish within %d s",
                          name, timeout_s);
        goto out;
    }
    if (too_much) {
        rc = mr_error_set(err, MR_E_LIMIT, "token_command %s printed more than %d bytes",
                          name, SECRET_CMD_MAX_OUTPUT);
        goto out;
    }
    if (status == -1) {
        rc = mr_error_set(err, MR_E_INTERNAL, "token_command %s: its exit status could not "
                          "be read", name);
        goto out;
    }
    if (WIFSIGNALED(status)) {
        rc = mr_error_set(err, MR_E_AUTH, "token_command %s was killed by signal %d", name,
                          WTERMSIG(status));
        goto out;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rc = mr_error_set(err, MR_E_AUTH, "token_command %s failed (exit status %d)", name,
                          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        goto out;
    }
    while (len > 0 && strchr(" \t\r\n", buf[len - 1]) != NULL)
        len--;
    buf[len] = '\0';
    if (len == 0) {
        rc = mr_error_set(err, MR_E_AUTH, "token_command %s printed nothing", name);
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\n' || ch == '\r') {
            rc = mr_error_set(err, MR_E_AUTH, "token_command %s printed more than one line",
                              name);
            goto out;
        }
        if (ch < 0x20 || ch == 0x7f) {
            rc = mr_error_set(err, MR_E_AUTH, "token_command %s printed control characters",
                              name);
            goto out;
        }
    }
    *out = strdup(buf);
    if (*out == NULL)
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
out:
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    OPENSSL_cleanse(buf, SECRET_CMD_MAX_OUTPUT + 1);
    free(buf);
    free(env);
    return rc;
}
