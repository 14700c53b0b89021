/* restore_out.c — writing restored messages: Maildir (one file per message, byte-exact,
 * flags in the ":2," info, mtime = INTERNALDATE, which Dovecot takes as the received date,
 * synced once at the end)
 * or mboxrd (">From " quoting; a message without a final newline gets one, the only change
 * mbox forces — use Maildir where byte-exactness matters). */
#include "backup/restore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup/maildir_keywords.h"
#include "common/durable.h"

struct restore_out {
    enum restore_format format;
    char path[4096];
    FILE *mbox;
    maildir_keywords *keywords;     /* Maildir only */
    unsigned long seq;
};

int restore_out_open(enum restore_format format, const char *path, restore_out **out,
                     mr_error *err)
{
    restore_out *o = calloc(1, sizeof *o);
    int rc = 0;

    if (o == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    o->format = format;
    snprintf(o->path, sizeof o->path, "%s", path);
    if (format == RESTORE_MAILDIR) {
        static const char *const subs[] = { "tmp", "new", "cur" };
        for (size_t i = 0; rc == 0 && i < 3; i++) {
            char d[4200];
            snprintf(d, sizeof d, "%s/%s", path, subs[i]);
            rc = durable_mkdirs(d, 0700, err);
        }
        if (rc == 0)
            rc = maildir_keywords_open(path, &o->keywords, err);
    } else {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0 || (o->mbox = fdopen(fd, "a")) == NULL) {
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot open mbox %s", path);
            if (fd >= 0)
                close(fd);
        }
    }
    if (rc != 0) {
        free(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* IMAP system flags -> Maildir info letters, in ASCII order as the spec requires (the
 * keywords' lower-case letters follow, see maildir_keywords.h). */
static void maildir_info(const char *flags, char *out)
{
    static const struct { const char *imap; char letter; } map[] = {
        { "\\Draft", 'D' }, { "\\Flagged", 'F' }, { "\\Answered", 'R' },
        { "\\Seen", 'S' }, { "\\Deleted", 'T' },
    };
    size_t n = 0;

    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *p = flags;
        size_t l = strlen(map[i].imap);
        while ((p = strstr(p, map[i].imap)) != NULL) {
            if ((p == flags || p[-1] == ' ') && (p[l] == '\0' || p[l] == ' ')) {
                out[n++] = map[i].letter;
                break;
            }
            p += l;
        }
    }
    out[n] = '\0';
}

/* One message, the Maildir way: written under tmp/, renamed into cur/.  Not fsynced one by
 * one (that cost two fsyncs a message and made restores slower than the disk): the whole
 * file system is synced once in restore_out_close, and the restore counts as done only
 * after that.  A restore that dies before then leaves a Maildir to be thrown away, never a
 * half-written message under a cur/ name that a finished restore reported. */
static int write_maildir(restore_out *o, const unsigned char *msg, size_t len,
                         const char *flags, time_t date, const char *unique, mr_error *err)
{
    char info[8 + MAILDIR_KEYWORDS_MAX], name[512], tmp[4700], dst[4700];
    struct timespec ts[2] = { { .tv_sec = date }, { .tv_sec = date } };
    size_t done = 0;
    int fd, rc;

    maildir_info(flags != NULL ? flags : "", info);
    rc = maildir_keywords_letters(o->keywords, flags, info + strlen(info), err);
    if (rc != 0)
        return rc;
    snprintf(name, sizeof name, "%lld.M%luP%d.%s.mailret:2,%s", (long long)date, ++o->seq,
             (int)getpid(), unique, info);
    snprintf(tmp, sizeof tmp, "%s/tmp/%s", o->path, name);
    snprintf(dst, sizeof dst, "%s/cur/%s", o->path, name);
    if (access(dst, F_OK) == 0)
        return mr_error_set(err, MR_E_EXISTS, "refusing to overwrite %s", dst);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    rc = 0;
    if (fd < 0)
        return mr_error_errno(err, MR_E_IO, errno, "cannot create %s", tmp);
    while (rc == 0 && done < len) {
        ssize_t n = write(fd, msg + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = mr_error_errno(err, errno == ENOSPC ? MR_E_NOSPACE : MR_E_IO, errno,
                                "cannot write %s", tmp);
        else
            done += (size_t)n;
    }
    /* mtime = INTERNALDATE: Dovecot takes it as the received date. */
    if (rc == 0 && futimens(fd, ts) != 0)
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot set the date of %s", tmp);
    if (close(fd) != 0 && rc == 0)
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot write %s", tmp);
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot move message into %s/cur", o->path);
    if (rc != 0)
        (void)unlink(tmp);
    return rc;
}

static int is_from_line(const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n && p[i] == '>')
        i++;
    return n - i >= 5 && memcmp(p + i, "From ", 5) == 0;
}

static int write_mbox(restore_out *o, const unsigned char *msg, size_t len, time_t date,
                      mr_error *err)
{
    char line[64];
    struct tm tm;
    size_t pos = 0;

    gmtime_r(&date, &tm);
    strftime(line, sizeof line, "From MAILER-DAEMON %a %b %e %H:%M:%S %Y\n", &tm);
    fputs(line, o->mbox);
    while (pos < len) {
        const unsigned char *nl = memchr(msg + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - msg) + 1 : len;
        if (is_from_line(msg + pos, end - pos))
            fputc('>', o->mbox);
        fwrite(msg + pos, 1, end - pos, o->mbox);
        pos = end;
    }
    if (len == 0 || msg[len - 1] != '\n')
        fputc('\n', o->mbox);
    fputc('\n', o->mbox);
    if (ferror(o->mbox))
        return mr_error_errno(err, MR_E_IO, errno, "cannot write mbox %s", o->path);
    return 0;
}

int restore_out_write(restore_out *o, const unsigned char *msg, size_t len, const char *flags,
                      time_t internaldate, const char *unique, mr_error *err)
{
    if (o->format == RESTORE_MAILDIR)
        return write_maildir(o, msg, len, flags, internaldate, unique, err);
    return write_mbox(o, msg, len, internaldate, err);
}

/* Every message written so far, and cur/ itself, on disk: one syncfs(2) of the file system
 * that holds the Maildir (Linux), then an fsync of cur/ for file systems where syncfs alone
 * does not order directory entries. */
static int sync_maildir(const char *cur, mr_error *err)
{
    int fd = open(cur, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return mr_error_errno(err, MR_E_IO, errno, "cannot open %s", cur);
    if (syncfs(fd) != 0)
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot sync the file system of %s", cur);
    close(fd);
    return rc == 0 ? durable_fsync_dir(cur, err) : rc;
}

int restore_out_close(restore_out *o, mr_error *err)
{
    int rc = 0;

    if (o == NULL)
        return 0;
    if (o->mbox != NULL) {
        if (fflush(o->mbox) != 0 || fsync(fileno(o->mbox)) != 0)
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot flush mbox %s", o->path);
        if (fclose(o->mbox) != 0 && rc == 0)
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot close mbox %s", o->path);
    } else {
        char d[4200];
        snprintf(d, sizeof d, "%s/cur", o->path);
        /* The keyword table first: the sync then covers it with the messages. */
        rc = maildir_keywords_save(o->keywords, err);
        if (rc == 0)
            rc = sync_maildir(d, err);
    }
    maildir_keywords_free(o->keywords);
    free(o);
    return rc;
}

size_t restore_out_keywords_dropped(const restore_out *o)
{
    return o->keywords != NULL ? maildir_keywords_dropped(o->keywords) : 0;
}
