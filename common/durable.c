/* durable.c — see durable.h. */
#include "common/durable.h"
#include "common/crashpoint.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct durable_file {
    int fd;
    char *path;     /* final name */
    char *tmp;      /* temporary name beside it */
};

/* The directory part of path ("." for a bare name); malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *d;

    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    d = malloc((size_t)(slash - path) + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, path, (size_t)(slash - path));
    d[slash - path] = '\0';
    return d;
}

int durable_fsync_dir(const char *dir, mr_error *err)
{
    int fd, rc = 0;

    if (dir == NULL)
        return mr_error_set(err, MR_E_INVALID, "durable_fsync_dir: no directory");
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                              "cannot open directory %s", dir);
    if (fsync(fd) != 0 && errno != EINVAL)      /* EINVAL: fs without directory fsync */
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot fsync directory %s", dir);
    close(fd);
    return rc;
}

static int fsync_parent(const char *path, mr_error *err)
{
    char *dir = dir_of(path);
    int rc;

    if (dir == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    rc = durable_fsync_dir(dir, err);
    free(dir);
    return rc;
}

int durable_open(durable_file **out, const char *path, mode_t mode, mr_error *err)
{
    durable_file *f;
    size_t n;

    if (out == NULL || path == NULL || *path == '\0')
        return mr_error_set(err, MR_E_INVALID, "durable_open: no path");
    *out = NULL;
    f = calloc(1, sizeof *f);
    if (f == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    f->fd = -1;
    n = strlen(path) + 48;
    f->path = strdup(path);
    f->tmp = malloc(n);
    if (f->path == NULL || f->tmp == NULL) {
        durable_abort(f);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    /* O_EXCL with a counter instead of a global sequence: another thread or a stale
     * temp file of a crashed run just moves us to the next number. */
    for (unsigned i = 0; i < 10000; i++) {
        snprintf(f->tmp, n, "%s.tmp.%ld.%u", path, (long)getpid(), i);
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (f->fd >= 0 || errno != EEXIST)
            break;
    }
    if (f->fd < 0) {
        int e = errno;
        int code = e == ENOENT ? MR_E_NOTFOUND : (e == EACCES || e == EPERM) ? MR_E_PERM : MR_E_IO;
        free(f->tmp);
        f->tmp = NULL;      /* nothing to unlink */
        durable_abort(f);
        return mr_error_errno(err, code, e, "cannot create temporary file for %s", path);
    }
    /* The caller's mode exactly, not narrowed by the umask: files mailret writes must be
     * readable by whoever the mode says (and no one else), whatever shell started it. */
    if (fchmod(f->fd, mode) != 0) {
        int e = errno;
        durable_abort(f);
        return mr_error_errno(err, MR_E_IO, e, "cannot set mode of %s", path);
    }
    *out = f;
    return 0;
}

int durable_write(durable_file *f, const void *data, size_t len, mr_error *err)
{
    const unsigned char *p = data;

    if (f == NULL || f->fd < 0 || (data == NULL && len > 0))
        return mr_error_set(err, MR_E_INVALID, "durable_write: bad arguments");
    while (len > 0) {
        ssize_t w = write(f->fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            /* EFBIG (file-size limit) is a size limit, not a broken disk. */
            return mr_error_errno(err, errno == EFBIG ? MR_E_LIMIT : MR_E_IO, errno,
                                  "cannot write %s", f->path);
        }
        if (w == 0)
            return mr_error_set(err, MR_E_IO, "cannot write %s: short write", f->path);
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int durable_fd(const durable_file *f)
{
    return f == NULL ? -1 : f->fd;
}

int durable_commit(durable_file *f, mr_error *err)
{
    int rc = 0;

    if (f == NULL)
        return mr_error_set(err, MR_E_INVALID, "durable_commit: no file");
    /* fsync before rename: otherwise a power cut can leave the new name with no data. */
    if (fsync(f->fd) != 0)
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot fsync %s", f->path);
    if (close(f->fd) != 0 && rc == 0)
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot close %s", f->path);
    f->fd = -1;
    mr_crash_point("durable-before-rename", f->path);
    if (rc == 0 && rename(f->tmp, f->path) != 0)
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot rename temporary file to %s", f->path);
    if (rc != 0) {
        durable_abort(f);
        return rc;
    }
    free(f->tmp);
    f->tmp = NULL;
    rc = fsync_parent(f->path, err);
    if (rc != 0)
        mr_error_prefix(err, "%s written but its directory not synced", f->path);
    durable_abort(f);
    return rc;
}

void durable_abort(durable_file *f)
{
    if (f == NULL)
        return;
    if (f->fd >= 0)
        close(f->fd);
    if (f->tmp != NULL)
        unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    free(f);
}

int durable_write_file(const char *path, const void *data, size_t len, mode_t mode,
                       mr_error *err)
{
    durable_file *f = NULL;
    int rc = durable_open(&f, path, mode, err);

    if (rc != 0)
        return rc;
    rc = durable_write(f, data, len, err);
    if (rc != 0) {
        durable_abort(f);
        return rc;
    }
    return durable_commit(f, err);
}

int durable_mkdirs(const char *dir, mode_t mode, mr_error *err)
{
    char *buf;
    size_t len;
    struct stat st;
    int rc = 0;

    if (dir == NULL || *dir == '\0')
        return mr_error_set(err, MR_E_INVALID, "durable_mkdirs: no directory");
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return mr_error_set(err, MR_E_EXISTS, "%s exists and is not a directory", dir);
        return 0;
    }
    buf = strdup(dir);
    if (buf == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    /* Walk the prefixes "a", "a/b", "a/b/c", creating what is missing. */
    for (size_t i = 1; i <= len && rc == 0; i++) {
        char saved;
        if (i < len && buf[i] != '/')
            continue;
        saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, mode) == 0) {
            /* Exact mode, as in durable_open; then make the new entry durable. */
            if (chmod(buf, mode) != 0)
                rc = mr_error_errno(err, MR_E_IO, errno, "cannot set mode of %s", buf);
            else
                rc = fsync_parent(buf, err);
        } else if (errno == EEXIST) {
            if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
                rc = mr_error_set(err, MR_E_EXISTS, "%s exists and is not a directory", buf);
        } else {
            int e = errno;
            rc = mr_error_errno(err, (e == EACCES || e == EPERM) ? MR_E_PERM : MR_E_IO, e,
                                "cannot create directory %s", buf);
        }
        buf[i] = saved;
    }
    free(buf);
    return rc;
}

int durable_shred(const char *path, mr_error *err)
{
    static const unsigned char zeros[65536];
    struct stat st;
    off_t left;
    int fd, rc = 0;

    if (path == NULL)
        return mr_error_set(err, MR_E_INVALID, "durable_shred: no path");
    fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        return mr_error_errno(err, e == ENOENT ? MR_E_NOTFOUND : MR_E_IO, e,
                              "cannot open %s to shred it", path);
    }
    if (fstat(fd, &st) != 0) {
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot stat %s", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = mr_error_set(err, MR_E_INVALID, "%s is not a regular file; not shredding", path);
        goto out;
    }
    for (left = st.st_size; left > 0;) {
        size_t chunk = left > (off_t)sizeof zeros ? sizeof zeros : (size_t)left;
        ssize_t w = write(fd, zeros, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot overwrite %s", path);
            goto out;
        }
        left -= w;
    }
    if (fsync(fd) != 0) {
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot fsync %s", path);
        goto out;
    }
out:
    close(fd);
    if (rc != 0)
        return rc;
    if (unlink(path) != 0)
        return mr_error_errno(err, MR_E_IO, errno, "cannot remove %s", path);
    return fsync_parent(path, err);
}

/* "<name>.tmp.<pid>.<n>" as durable_open makes them: the pid, or 0 if not that shape. */
static long tmp_pid(const char *name)
{
    const char *t = NULL;
    char *end;
    long pid;

    for (const char *p = strstr(name, ".tmp."); p != NULL; p = strstr(p + 1, ".tmp."))
        t = p;
    if (t == NULL || t == name)
        return 0;
    pid = strtol(t + 5, &end, 10);
    if (pid <= 0 || *end != '.' || end[1] == '\0')
        return 0;
    for (const char *q = end + 1; *q != '\0'; q++)
        if (*q < '0' || *q > '9')
            return 0;
    return pid;
}

int durable_sweep_tmp(const char *dir, bool shred, size_t *removed, mr_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int rc = 0;

    if (removed != NULL)
        *removed = 0;
    if (d == NULL)
        return errno == ENOENT ? 0 : mr_error_errno(err, MR_E_IO, errno, "cannot read %s", dir);
    while (rc == 0 && (de = readdir(d)) != NULL) {
        long pid = tmp_pid(de->d_name);
        char path[PATH_MAX];
        struct stat st;
        /* A live writer's file (this process, or another mailret now) is not stale. */
        if (pid == 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= sizeof path)
            continue;
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (shred)
            rc = durable_shred(path, err);
        else if (unlink(path) != 0 && errno != ENOENT)
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot remove %s", path);
        if (rc == 0 && removed != NULL)
            (*removed)++;
    }
    closedir(d);
    return rc;
}
