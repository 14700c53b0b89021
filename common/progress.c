/* progress.c — see progress.h. */
#include "common/progress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* A human watches; more redraws only cost a slow terminal time. */
#define PROGRESS_INTERVAL_S 0.25

struct mr_progress {
    int fd;
    double (*now)(void);
    char label[128];
    size_t total, done;
    uint64_t bytes;
    double started, last_draw;
    bool drawn;
};

static double monotonic_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool progress_wanted(void)
{
    const char *inv = getenv("INVOCATION_ID");

    return isatty(STDERR_FILENO) && (inv == NULL || *inv == '\0')
        && !log_fd_is_journal(STDERR_FILENO);
}

int progress_open(mr_progress **out, int fd, mr_error *err)
{
    mr_progress *p = calloc(1, sizeof *p);

    *out = NULL;
    if (p == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    p->fd = fd;
    p->now = monotonic_now;
    *out = p;
    return 0;
}

void progress_close(mr_progress *p)
{
    if (p == NULL)
        return;
    progress_finish(p);
    free(p);
}

void progress_set_clock(mr_progress *p, double (*now)(void))
{
    if (p != NULL)
        p->now = now != NULL ? now : monotonic_now;
}

static void human_bytes(double b, char *buf, size_t size)
{
    static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
    size_t u = 0;

    while (b >= 1000.0 && u + 1 < sizeof units / sizeof units[0]) {
        b /= 1000.0;
        u++;
    }
    snprintf(buf, size, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
}

static void human_duration(double s, char *buf, size_t size)
{
    long t = (long)(s + 0.5);

    if (t >= 3600)
        snprintf(buf, size, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, size, "%lds", t);
}

static void draw(mr_progress *p, double now)
{
    char line[512], size[32], rate[32], eta[32];
    double elapsed = now - p->started;
    int n;

    human_bytes((double)p->bytes, size, sizeof size);
    if (elapsed > 0.0)
        human_bytes((double)p->bytes / elapsed, rate, sizeof rate);
    else
        snprintf(rate, sizeof rate, "-");
    if (p->total > 0 && p->done > 0 && p->done < p->total && elapsed > 0.0)
        human_duration(elapsed / (double)p->done * (double)(p->total - p->done), eta,
                       sizeof eta);
    else
        snprintf(eta, sizeof eta, "-");
    if (p->total > 0)
        n = snprintf(line, sizeof line, "\r%s: %zu/%zu messages, %s, %s/s, ETA %s\033[K",
                     p->label, p->done, p->total, size, rate, eta);
    else
        n = snprintf(line, sizeof line, "\r%s: %zu messages, %s, %s/s\033[K", p->label,
                     p->done, size, rate);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = (int)sizeof line - 1;
    /* Best effort: a terminal that went away must not fail the run. */
    for (const char *s = line; n > 0;) {
        ssize_t w = write(p->fd, s, (size_t)n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        s += w;
        n -= (int)w;
    }
    p->drawn = true;
    p->last_draw = now;
}

void progress_start(mr_progress *p, const char *label, size_t total)
{
    char buf[sizeof p->label];

    if (p == NULL)
        return;
    progress_finish(p);
    /* Labels are mailbox names: scrubbed like a log line. */
    snprintf(buf, sizeof buf, "%s", label != NULL ? label : "");
    log_scrub(buf);
    memcpy(p->label, buf, sizeof buf);
    p->total = total;
    p->done = 0;
    p->bytes = 0;
    p->started = p->now();
    p->last_draw = p->started;
    p->drawn = false;
}

void progress_add(mr_progress *p, size_t messages, uint64_t bytes)
{
    double now;

    if (p == NULL)
        return;
    p->done += messages;
    p->bytes += bytes;
    now = p->now();
    if (now - p->last_draw >= PROGRESS_INTERVAL_S)
        draw(p, now);
}

void progress_finish(mr_progress *p)
{
    if (p == NULL || (!p->drawn && p->done == 0))
        return;
    draw(p, p->now());
    (void)!write(p->fd, "\n", 1);
    p->drawn = false;
    p->done = 0;
}
