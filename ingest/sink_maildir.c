/*
 * sink_maildir.c — one Maildir per member (DIR/<member id>/), unrouted mail in
 * DIR/_unrouted/.  Each message is written to tmp/, fsynced and renamed into new/ as the
 * Maildir convention requires; the new/ directories touched are fsynced at commit.
 *
 * The file name is deterministic — "<internaldate>.M<uid>V<uidvalidity>S<sha256/16>.mailret"
 * — so a repeated batch finds the message already there instead of delivering it twice.
 */
#include "ingest/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct maildir_sink {
    char *dir;
    char **touched;         /* new/ directories to fsync at commit */
    size_t n_touched, cap_touched;
};

static bool maildir_id_ok(const char *id)
{
    if (id[0] == '\0' || id[0] == '.' || strlen(id) >= MEMBERS_ID_MAX)
        return false;
    return strchr(id, '/') == NULL;
}

static int maildir_mkdir(const char *path, mr_error *err)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return mr_error_errno(err, MR_E_IO, errno, "cannot create %s", path);
    return 0;
}

static int maildir_touch(struct maildir_sink *s, const char *newdir, mr_error *err)
{
    for (size_t i = 0; i < s->n_touched; i++)
        if (strcmp(s->touched[i], newdir) == 0)
            return 0;
    if (s->n_touched == s->cap_touched) {
        size_t ncap = s->cap_touched ? s->cap_touched * 2 : 8;
        char **nt = realloc(s->touched, ncap * sizeof *nt);
        if (nt == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        s->touched = nt;
        s->cap_touched = ncap;
    }
    if ((s->touched[s->n_touched] = strdup(newdir)) == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    s->n_touched++;
    return 0;
}

static int maildir_begin(void *self, mr_error *err)
{
    (void)self;
    (void)err;
    return 0;
}

static int maildir_write(const char *path, const unsigned char *data, size_t len,
                         mr_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t done = 0;

    if (fd < 0)
        return mr_error_errno(err, MR_E_IO, errno, "cannot create %s", path);
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            unlink(path);
            return mr_error_errno(err, MR_E_IO, e, "cannot write %s", path);
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        return mr_error_errno(err, MR_E_IO, e, "cannot fsync %s", path);
    }
    if (close(fd) != 0)
        return mr_error_errno(err, MR_E_IO, errno, "cannot close %s", path);
    return 0;
}

/* A write that failed for this message (a member's directory not writable, a full disk)
 * refuses this message only: it is recorded and retried, and the others go on.  Only
 * running out of memory stops the run. */
static int maildir_refuse(int rc, enum sink_outcome *out)
{
    if (rc == MR_E_NOMEM)
        return rc;
    *out = SINK_REJECTED;
    return 0;
}

static int maildir_deliver(void *self, const struct sink_message *m, enum sink_outcome *out,
                           mr_error *err)
{
    struct maildir_sink *s = self;
    const struct route_result *r = m->route;
    const char *who;
    char base[3800], name[128], tmp[4096], dst[4096], cur[4096];
    struct stat st;
    int rc;

    if (r->rule == ROUTE_OWN || r->rule == ROUTE_AUTO) {
        *out = SINK_DELIVERED;
        return 0;
    }
    who = r->rule == ROUTE_NONE ? "_unrouted" : r->member;
    if (!maildir_id_ok(who)) {
        *out = SINK_REJECTED;
        mr_error_set(err, MR_E_INVALID, "member id unusable as a Maildir name");
        return 0;
    }
    snprintf(name, sizeof name, "%lld.M%uV%uS%.16s.mailret", (long long)m->internaldate,
             m->uid, m->uidvalidity, m->sha256_hex);
    snprintf(base, sizeof base, "%s/%s", s->dir, who);
    snprintf(dst, sizeof dst, "%s/new/%s", base, name);
    snprintf(cur, sizeof cur, "%s/cur/%s:2,", base, name);
    if (stat(dst, &st) == 0 || stat(cur, &st) == 0) {
        *out = SINK_DUPLICATE;
        return 0;
    }
    snprintf(tmp, sizeof tmp, "%s/tmp", base);
    if ((rc = maildir_mkdir(base, err)) != 0 || (rc = maildir_mkdir(tmp, err)) != 0)
        return maildir_refuse(rc, out);
    snprintf(tmp, sizeof tmp, "%s/cur", base);
    if ((rc = maildir_mkdir(tmp, err)) != 0)
        return maildir_refuse(rc, out);
    snprintf(tmp, sizeof tmp, "%s/new", base);
    if ((rc = maildir_mkdir(tmp, err)) != 0 || (rc = maildir_touch(s, tmp, err)) != 0)
        return maildir_refuse(rc, out);
    snprintf(tmp, sizeof tmp, "%s/tmp/%s", base, name);
    if ((rc = maildir_write(tmp, m->raw, m->len, err)) != 0)
        return maildir_refuse(rc, out);
    if (rename(tmp, dst) != 0) {
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot move message into %s/new", who);
        unlink(tmp);
        return maildir_refuse(rc, out);
    }
    *out = SINK_DELIVERED;
    return 0;
}

static int maildir_commit(void *self, mr_error *err)
{
    struct maildir_sink *s = self;
    int rc = 0;

    for (size_t i = 0; i < s->n_touched; i++) {
        int fd = open(s->touched[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0) {
            if (rc == 0)
                rc = mr_error_errno(err, MR_E_IO, errno, "cannot fsync %s", s->touched[i]);
        }
        if (fd >= 0)
            close(fd);
        free(s->touched[i]);
    }
    s->n_touched = 0;
    return rc;
}

static void maildir_rollback(void *self)
{
    struct maildir_sink *s = self;

    /* Delivered files stay: they are complete, and the deterministic names make the
     * repeated batch see them as duplicates. */
    for (size_t i = 0; i < s->n_touched; i++)
        free(s->touched[i]);
    s->n_touched = 0;
}

static void maildir_close(void *self)
{
    struct maildir_sink *s = self;

    maildir_rollback(s);
    free(s->touched);
    free(s->dir);
    free(s);
}

static const struct sink_driver maildir_driver = {
    .name = "maildir",
    .begin = maildir_begin,
    .deliver = maildir_deliver,
    .commit = maildir_commit,
    .rollback = maildir_rollback,
    .close = maildir_close,
};

int sink_maildir_open(const char *dir, sink **out, mr_error *err)
{
    struct maildir_sink *s;
    int rc;

    if (strlen(dir) > 3700)     /* leaves room for "/<member>/new/<name>" in PATH_MAX */
        return mr_error_set(err, MR_E_CONFIG, "maildir path too long");
    if ((rc = maildir_mkdir(dir, err)) != 0)
        return rc;
    if ((s = calloc(1, sizeof *s)) == NULL || (s->dir = strdup(dir)) == NULL) {
        free(s);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    return sink_new(&maildir_driver, s, out, err);
}
