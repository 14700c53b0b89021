/*
 * audit.c — see audit.h.
 *
 * Hash of a record = SHA-256 of the line's bytes without its trailing newline.
 * Head file "<log>.head" = {"seq":N,"hash":"<hash of record N>","size":<log bytes>}.
 *
 * An append is: lock, check the log against the head, write the line, fsync the log,
 * write the head durably, unlock.  A crash can therefore leave (a) a torn last line
 * that the head does not cover, which the next append cuts off (it was never
 * acknowledged), or (b) one whole record that the head does not cover yet, which the
 * next append adopts and audit_verify accepts — both are exactly what an interrupted
 * append looks like, and neither can hide a record that was acknowledged.  Anything
 * else (log shorter than the head says, other unrecorded bytes) is tampering.
 */
#include "common/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/durable.h"
#include "common/mrtime.h"

#define HASH_HEX 65     /* 64 hex digits + NUL */
#define AUDIT_MODE 0640

static const char ZERO_HASH[HASH_HEX] =
    "0000000000000000000000000000000000000000000000000000000000000000";

struct audit_log {
    char *path;
    char *head_path;
    int fd;
    pthread_mutex_t lock;   /* flock excludes other processes, not our own threads */
    char user[64];
};

struct audit_head {
    long long seq;
    char hash[HASH_HEX];
    long long size;
};

static int sha256_hex(const void *data, size_t len, char out[HASH_HEX], mr_error *err)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return mr_error_openssl(err, MR_E_CRYPTO, "SHA-256 failed");
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

static int is_hash_hex(const char *s)
{
    if (s == NULL || strlen(s) != 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

static char *head_path_of(const char *path)
{
    size_t n = strlen(path) + sizeof ".head";
    char *h = malloc(n);

    if (h != NULL)
        snprintf(h, n, "%s.head", path);
    return h;
}

/* The login name of the effective user, or "uid:N" if it has none. */
static void current_user(char *buf, size_t size)
{
    struct passwd pw, *res = NULL;
    char tmp[4096];

    if (getpwuid_r(geteuid(), &pw, tmp, sizeof tmp, &res) == 0 && res != NULL &&
        pw.pw_name != NULL && strlen(pw.pw_name) < size)
        snprintf(buf, size, "%s", pw.pw_name);
    else
        snprintf(buf, size, "uid:%ld", (long)geteuid());
}

int audit_open(audit_log **out, const char *path, mr_error *err)
{
    audit_log *log;

    if (out == NULL || path == NULL || *path == '\0')
        return mr_error_set(err, MR_E_INVALID, "audit_open: no path");
    *out = NULL;
    log = calloc(1, sizeof *log);
    if (log == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    log->fd = -1;
    log->path = strdup(path);
    log->head_path = head_path_of(path);
    if (log->path == NULL || log->head_path == NULL) {
        audit_close(log);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    /* The first command on a fresh host (keys init-host) creates the state directory the
     * log lives in; private, like everything else there. */
    {
        char *slash = strrchr(log->path, '/');
        if (slash != NULL && slash != log->path) {
            int rc;
            *slash = '\0';
            rc = durable_mkdirs(log->path, 0700, err);
            *slash = '/';
            if (rc != 0) {
                audit_close(log);
                return mr_error_prefix(err, "audit log");
            }
        }
    }
    log->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, AUDIT_MODE);
    if (log->fd < 0) {
        int e = errno;
        audit_close(log);
        return mr_error_errno(err, e == ENOENT ? MR_E_NOTFOUND : MR_E_IO, e,
                              "cannot open audit log %s", path);
    }
    if (pthread_mutex_init(&log->lock, NULL) != 0) {
        close(log->fd);
        log->fd = -1;
        audit_close(log);
        return mr_error_set(err, MR_E_INTERNAL, "audit_open: cannot create mutex");
    }
    current_user(log->user, sizeof log->user);
    *out = log;
    return 0;
}

void audit_close(audit_log *log)
{
    if (log == NULL)
        return;
    if (log->fd >= 0) {
        close(log->fd);
        pthread_mutex_destroy(&log->lock);
    }
    free(log->path);
    free(log->head_path);
    free(log);
}

/* Read the head file.  Returns 0, MR_E_NOTFOUND if absent, or another error. */
static int head_read(const char *head_path, struct audit_head *h, mr_error *err)
{
    json_t *root, *seq, *hash, *size;
    json_error_t jerr;
    FILE *f = fopen(head_path, "rb");
    int rc = 0;

    if (f == NULL) {
        if (errno == ENOENT)
            return mr_error_set(err, MR_E_NOTFOUND, "audit head file %s is missing", head_path);
        return mr_error_errno(err, MR_E_IO, errno, "cannot read audit head file %s", head_path);
    }
    root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    if (root == NULL)
        return mr_error_set(err, MR_E_TAMPERED, "audit head file %s is not valid JSON",
                            head_path);
    seq = json_object_get(root, "seq");
    hash = json_object_get(root, "hash");
    size = json_object_get(root, "size");
    if (!json_is_integer(seq) || !json_is_string(hash) || !json_is_integer(size) ||
        json_integer_value(seq) < 0 || json_integer_value(size) < 0 ||
        !is_hash_hex(json_string_value(hash))) {
        rc = mr_error_set(err, MR_E_TAMPERED, "audit head file %s is malformed", head_path);
    } else {
        h->seq = json_integer_value(seq);
        h->size = json_integer_value(size);
        memcpy(h->hash, json_string_value(hash), HASH_HEX);
    }
    json_decref(root);
    return rc;
}

static int head_write(const char *head_path, const struct audit_head *h, mr_error *err)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "{\"seq\":%lld,\"hash\":\"%s\",\"size\":%lld}\n",
                     h->seq, h->hash, h->size);

    if (n < 0 || (size_t)n >= sizeof buf)
        return mr_error_set(err, MR_E_INTERNAL, "audit head too long");
    return durable_write_file(head_path, buf, (size_t)n, AUDIT_MODE, err);
}

/* One record line (without newline): checks shape, returns seq and prev (borrowed from
 * *root, which the caller frees). */
static int record_parse(const char *line, size_t len, json_t **root, long long *seq,
                        const char **prev)
{
    json_error_t jerr;
    json_t *s, *p;

    *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (*root == NULL || !json_is_object(*root))
        return -1;
    s = json_object_get(*root, "seq");
    p = json_object_get(*root, "prev");
    if (!json_is_integer(s) || !json_is_string(p) || !is_hash_hex(json_string_value(p)) ||
        !json_is_string(json_object_get(*root, "time")) ||
        !json_is_string(json_object_get(*root, "user")) ||
        !json_is_string(json_object_get(*root, "event")))
        return -2;
    *seq = json_integer_value(s);
    *prev = json_string_value(p);
    return 0;
}

static int read_range(int fd, off_t from, size_t len, char *buf, mr_error *err,
                      const char *path)
{
    size_t got = 0;

    while (got < len) {
        ssize_t r = pread(fd, buf + got, len - got, from + (off_t)got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return mr_error_errno(err, MR_E_IO, errno, "cannot read audit log %s", path);
        }
        if (r == 0)
            return mr_error_set(err, MR_E_IO, "audit log %s: unexpected end", path);
        got += (size_t)r;
    }
    return 0;
}

/* With the lock held: where the chain stands, repairing an interrupted append. */
static int chain_tail(audit_log *log, struct audit_head *h, mr_error *err)
{
    struct stat st;
    int rc;

    if (fstat(log->fd, &st) != 0)
        return mr_error_errno(err, MR_E_IO, errno, "cannot stat audit log %s", log->path);
    rc = head_read(log->head_path, h, err);
    if (rc == MR_E_NOTFOUND) {
        if (st.st_size != 0)
            return mr_error_set(err, MR_E_TAMPERED,
                                "audit log %s has records but its head file is missing",
                                log->path);
        h->seq = 0;
        h->size = 0;
        memcpy(h->hash, ZERO_HASH, HASH_HEX);
        return 0;
    }
    if (rc != 0)
        return rc;
    if (st.st_size < h->size)
        return mr_error_set(err, MR_E_TAMPERED,
                            "audit log %s is shorter than its head file records "
                            "(records removed from the end?)", log->path);
    if (st.st_size > h->size) {
        size_t extra = (size_t)(st.st_size - h->size);
        char *buf, *nl;
        json_t *root = NULL;
        long long seq;
        const char *prev;

        if (extra > (1u << 24))
            return mr_error_set(err, MR_E_TAMPERED,
                                "audit log %s has %zu bytes not covered by its head file",
                                log->path, extra);
        buf = malloc(extra);
        if (buf == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        rc = read_range(log->fd, (off_t)h->size, extra, buf, err, log->path);
        if (rc != 0) {
            free(buf);
            return rc;
        }
        nl = memchr(buf, '\n', extra);
        if (nl == NULL) {
            /* A torn append that was never acknowledged: cut it off. */
            free(buf);
            if (ftruncate(log->fd, (off_t)h->size) != 0 || fsync(log->fd) != 0)
                return mr_error_errno(err, MR_E_IO, errno,
                                      "cannot cut a torn record off audit log %s", log->path);
            return 0;
        }
        if (nl != buf + extra - 1 ||
            record_parse(buf, extra - 1, &root, &seq, &prev) != 0 || seq != h->seq + 1 ||
            strcmp(prev, h->hash) != 0) {
            json_decref(root);
            free(buf);
            return mr_error_set(err, MR_E_TAMPERED,
                                "audit log %s has data after record %lld that its head "
                                "file does not cover", log->path, h->seq);
        }
        json_decref(root);
        /* The append completed but its head update did not: adopt the record. */
        rc = sha256_hex(buf, extra - 1, h->hash, err);
        free(buf);
        if (rc != 0)
            return rc;
        h->seq = seq;
        h->size = st.st_size;
    }
    return 0;
}

/* Event names and field keys are code constants ("keys.epoch.create", "batch"); keeping
 * them to this alphabet keeps data (and so identifiers) out of them. */
static int is_token(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 64)
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static char *record_build(const audit_log *log, long long seq, const char *event,
                          const struct audit_field *fields, size_t n_fields,
                          const char *prev, mr_error *err)
{
    static const char *const reserved[] = { "seq", "time", "user", "event", "prev" };
    json_t *obj = json_object();
    char stamp[32];
    char *line = NULL;

    if (obj == NULL) {
        mr_error_set(err, MR_E_NOMEM, "out of memory");
        return NULL;
    }
    mrtime_format_utc(time(NULL), stamp, sizeof stamp);
    if (json_object_set_new(obj, "seq", json_integer(seq)) != 0 ||
        json_object_set_new(obj, "time", json_string(stamp)) != 0 ||
        json_object_set_new(obj, "user", json_string(log->user)) != 0 ||
        json_object_set_new(obj, "event", json_string(event)) != 0)
        goto nomem;
    for (size_t i = 0; i < n_fields; i++) {
        const char *key = fields[i].key;
        json_t *jv;

        if (!is_token(key) || fields[i].value == NULL) {
            mr_error_set(err, MR_E_INVALID,
                         "audit event %s: field %zu has no value or a bad name", event, i);
            goto fail;
        }
        for (size_t r = 0; r < sizeof reserved / sizeof reserved[0]; r++) {
            if (strcmp(key, reserved[r]) == 0) {
                mr_error_set(err, MR_E_INVALID, "audit event %s: field name '%s' is reserved",
                             event, key);
                goto fail;
            }
        }
        if (json_object_get(obj, key) != NULL) {
            mr_error_set(err, MR_E_INVALID, "audit event %s: field '%s' given twice", event, key);
            goto fail;
        }
        /* Values are stored exactly as given, not passed through log_scrub: the audit
         * log is evidence, and its values are ids, sizes, counts and UIDVALIDITYs that
         * often have the shape of a phone or CPR number.  Keeping identifiers out is the
         * caller's duty (audit.h); names and keys are restricted above. */
        jv = json_string(fields[i].value);
        if (jv == NULL) {
            mr_error_set(err, MR_E_INVALID, "audit event %s: field '%s' is not UTF-8",
                         event, key);
            goto fail;
        }
        if (json_object_set_new(obj, key, jv) != 0)
            goto nomem;
    }
    if (json_object_set_new(obj, "prev", json_string(prev)) != 0)
        goto nomem;
    line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (line == NULL)
        goto nomem;
    json_decref(obj);
    return line;
nomem:
    mr_error_set(err, MR_E_NOMEM, "out of memory");
fail:
    json_decref(obj);
    return NULL;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

static void head_announce(const audit_log *log, long long seq, const char *hash);

static int append_locked(audit_log *log, const char *event, const struct audit_field *fields,
                         size_t n_fields, mr_error *err)
{
    struct audit_head h;
    char *line;
    size_t len;
    int rc = chain_tail(log, &h, err);

    if (rc != 0)
        return rc;
    line = record_build(log, h.seq + 1, event, fields, n_fields, h.hash, err);
    if (line == NULL)
        return err != NULL && err->code != 0 ? err->code : MR_E_NOMEM;
    len = strlen(line);
    rc = sha256_hex(line, len, h.hash, err);
    if (rc == 0) {
        line[len] = '\n';   /* replaces the NUL; json_dumps' buffer is not reused after */
        if (write_all(log->fd, line, len + 1) != 0 || fsync(log->fd) != 0) {
            int e = errno;
            rc = mr_error_errno(err, MR_E_IO, e, "cannot append to audit log %s", log->path);
            /* Leave no partial record behind; if even that fails, the next append's
             * torn-line repair does it. */
            if (ftruncate(log->fd, (off_t)h.size) == 0)
                (void)fsync(log->fd);
        }
    }
    free(line);
    if (rc != 0)
        return rc;
    h.seq++;
    h.size += (long long)len + 1;
    rc = head_write(log->head_path, &h, err);
    if (rc != 0)
        mr_error_prefix(err, "audit record %lld written but head not updated", h.seq);
    else
        head_announce(log, h.seq, h.hash);
    return rc;
}

/* The new head, at notice priority, to syslog (journald's /dev/log): a copy of the head
 * the host's disk does not hold, for `audit verify --anchor`.  Best effort and never
 * blocking: the chain itself is the record; MAILRET_SYSLOG_SOCKET names another socket
 * (for the tests). */
static void head_announce(const audit_log *log, long long seq, const char *hash)
{
    const char *path = getenv("MAILRET_SYSLOG_SOCKET");
    struct sockaddr_un sa;
    char msg[512];
    int fd, n;

    if (path == NULL || *path == '\0')
        path = "/dev/log";
    if (strlen(path) >= sizeof sa.sun_path)
        return;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    /* <13>: facility user, severity notice. */
    n = snprintf(msg, sizeof msg, "<13>mailret[%ld]: audit head seq=%lld hash=%s log=%s",
                 (long)getpid(), seq, hash, log->path);
    if (n < 0 || (size_t)n >= sizeof msg)
        return;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return;
    (void)sendto(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa,
                 sizeof sa);
    close(fd);
}

int audit_head(audit_log *log, long long *seq, char hash[65], mr_error *err)
{
    struct audit_head h;
    int rc;

    if (log == NULL || seq == NULL || hash == NULL)
        return mr_error_set(err, MR_E_INVALID, "audit_head: bad arguments");
    pthread_mutex_lock(&log->lock);
    while ((rc = flock(log->fd, LOCK_EX)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot lock audit log %s", log->path);
        pthread_mutex_unlock(&log->lock);
        return rc;
    }
    rc = chain_tail(log, &h, err);
    flock(log->fd, LOCK_UN);
    pthread_mutex_unlock(&log->lock);
    if (rc == 0) {
        *seq = h.seq;
        memcpy(hash, h.hash, HASH_HEX);
    }
    return rc;
}

int audit_append(audit_log *log, const char *event, const struct audit_field *fields,
                 size_t n_fields, mr_error *err)
{
    int rc;

    if (log == NULL || (fields == NULL && n_fields > 0))
        return mr_error_set(err, MR_E_INVALID, "audit_append: bad arguments");
    if (!is_token(event))
        return mr_error_set(err, MR_E_INVALID,
                            "audit_append: event name must be 1-64 of [A-Za-z0-9._-]");
    pthread_mutex_lock(&log->lock);
    while ((rc = flock(log->fd, LOCK_EX)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot lock audit log %s", log->path);
        pthread_mutex_unlock(&log->lock);
        return rc;
    }
    rc = append_locked(log, event, fields, n_fields, err);
    flock(log->fd, LOCK_UN);
    pthread_mutex_unlock(&log->lock);
    return rc;
}

/* Verification state carried from line to line. */
struct verify_state {
    long long anchor_seq;       /* 0: none */
    const char *anchor_hash;
    bool anchor_seen;
    long long records;
    char hash[HASH_HEX];        /* hash of the last record */
    char prev_hash[HASH_HEX];   /* hash of the record before it */
    long long last_start;       /* byte offset of the last record */
};

static int verify_line(const char *path, long long ln, const char *line, size_t len,
                       struct verify_state *vs, mr_error *err)
{
    json_t *root = NULL;
    long long seq;
    const char *prev;
    int prc = record_parse(line, len, &root, &seq, &prev);
    int rc = 0;

    if (prc == -1)
        rc = mr_error_set(err, MR_E_TAMPERED, "audit log %s line %lld: not a valid JSON object",
                          path, ln);
    else if (prc != 0)
        rc = mr_error_set(err, MR_E_TAMPERED,
                          "audit log %s line %lld: record lacks seq, time, user, event or prev",
                          path, ln);
    else if (seq != vs->records + 1)
        rc = mr_error_set(err, MR_E_TAMPERED,
                          "audit log %s line %lld: seq %lld where %lld was expected "
                          "(record removed or reordered)", path, ln, seq, vs->records + 1);
    else if (strcmp(prev, vs->hash) != 0)
        rc = mr_error_set(err, MR_E_TAMPERED,
                          "audit log %s line %lld: prev does not match the hash of line %lld "
                          "(line %lld edited, or records removed or reordered)",
                          path, ln, ln - 1, ln - 1);
    json_decref(root);
    if (rc != 0)
        return rc;
    memcpy(vs->prev_hash, vs->hash, HASH_HEX);
    rc = sha256_hex(line, len, vs->hash, err);
    vs->records++;
    if (rc == 0 && vs->records == vs->anchor_seq) {
        if (strcmp(vs->hash, vs->anchor_hash) != 0)
            return mr_error_set(err, MR_E_TAMPERED,
                                "audit log %s line %lld: record %lld is not the one the "
                                "anchor recorded (the log was rewritten up to here)",
                                path, ln, vs->anchor_seq);
        vs->anchor_seen = true;
    }
    return rc;
}

static int verify_run(const char *path, long long anchor_seq, const char *anchor_hash,
                      size_t *n_records, mr_error *err);

int audit_verify(const char *path, size_t *n_records, mr_error *err)
{
    return verify_run(path, 0, NULL, n_records, err);
}

int audit_verify_anchor(const char *path, long long seq, const char *hash,
                        size_t *n_records, mr_error *err)
{
    if (seq <= 0 || hash == NULL || !is_hash_hex(hash))
        return mr_error_set(err, MR_E_INVALID, "audit anchor: a seq >= 1 and a SHA-256 in "
                            "hex are needed");
    return verify_run(path, seq, hash, n_records, err);
}

static int verify_run(const char *path, long long anchor_seq, const char *anchor_hash,
                      size_t *n_records, mr_error *err)
{
    struct verify_state vs;
    struct audit_head h;
    char *line = NULL, *head_path;
    size_t cap = 0;
    ssize_t got;
    long long offset = 0, ln = 0;
    FILE *f;
    int rc = 0, hrc;

    if (n_records != NULL)
        *n_records = 0;
    if (path == NULL)
        return mr_error_set(err, MR_E_INVALID, "audit_verify: no path");
    f = fopen(path, "rb");
    if (f == NULL)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                              "cannot open audit log %s", path);
    memset(&vs, 0, sizeof vs);
    vs.anchor_seq = anchor_seq;
    vs.anchor_hash = anchor_hash;
    memcpy(vs.hash, ZERO_HASH, HASH_HEX);
    memcpy(vs.prev_hash, ZERO_HASH, HASH_HEX);
    while (rc == 0 && (got = getline(&line, &cap, f)) > 0) {
        ln++;
        if (line[got - 1] != '\n') {
            rc = mr_error_set(err, MR_E_TAMPERED,
                              "audit log %s line %lld: incomplete record (no newline)",
                              path, ln);
            break;
        }
        if (memchr(line, '\0', (size_t)got) != NULL) {
            rc = mr_error_set(err, MR_E_TAMPERED, "audit log %s line %lld: NUL byte", path, ln);
            break;
        }
        rc = verify_line(path, ln, line, (size_t)got - 1, &vs, err);
        if (rc == 0) {
            vs.last_start = offset;
            offset += got;
        }
    }
    if (rc == 0 && ferror(f))
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot read audit log %s", path);
    free(line);
    fclose(f);
    if (rc != 0)
        return rc;

    head_path = head_path_of(path);
    if (head_path == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    hrc = head_read(head_path, &h, err);
    free(head_path);
    if (hrc == MR_E_NOTFOUND && vs.records == 0)
        return 0;       /* a log that was never written to */
    if (hrc == MR_E_NOTFOUND)
        return mr_error_set(err, MR_E_TAMPERED,
                            "audit log %s: head file %s.head is missing (records after "
                            "line %lld may have been removed)", path, path, ln);
    if (hrc != 0)
        return hrc;
    if (h.seq == vs.records && h.size == offset && strcmp(h.hash, vs.hash) == 0) {
        /* the normal case */
    } else if (vs.records > 0 && h.seq == vs.records - 1 && h.size == vs.last_start &&
               strcmp(h.hash, vs.prev_hash) == 0) {
        /* An append interrupted between the log fsync and the head write (see top). */
    } else if (h.seq > vs.records || h.size > offset) {
        return mr_error_set(err, MR_E_TAMPERED,
                            "audit log %s: head file records %lld records but the log ends "
                            "at line %lld (records removed from the end)", path, h.seq, ln);
    } else if (h.seq == vs.records) {
        return mr_error_set(err, MR_E_TAMPERED,
                            "audit log %s line %lld: last record does not match the head "
                            "file (line %lld edited)", path, ln, ln);
    } else {
        return mr_error_set(err, MR_E_TAMPERED,
                            "audit log %s: lines after %lld are not covered by the head file",
                            path, h.seq);
    }
    if (anchor_seq > 0 && !vs.anchor_seen)
        return mr_error_set(err, MR_E_TAMPERED,
                            "audit log %s has %lld records but the anchor recorded record "
                            "%lld (records removed)", path, vs.records, anchor_seq);
    if (n_records != NULL)
        *n_records = (size_t)vs.records;
    return 0;
}
