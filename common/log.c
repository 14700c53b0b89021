/* log.c — see log.h.  The identifier scrubber lives in scrub.c. */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/mrtime.h"

/* Room for the prefix plus the usual message; longer messages get a heap buffer. */
#define LOG_LINE_STACK 2048
/* Each redaction may grow a line by a few bytes; reserve for that before scrubbing. */
#define LOG_SCRUB_SLACK 256

struct mr_log {
    enum log_level level;
    int fd;
    int owns_fd;
    int journal;            /* fd is journald's stream: "<N>" priority, no timestamp */
    pthread_mutex_t lock;   /* one write() per line, but the level/fd are shared by threads */
};

bool log_fd_is_journal(int fd)
{
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    int used = 0;

    /* systemd sets JOURNAL_STREAM=DEV:INO for the stream it connected; the fd must still
     * be that stream (a shell redirect in between would make the prefixes noise). */
    if (env == NULL || sscanf(env, "%llu:%llu%n", &dev, &ino, &used) != 2
        || env[used] != '\0')
        return false;
    if (fstat(fd, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int log_open(mr_log **out, enum log_level level, const char *path, mr_error *err)
{
    mr_log *log;

    if (out == NULL)
        return mr_error_set(err, MR_E_INVALID, "log_open: no output handle");
    *out = NULL;
    if (level < LOG_LEVEL_ERROR || level > LOG_LEVEL_DEBUG)
        return mr_error_set(err, MR_E_INVALID, "log_open: bad level %d", (int)level);
    log = calloc(1, sizeof *log);
    if (log == NULL)
        return mr_error_set(err, MR_E_NOMEM, "log_open: out of memory");
    log->level = level;
    if (path == NULL || strcmp(path, "-") == 0) {
        log->fd = STDERR_FILENO;
        log->owns_fd = 0;
        log->journal = log_fd_is_journal(STDERR_FILENO);
    } else {
        log->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        if (log->fd < 0) {
            int e = errno;
            free(log);
            return mr_error_errno(err, MR_E_IO, e, "cannot open log file %s", path);
        }
        log->owns_fd = 1;
    }
    if (pthread_mutex_init(&log->lock, NULL) != 0) {
        if (log->owns_fd)
            close(log->fd);
        free(log);
        return mr_error_set(err, MR_E_INTERNAL, "log_open: cannot create mutex");
    }
    *out = log;
    return 0;
}

void log_close(mr_log *log)
{
    if (log == NULL)
        return;
    if (log->owns_fd)
        close(log->fd);
    pthread_mutex_destroy(&log->lock);
    free(log);
}

int log_level_parse(const char *name, enum log_level *level, mr_error *err)
{
    static const char *const names[] = { "error", "warn", "info", "debug" };

    if (name == NULL || level == NULL)
        return mr_error_set(err, MR_E_INVALID, "log level: missing");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i]) == 0) {
            *level = (enum log_level)i;
            return 0;
        }
    }
    if (strcmp(name, "warning") == 0) {
        *level = LOG_LEVEL_WARN;
        return 0;
    }
    return mr_error_set(err, MR_E_INVALID,
                        "unknown log level '%.32s' (use error, warn, info or debug)", name);
}

int log_syslog_priority(enum log_level level)
{
    switch (level) {
    case LOG_LEVEL_ERROR: return 3;
    case LOG_LEVEL_WARN: return 4;
    case LOG_LEVEL_INFO: return 6;
    case LOG_LEVEL_DEBUG: return 7;
    }
    return 6;
}

static const char *level_name(enum log_level level)
{
    switch (level) {
    case LOG_LEVEL_ERROR: return "ERROR";
    case LOG_LEVEL_WARN: return "WARN";
    case LOG_LEVEL_INFO: return "INFO";
    case LOG_LEVEL_DEBUG: return "DEBUG";
    }
    return "?";
}

/* A log line must stay one line: an embedded newline would let data forge a line. */
static void flatten(char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\n' || *s == '\r')
            *s = ' ';
    }
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;     /* nowhere left to report a failing log */
        }
        buf += n;
        len -= (size_t)n;
    }
}

void log_msg(mr_log *log, enum log_level level, const char *fmt, ...)
{
    char stack[LOG_LINE_STACK];
    char *line = stack;
    size_t cap = sizeof stack;
    char stamp[32];
    int prefix, need;
    va_list ap;

    if (log == NULL || level > log->level)
        return;
    if (log->journal) {
        /* journald stamps, names and numbers the line itself. */
        prefix = snprintf(stack, sizeof stack, "<%d>%s ", log_syslog_priority(level),
                          level_name(level));
    } else {
        mrtime_format_utc(time(NULL), stamp, sizeof stamp);
        prefix = snprintf(stack, sizeof stack, "%s mailret[%ld] %s ", stamp, (long)getpid(),
                          level_name(level));
    }
    if (prefix < 0 || (size_t)prefix >= sizeof stack)
        return;
    va_start(ap, fmt);
    need = vsnprintf(stack + prefix, sizeof stack - (size_t)prefix, fmt, ap);
    va_end(ap);
    if (need < 0)
        return;
    if ((size_t)prefix + (size_t)need + LOG_SCRUB_SLACK >= sizeof stack) {
        /* Scrubbing may grow the message by up to 2 bytes per 8-byte phone number. */
        cap = (size_t)prefix + (size_t)need + (size_t)need / 4 + LOG_SCRUB_SLACK;
        line = malloc(cap);
        if (line == NULL) {
            line = stack;       /* fall back to the truncated line */
            cap = sizeof stack;
        } else {
            memcpy(line, stack, (size_t)prefix);
            va_start(ap, fmt);
            vsnprintf(line + prefix, cap - (size_t)prefix, fmt, ap);
            va_end(ap);
        }
    }
    /* Only the message is scrubbed: the prefix is ours and carries no identifiers. */
    flatten(line + prefix);
    log_scrub_buf(line + prefix, cap - (size_t)prefix - 1);
    {
        size_t len = strlen(line);
        line[len] = '\n';
        pthread_mutex_lock(&log->lock);
        write_all(log->fd, line, len + 1);
        pthread_mutex_unlock(&log->lock);
    }
    if (line != stack)
        free(line);
}
