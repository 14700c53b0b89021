/* restore_out.c — the file destinations of a restore (restore.h): Maildir (one file per
 * message, byte-exact, flags in the ":2," info, mtime = INTERNALDATE, which Dovecot takes
 * as the received date, synced once at the end) and mboxrd (">From " quoting; a message
 * without a final newline gets one, the only change mbox forces — use Maildir where
 * byte-exactness matters).  Each reads what the destination holds already at open, so
 * that a repeated restore writes nothing twice. */
#include "backup/restore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "backup/maildir_keywords.h"
#include "common/durable.h"

static void to_hex(const unsigned char md[32], char hex[65])
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

/* SHA-256 of a, then of b (b may be NULL). */
static int sha256_two(const void *a, size_t alen, const void *b, size_t blen, char hex[65],
                      mr_error *err)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char md[32];
    unsigned int n = 0;
    int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(c, a, alen) == 1 &&
             (b == NULL || EVP_DigestUpdate(c, b, blen) == 1) &&
             EVP_DigestFinal_ex(c, md, &n) == 1;

    EVP_MD_CTX_free(c);
    if (!ok)
        return mr_error_set(err, MR_E_CRYPTO, "SHA-256 failed");
    to_hex(md, hex);
    return 0;
}

typedef struct restore_out restore_out;

struct restore_out {
    enum restore_format format;
    char path[4096];
    FILE *mbox;
    maildir_keywords *keywords;     /* Maildir only */
    unsigned long seq;
};

static int restore_out_open(enum restore_format format, const char *path, restore_out **out,
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
        int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0 || (o->mbox = fdopen(fd, "a+")) == NULL) {
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

static int out_put(void *self, const struct restore_msg *m, mr_error *err)
{
    restore_out *o = self;

    if (o->format == RESTORE_MAILDIR)
        return write_maildir(o, m->bytes, m->len, m->flags, m->internaldate, m->unique, err);
    return write_mbox(o, m->bytes, m->len, m->internaldate, err);
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

static int out_finish(void *self, mr_error *err)
{
    restore_out *o = self;
    int rc = 0;

    if (o->mbox != NULL) {
        if (fflush(o->mbox) != 0 || fsync(fileno(o->mbox)) != 0)
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot flush mbox %s", o->path);
    } else {
        char d[4200];
        snprintf(d, sizeof d, "%s/cur", o->path);
        /* The keyword table first: the sync then covers it with the messages. */
        rc = maildir_keywords_save(o->keywords, err);
        if (rc == 0)
            rc = sync_maildir(d, err);
    }
    return rc;
}

static void out_close(void *self)
{
    restore_out *o = self;

    if (o->mbox != NULL)
        fclose(o->mbox);
    maildir_keywords_free(o->keywords);
    free(o);
}

static size_t out_keywords_dropped(void *self)
{
    restore_out *o = self;

    return o->keywords != NULL ? maildir_keywords_dropped(o->keywords) : 0;
}

/* ---- idempotence: what is there already ---------------------------------------------- */

static int maildir_key(void *self, const unsigned char *msg, size_t len, char hex[65],
                       mr_error *err)
{
    (void)self;
    return sha256_two(msg, len, NULL, 0, hex, err);
}

/* The key of every file in cur/ and new/: its bytes are the message. */
static int maildir_scan(void *self, int (*fn)(void *, const char *, mr_error *), void *ctx,
                        mr_error *err)
{
    restore_out *o = self;
    static const char *const subs[] = { "cur", "new" };
    unsigned char *buf = malloc(1 << 16);
    int rc = 0;

    if (buf == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    for (size_t s = 0; rc == 0 && s < 2; s++) {
        char dir[4200];
        DIR *d;
        struct dirent *e;
        snprintf(dir, sizeof dir, "%s/%s", o->path, subs[s]);
        if ((d = opendir(dir)) == NULL) {
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot read %s", dir);
            break;
        }
        while (rc == 0 && (e = readdir(d)) != NULL) {
            EVP_MD_CTX *c;
            unsigned char md[32];
            unsigned int mdlen = 0;
            char hex[65];
            struct stat st;
            ssize_t n;
            int fd;
            if (e->d_name[0] == '.')
                continue;
            fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                if (fd >= 0)
                    close(fd);
                continue;       /* not a message file */
            }
            if ((c = EVP_MD_CTX_new()) == NULL ||
                EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(c);
                close(fd);
                rc = mr_error_set(err, MR_E_CRYPTO, "SHA-256 failed");
                break;
            }
            while ((n = read(fd, buf, 1 << 16)) > 0)
                EVP_DigestUpdate(c, buf, (size_t)n);
            if (n < 0)
                rc = mr_error_errno(err, MR_E_IO, errno, "cannot read %s/%s", dir, e->d_name);
            else if (EVP_DigestFinal_ex(c, md, &mdlen) != 1)
                rc = mr_error_set(err, MR_E_CRYPTO, "SHA-256 failed");
            EVP_MD_CTX_free(c);
            close(fd);
            if (rc == 0) {
                to_hex(md, hex);
                rc = fn(ctx, hex, err);
            }
        }
        closedir(d);
    }
    free(buf);
    return rc;
}

static int mbox_key(void *self, const unsigned char *msg, size_t len, char hex[65],
                    mr_error *err)
{
    (void)self;
    /* As write_mbox stores it: with a final newline. */
    return sha256_two(msg, len, len == 0 || msg[len - 1] != '\n' ? "\n" : NULL, 1, hex, err);
}

/* Split the mboxrd file at its "From " lines (every "From " inside a message is quoted), a
 * message's last blank line being the separator, ">From " unquoted once. */
static int mbox_scan(void *self, int (*fn)(void *, const char *, mr_error *), void *ctx,
                     mr_error *err)
{
    restore_out *o = self;
    EVP_MD_CTX *c = NULL;
    char *line = NULL, hex[65];
    size_t cap = 0, blanks = 0;
    ssize_t n;
    int rc = 0;

    rewind(o->mbox);
    while (rc == 0 && (n = getline(&line, &cap, o->mbox)) >= 0) {
        if (n >= 5 && memcmp(line, "From ", 5) == 0) {
            if (c != NULL) {
                unsigned char md[32];
                unsigned int mdlen = 0;
                for (size_t i = 1; i < blanks; i++)
                    EVP_DigestUpdate(c, "\n", 1);
                if (EVP_DigestFinal_ex(c, md, &mdlen) != 1)
                    rc = mr_error_set(err, MR_E_CRYPTO, "SHA-256 failed");
                EVP_MD_CTX_free(c);
                c = NULL;
                if (rc == 0) {
                    to_hex(md, hex);
                    rc = fn(ctx, hex, err);
                }
            }
            if (rc == 0 && ((c = EVP_MD_CTX_new()) == NULL ||
                            EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1))
                rc = mr_error_set(err, MR_E_CRYPTO, "SHA-256 failed");
            blanks = 0;
            continue;
        }
        if (c == NULL)
            continue;           /* not an mbox we wrote: nothing before the first "From " */
        if (n == 1 && line[0] == '\n') {
            blanks++;
            continue;
        }
        for (; blanks > 0; blanks--)
            EVP_DigestUpdate(c, "\n", 1);
        const char *p = line;
        size_t i = 0;
        while (i < (size_t)n && line[i] == '>')
            i++;
        if (i > 0 && (size_t)n - i >= 5 && memcmp(line + i, "From ", 5) == 0)
            p++, n--;
        EVP_DigestUpdate(c, p, (size_t)n);
    }
    if (rc == 0 && ferror(o->mbox))
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot read mbox %s", o->path);
    if (rc == 0 && c != NULL) {
        unsigned char md[32];
        unsigned int mdlen = 0;
        for (size_t i = 1; i < blanks; i++)
            EVP_DigestUpdate(c, "\n", 1);
        if (EVP_DigestFinal_ex(c, md, &mdlen) != 1)
            rc = mr_error_set(err, MR_E_CRYPTO, "SHA-256 failed");
        if (rc == 0) {
            to_hex(md, hex);
            rc = fn(ctx, hex, err);
        }
    }
    EVP_MD_CTX_free(c);
    free(line);
    return rc;
}

static const struct restore_driver maildir_driver = {
    .name = "maildir",
    .key = maildir_key,
    .scan = maildir_scan,
    .put = out_put,
    .finish = out_finish,
    .keywords_dropped = out_keywords_dropped,
    .close = out_close,
};

static const struct restore_driver mbox_driver = {
    .name = "mbox",
    .key = mbox_key,
    .scan = mbox_scan,
    .put = out_put,
    .finish = out_finish,
    .close = out_close,
};

int restore_maildir_open(const char *dir, restore_dest **out, mr_error *err)
{
    restore_out *o;
    int rc = restore_out_open(RESTORE_MAILDIR, dir, &o, err);

    return rc != 0 ? rc : restore_dest_new(&maildir_driver, o, out, err);
}

int restore_mbox_open(const char *path, restore_dest **out, mr_error *err)
{
    restore_out *o;
    int rc = restore_out_open(RESTORE_MBOX, path, &o, err);

    return rc != 0 ? rc : restore_dest_new(&mbox_driver, o, out, err);
}
