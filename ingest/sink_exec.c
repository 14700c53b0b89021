/*
 * sink_exec.c — hand each message to an external command (the fund's own member-system
 * importer): `/bin/sh -c COMMAND`, message on stdin, routing facts in the environment
 * (see sink.h), the command's stdout sent to our stderr so that it cannot corrupt
 * `--json` output.  Exit status 0 means delivered; anything else, a signal or the timeout
 * means not delivered, and the ingest run keeps its state before this message so that the
 * next run tries again.
 *
 * A command cannot take part in our transaction, so each successful delivery is recorded
 * at once (autocommit, synchronous=FULL) in a small journal; a repeated batch skips what
 * the journal knows.  Only a crash between the command's exit and that commit can deliver
 * twice; MAILRET_SHA256 lets the command recognise that case.
 */
#include "ingest/sink.h"
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

#include <pthread.h>
#include <sqlite3.h>

extern char **environ;

#define EXEC_MAX_HIDDEN 4

struct exec_sink {
    char *command;
    char *hidden[EXEC_MAX_HIDDEN];  /* variables the command must not see ("NAME=") */
    size_t n_hidden;
    int timeout_s;
    sqlite3 *db;
    sqlite3_stmt *has, *add;
};

static int exec_dberr(struct exec_sink *s, mr_error *err, const char *what)
{
    return mr_error_set(err, MR_E_DB, "exec sink journal: %s: %s", what, sqlite3_errmsg(s->db));
}

static int exec_begin(void *self, mr_error *err)
{
    (void)self;
    (void)err;
    return 0;
}

/* Write all of buf to the child's stdin, or stop early if the child closes it (EPIPE) or
 * the deadline passes.  SIGPIPE is blocked meanwhile and a pending one consumed, so that
 * the process-wide disposition is not touched. */
static void exec_feed(int fd, const unsigned char *buf, size_t len,
                      const struct timespec *deadline)
{
    sigset_t pipe_set, old;
    size_t done = 0;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    while (done < len) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        long left = child_ms_left(deadline);
        if (left <= 0 || poll(&p, 1, (int)(left > 1000 ? 1000 : left)) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p.revents & (POLLERR | POLLHUP))
            break;
        if (!(p.revents & POLLOUT))
            continue;
        ssize_t w = write(fd, buf + done, len - done > 65536 ? 65536 : len - done);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    {
        sigset_t pending;
        struct timespec zero = { 0, 0 };
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE))
            sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Our variables plus an allow-list of the inherited ones: the command must not see the
 * IMAP password (password_env), a token, or anything else the service was given.  The
 * variables named hidden stay out even when an operator has named one on the list. */
static const char *const env_allowed[] = { "PATH=", "HOME=", "LANG=", "LC_", "TZ=",
                                           "TMPDIR=", "USER=", "LOGNAME=" };

static bool env_hidden(const struct exec_sink *s, const char *var)
{
    for (size_t h = 0; h < s->n_hidden; h++)
        if (strncmp(var, s->hidden[h], strlen(s->hidden[h])) == 0)
            return true;
    return false;
}

static char **exec_env(const struct exec_sink *s, char vars[][160], size_t n_vars)
{
    size_t n = 0;
    char **env;

    while (environ[n] != NULL)
        n++;
    env = calloc(n + n_vars + 1, sizeof *env);
    if (env == NULL)
        return NULL;
    for (size_t i = 0; i < n_vars; i++)
        env[i] = vars[i];
    for (size_t i = 0, j = n_vars; i < n; i++) {
        if (env_hidden(s, environ[i]))
            continue;
        for (size_t k = 0; k < sizeof env_allowed / sizeof env_allowed[0]; k++)
            if (strncmp(environ[i], env_allowed[k], strlen(env_allowed[k])) == 0) {
                env[j++] = environ[i];
                break;
            }
    }
    return env;
}

static int exec_journal_has(struct exec_sink *s, const struct sink_message *m, bool *has,
                            mr_error *err)
{
    int r;

    sqlite3_bind_text(s->has, 1, m->account, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->has, 2, m->mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->has, 3, m->uidvalidity);
    sqlite3_bind_int64(s->has, 4, m->uid);
    sqlite3_bind_text(s->has, 5, m->sha256_hex, -1, SQLITE_STATIC);
    r = sqlite3_step(s->has);
    *has = r == SQLITE_ROW;
    sqlite3_reset(s->has);
    sqlite3_clear_bindings(s->has);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return exec_dberr(s, err, "lookup");
    return 0;
}

static int exec_journal_add(struct exec_sink *s, const struct sink_message *m, mr_error *err)
{
    int r;

    sqlite3_bind_text(s->add, 1, m->account, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->add, 2, m->mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->add, 3, m->uidvalidity);
    sqlite3_bind_int64(s->add, 4, m->uid);
    sqlite3_bind_text(s->add, 5, m->sha256_hex, -1, SQLITE_STATIC);
    r = sqlite3_step(s->add);
    sqlite3_reset(s->add);
    sqlite3_clear_bindings(s->add);
    if (r != SQLITE_DONE)
        return exec_dberr(s, err, "record delivery");
    return 0;
}

static int exec_deliver(void *self, const struct sink_message *m, enum sink_outcome *out,
                        mr_error *err)
{
    struct exec_sink *s = self;
    const struct route_result *r = m->route;
    char vars[7][160];
    char **env = NULL;
    int pipefd[2] = { -1, -1 }, status, rc;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    struct timespec deadline;
    bool has, timed_out;
    pid_t pid;

    if (r->rule == ROUTE_OWN || r->rule == ROUTE_AUTO) {
        *out = SINK_DELIVERED;
        return 0;
    }
    if ((rc = exec_journal_has(s, m, &has, err)) != 0)
        return rc;
    if (has) {
        *out = SINK_DUPLICATE;
        return 0;
    }
    snprintf(vars[0], sizeof vars[0], "MAILRET_MEMBER=%s", r->member);
    snprintf(vars[1], sizeof vars[1], "MAILRET_CASE=%s", r->case_id);
    snprintf(vars[2], sizeof vars[2], "MAILRET_RULE=%s", route_rule_name(r->rule));
    snprintf(vars[3], sizeof vars[3], "MAILRET_MAILBOX=%s", m->mailbox);
    snprintf(vars[4], sizeof vars[4], "MAILRET_UIDVALIDITY=%u", m->uidvalidity);
    snprintf(vars[5], sizeof vars[5], "MAILRET_UID=%u", m->uid);
    snprintf(vars[6], sizeof vars[6], "MAILRET_SHA256=%s", m->sha256_hex);
    if ((env = exec_env(s, vars, 7)) == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    /* pipe2 is not POSIX; mailret runs single-threaded while spawning, so setting
     * FD_CLOEXEC right after pipe() leaves no window for another exec. */
    if (pipe(pipefd) != 0) {
        free(env);
        return mr_error_errno(err, MR_E_IO, errno, "exec sink: pipe");
    }
    fcntl(pipefd[0], F_SETFD, FD_CLOEXEC);
    fcntl(pipefd[1], F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[0], 0);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
    char *argv[] = { "sh", "-c", s->command, NULL };
    /* Its own process group, so that a timeout can kill everything the command started. */
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, env);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(pipefd[0]);
    if (rc != 0) {
        close(pipefd[1]);
        return mr_error_errno(err, MR_E_IO, rc, "exec sink: cannot start /bin/sh");
    }
    fcntl(pipefd[1], F_SETFL, O_NONBLOCK);
    child_deadline(&deadline, s->timeout_s);
    exec_feed(pipefd[1], m->raw, m->len, &deadline);
    close(pipefd[1]);
    status = child_reap(pid, &deadline, false, &timed_out);
    if (timed_out) {
        *out = SINK_REJECTED;
        mr_error_set(err, MR_E_TIMEOUT, "exec sink: command timed out after %d s", s->timeout_s);
        return 0;
    }
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        *out = SINK_REJECTED;
        if (status != -1 && WIFSIGNALED(status))
            mr_error_set(err, MR_E_IO, "exec sink: command killed by signal %d",
                         WTERMSIG(status));
        else
            mr_error_set(err, MR_E_IO, "exec sink: command exited with status %d",
                         status == -1 ? -1 : WEXITSTATUS(status));
        return 0;
    }
    if ((rc = exec_journal_add(s, m, err)) != 0)
        return rc;
    *out = SINK_DELIVERED;
    return 0;
}

static int exec_commit(void *self, mr_error *err)
{
    (void)self;
    (void)err;
    return 0;       /* each delivery was journalled as it happened */
}

static void exec_rollback(void *self)
{
    (void)self;
}

static void exec_close(void *self)
{
    struct exec_sink *s = self;

    sqlite3_finalize(s->has);
    sqlite3_finalize(s->add);
    sqlite3_close(s->db);
    free(s->command);
    for (size_t i = 0; i < s->n_hidden; i++)
        free(s->hidden[i]);
    free(s);
}

static const struct sink_driver exec_driver = {
    .name = "exec",
    .begin = exec_begin,
    .deliver = exec_deliver,
    .commit = exec_commit,
    .rollback = exec_rollback,
    .close = exec_close,
};

int sink_exec_open(const char *command, const char *journal_path, int timeout_s, sink **out,
                   mr_error *err)
{
    struct exec_sink *s = calloc(1, sizeof *s);
    int fd, rc;

    if (s == NULL || (s->command = strdup(command)) == NULL) {
        free(s);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    s->timeout_s = timeout_s > 0 ? timeout_s : 300;
    fd = open(journal_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot open %s", journal_path);
        exec_close(s);
        return rc;
    }
    close(fd);
    if (sqlite3_open_v2(journal_path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_exec(s->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE IF NOT EXISTS delivered(account TEXT NOT NULL,"
                     " mailbox TEXT NOT NULL, uidvalidity INTEGER NOT NULL,"
                     " uid INTEGER NOT NULL, sha256 TEXT NOT NULL, at INTEGER NOT NULL,"
                     " PRIMARY KEY(account, mailbox, uidvalidity, uid, sha256)) WITHOUT ROWID;",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "SELECT 1 FROM delivered WHERE account=?1 AND mailbox=?2 AND"
                           " uidvalidity=?3 AND uid=?4 AND sha256=?5", -1, &s->has,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT OR IGNORE INTO delivered VALUES(?1,?2,?3,?4,?5,"
                           "strftime('%s','now'))", -1, &s->add, NULL) != SQLITE_OK) {
        rc = mr_error_set(err, MR_E_DB, "exec sink journal %s: %s", journal_path,
                          s->db ? sqlite3_errmsg(s->db) : "out of memory");
        exec_close(s);
        return rc;
    }
    sqlite3_busy_timeout(s->db, 30000);
    return sink_new(&exec_driver, s, out, err);
}

int sink_exec_hide_env(sink *sk, const char *name, mr_error *err)
{
    struct exec_sink *s = sink_driver_state(sk, &exec_driver);
    size_t n;

    if (s == NULL || name == NULL || *name == '\0' || strchr(name, '=') != NULL)
        return mr_error_set(err, MR_E_INVALID, "sink_exec_hide_env: bad arguments");
    if (s->n_hidden == EXEC_MAX_HIDDEN)
        return mr_error_set(err, MR_E_LIMIT, "sink_exec_hide_env: too many variables");
    n = strlen(name) + 2;
    if ((s->hidden[s->n_hidden] = malloc(n)) == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    snprintf(s->hidden[s->n_hidden++], n, "%s=", name);
    return 0;
}
