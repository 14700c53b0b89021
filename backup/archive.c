/* archive.c — the batch writer (see archive.h).  The calling thread pseudonymises and
 * packs messages into the current volume's tar image; full volumes go through a queue of
 * one to worker threads that compress, encrypt, fsync, read back and verify them.  At
 * most workers + 2 tar images exist at once (one filling, one waiting, one per worker
 * compressing), reused from volume to volume, so memory stays at a few volumes' worth
 * whatever the batch size (docs/ARCHIVE.md, "Parallelism and memory"). */
#include "backup/archive.h"
#include "backup/batchdir.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "backup/buf.h"
#include "backup/index.h"
#include "backup/locator.h"
#include "backup/tar.h"
#include "backup/volume.h"
#include "common/durable.h"
#include "common/mrtime.h"
#include "keys/keys.h"

#define MAX_WORKERS ARCHIVE_MAX_WORKERS

struct vol_msg {
    char name[48];
    unsigned char sha[32];          /* of the original bytes, as the caller gave them */
    unsigned char psha[32];         /* of the pseudonymised bytes */
};

struct vol_job {
    unsigned no;
    struct mr_buf tar, reid, index;
    struct vol_msg *msgs;
    size_t n_msgs, cap_msgs;
    int rc;
    mr_error err;
    struct archive_volume vol;
    struct vol_job *next;
};

struct archive_batch {
    struct archive_options opt;
    struct pseudo_policy policy;
    pseudo_session *pseudo;         /* the producer's: archive_batch_add runs on one thread */
    char batch_id[64];
    char dir[4096];
    char mailbox[256];
    time_t created;
    size_t plain_limit;             /* tar bytes per volume; see volume_plain_limit */
    keys_epoch *content, *reid;
    locator_builder *locator;       /* where each message went, for targeted restores */
    struct vol_job *cur;
    unsigned next_no;
    struct archive_uid *uids;
    size_t n_uids, cap_uids;
    unsigned long long bytes_original;
    unsigned long long sealed_parts;    /* parts sealed into the reid data */
    size_t sealed_messages;

    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_space;
    struct vol_job *q_head, *q_tail;
    size_t q_len, q_max;
    struct vol_job *done;           /* finished jobs (results only) */
    bool stop, abandon;
    int failed;
    mr_error first_err;
    pthread_t threads[MAX_WORKERS];
    int n_threads;
    /* Tar images (content, reid) whose volume is written, kept for the next volume:
     * allocating 8 MiB afresh per volume costs page faults and lets every thread's malloc
     * arena keep its own peak.  At most one per job alive, so bounded like the queue. */
    struct mr_buf spare[2][MAX_WORKERS * 2 + 2];
    size_t n_spare[2];
};

enum { SPARE_TAR, SPARE_REID };

/* Plaintext budget per volume.  The ciphertext is gzip (worst case +0.03% and a few header
 * bytes) plus CMS framing (recipient info < 1 KiB, ~4 bytes of BER per 4 KiB chunk), so a
 * tar image within volume_size - volume_size/256 - 4 KiB always fits the limit. */
static size_t volume_plain_limit(size_t volume_size)
{
    size_t margin = volume_size / 256 + 4096;

    return volume_size > 2 * margin ? volume_size - margin : volume_size / 2;
}

/* A buffer from the spares (under b->mu), or an empty one. */
static struct mr_buf spare_take(archive_batch *b, int kind)
{
    struct mr_buf out = { 0 };

    pthread_mutex_lock(&b->mu);
    if (b->n_spare[kind] > 0)
        out = b->spare[kind][--b->n_spare[kind]];
    pthread_mutex_unlock(&b->mu);
    return out;
}

/* Wipe a tar image and keep its allocation for the next volume (or free it). */
static void spare_give(archive_batch *b, int kind, struct mr_buf *buf)
{
    buf_wipe_reset(buf);
    pthread_mutex_lock(&b->mu);
    if (buf->data != NULL && b->n_spare[kind] < sizeof b->spare[kind] / sizeof b->spare[kind][0]) {
        b->spare[kind][b->n_spare[kind]++] = *buf;
        *buf = (struct mr_buf){ 0 };
    }
    pthread_mutex_unlock(&b->mu);
    buf_free(buf);
}

static void job_free(struct vol_job *j)
{
    if (j == NULL)
        return;
    buf_free(&j->tar);
    buf_free(&j->reid);
    buf_free(&j->index);
    free(j->msgs);
    free(j);
}

static int job_new(archive_batch *b, mr_error *err)
{
    struct vol_job *j = calloc(1, sizeof *j);

    if (j == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    j->no = ++b->next_no;
    j->tar = spare_take(b, SPARE_TAR);
    j->reid = spare_take(b, SPARE_REID);
    j->tar.cap_hint = b->plain_limit;
    if (j->no > 9999) {
        job_free(j);
        return mr_error_set(err, MR_E_LIMIT, "batch would need more than 9999 volumes");
    }
    b->cur = j;
    return 0;
}

/* ---- worker side ---------------------------------------------------------------------- */

static int verify_job(archive_batch *b, struct vol_job *j, const char *vpath,
                      const char *rpath, volume_reader *cv, volume_reader *rv, mr_error *err)
{
    struct tar_entry ce, re;
    unsigned char md[32];
    int rc;

    /* The one read of each file serves the manifest's size and SHA-256 and the check. */
    rc = volume_reader_open(cv, vpath, keys_epoch_private(b->content), NULL, err);
    if (rc == 0) {
        volume_reader_file(cv, &j->vol.size, j->vol.sha256);
        rc = volume_reader_open(rv, rpath, keys_epoch_private(b->reid), NULL, err);
    }
    if (rc == 0) {
        volume_reader_file(rv, &j->vol.reid_size, j->vol.reid_sha256);
        if (j->vol.size > b->opt.volume_size && j->n_msgs > 1)
            rc = mr_error_set(err, MR_E_INTERNAL, "%s exceeds the volume size", j->vol.name);
        else if (j->vol.reid_size > b->opt.volume_size && j->n_msgs > 1)
            rc = mr_error_set(err, MR_E_INTERNAL, "%s exceeds the volume size",
                              j->vol.reid_name);
    }
    for (size_t i = 0; rc == 0 && i < j->n_msgs; i++) {
        const struct vol_msg *m = &j->msgs[i];
        unsigned char *orig = NULL;
        size_t orig_len = 0;
        char rname[48];

        rc = tar_read_next(volume_read, cv, (size_t)-1, &ce, err);
        if (rc == 1) {
            rc = tar_read_next(volume_read, rv, (size_t)-1, &re, err);
            if (rc != 1)
                free(ce.data);
        }
        if (rc == 0)
            rc = mr_error_set(err, MR_E_TAMPERED, "volume %u ends before message %zu", j->no,
                              i + 1);
        if (rc < 0)
            break;
        rc = 0;
        snprintf(rname, sizeof rname, "%.*s.reid", (int)(strlen(m->name) - 4), m->name);
        SHA256(ce.data, ce.len, md);
        if (strcmp(ce.name, m->name) != 0 || strcmp(re.name, rname) != 0)
            rc = mr_error_set(err, MR_E_TAMPERED, "volume %u: entry %zu is not %s", j->no,
                              i + 1, m->name);
        else if (memcmp(md, m->psha, 32) != 0)
            rc = mr_error_set(err, MR_E_TAMPERED,
                              "volume %u: %s reads back with another SHA-256", j->no, m->name);
        /* The restore hashes what it rebuilt (to check it against the reid record); that
         * digest must be the one of the bytes the caller gave. */
        if (rc == 0)
            rc = pseudo_restore_digest(ce.data, ce.len, re.data, re.len, &orig, &orig_len, md,
                                       err);
        if (rc == 0) {
            if (memcmp(md, m->sha, 32) != 0)
                rc = mr_error_set(err, MR_E_TAMPERED,
                                  "volume %u: %s does not restore to the fetched bytes",
                                  j->no, m->name);
        }
        if (orig != NULL) {
            OPENSSL_cleanse(orig, orig_len);
            free(orig);
        }
        free(ce.data);
        free(re.data);
    }
    if (rc == 0) {
        rc = tar_read_next(volume_read, cv, (size_t)1 << 30, &ce, err);
        if (rc == 1) {
            if (strcmp(ce.name, INDEX_FILE) != 0)
                rc = mr_error_set(err, MR_E_TAMPERED, "volume %u: extra entry", j->no);
            else {
                SHA256(ce.data, ce.len, md);
                unsigned char want[32];
                SHA256(j->index.data, j->index.len, want);
                rc = memcmp(md, want, 32) == 0
                         ? 0
                         : mr_error_set(err, MR_E_TAMPERED, "volume %u: index differs", j->no);
            }
            free(ce.data);
        } else if (rc == 0)
            rc = mr_error_set(err, MR_E_TAMPERED, "volume %u: index.jsonl missing", j->no);
    }
    if (rc == 0) {
        rc = tar_read_next(volume_read, cv, 0, &ce, err);
        if (rc == 0)
            rc = tar_read_next(volume_read, rv, 0, &re, err);
        if (rc > 0) {
            free(ce.data);
            rc = mr_error_set(err, MR_E_TAMPERED, "volume %u: unexpected extra entries", j->no);
        }
    }
    if (rc == 0)
        rc = volume_check_end(cv, err);
    if (rc == 0)
        rc = volume_check_end(rv, err);
    volume_reader_close(cv);
    volume_reader_close(rv);
    return rc;
}

static int process_job(archive_batch *b, struct vol_job *j, volume_reader *cv,
                       volume_reader *rv, mr_error *err)
{
    char vpath[BATCHDIR_PATH_MAX], rpath[BATCHDIR_PATH_MAX];
    struct archive_volume *v = &j->vol;
    int rc;

    batchdir_volume_name(j->no, v->name);
    batchdir_reid_name(j->no, v->reid_name);
    v->messages = j->n_msgs;
    rc = batchdir_path(b->dir, v->name, vpath, sizeof vpath, err);
    if (rc == 0)
        rc = batchdir_path(b->dir, v->reid_name, rpath, sizeof rpath, err);
    if (rc == 0)
        rc = volume_write(vpath, j->tar.data, j->tar.len, b->opt.compression_level,
                      keys_epoch_cert(b->content), err);
    if (rc == 0)
        rc = volume_write(rpath, j->reid.data, j->reid.len, b->opt.compression_level,
                          keys_epoch_cert(b->reid), err);
    /* The plaintext images are no longer needed: verification reads what the disk holds. */
    spare_give(b, SPARE_TAR, &j->tar);
    spare_give(b, SPARE_REID, &j->reid);
    if (rc == 0)
        rc = verify_job(b, j, vpath, rpath, cv, rv, err);
    buf_free(&j->index);
    /* Only the volume's summary stays until close: the per-message records would
     * otherwise grow with the batch (about 110 bytes a message). */
    free(j->msgs);
    j->msgs = NULL;
    j->cap_msgs = 0;
    if (rc != 0)
        return mr_error_prefix(err, "batch %s volume %u", b->batch_id, j->no);
    if (v->size > b->opt.volume_size)
        log_warn(b->opt.log, "batch %s: %s holds one message larger than the volume size",
                 b->batch_id, v->name);
    if (v->reid_size > b->opt.volume_size)
        log_warn(b->opt.log, "batch %s: %s holds one message larger than the volume size",
                 b->batch_id, v->reid_name);
    log_debug(b->opt.log, "batch %s: %s verified (%zu messages, %llu bytes)", b->batch_id,
              v->name, j->n_msgs, v->size);
    return 0;
}

static void *worker_main(void *arg)
{
    archive_batch *b = arg;
    /* This thread's readers for verification, reused for every volume it checks. */
    volume_reader *cv = volume_reader_new(), *rv = volume_reader_new();

    for (;;) {
        struct vol_job *j;

        pthread_mutex_lock(&b->mu);
        while (b->q_head == NULL && !b->stop)
            pthread_cond_wait(&b->cv_work, &b->mu);
        if (b->q_head == NULL) {
            pthread_mutex_unlock(&b->mu);
            volume_reader_free(cv);
            volume_reader_free(rv);
            return NULL;
        }
        j = b->q_head;
        b->q_head = j->next;
        if (b->q_head == NULL)
            b->q_tail = NULL;
        b->q_len--;
        pthread_cond_broadcast(&b->cv_space);
        bool skip = b->abandon || b->failed;
        pthread_mutex_unlock(&b->mu);

        if (skip)
            j->rc = MR_E_STATE;
        else if (cv == NULL || rv == NULL)
            j->rc = mr_error_set(&j->err, MR_E_NOMEM, "out of memory for volume readers");
        else
            j->rc = process_job(b, j, cv, rv, &j->err);

        pthread_mutex_lock(&b->mu);
        if (j->rc != 0 && !b->failed && !skip) {
            b->failed = j->rc;
            b->first_err = j->err;
        }
        j->next = b->done;
        b->done = j;
        pthread_cond_broadcast(&b->cv_space);
        pthread_mutex_unlock(&b->mu);
    }
}

/* ---- producer side ---------------------------------------------------------------------- */

static int enqueue_current(archive_batch *b, mr_error *err)
{
    struct vol_job *j = b->cur;
    int rc;

    if (j == NULL || j->n_msgs == 0)
        return 0;
    rc = tar_write_entry(&j->tar, INDEX_FILE, b->created, j->index.data, j->index.len, err);
    if (rc == 0)
        rc = tar_write_end(&j->tar, err);
    if (rc == 0)
        rc = tar_write_end(&j->reid, err);
    if (rc != 0)
        return rc;
    b->cur = NULL;
    pthread_mutex_lock(&b->mu);
    while (b->q_len >= b->q_max && !b->failed)
        pthread_cond_wait(&b->cv_space, &b->mu);
    if (b->failed) {
        rc = b->failed;
        if (err != NULL)
            *err = b->first_err;
        pthread_mutex_unlock(&b->mu);
        job_free(j);
        return rc;
    }
    if (b->q_tail != NULL)
        b->q_tail->next = j;
    else
        b->q_head = j;
    b->q_tail = j;
    b->q_len++;
    pthread_cond_signal(&b->cv_work);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

static int make_batch_id(archive_batch *b, mr_error *err)
{
    unsigned char rnd[4];
    char hex[9], stamp[24];
    struct tm tm;

    if (b->opt.batch_id != NULL) {
        size_t n = strlen(b->opt.batch_id);
        if (n == 0 || n >= sizeof b->batch_id
            || strspn(b->opt.batch_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789-_") != n)
            return mr_error_set(err, MR_E_INVALID, "bad batch id");
        memcpy(b->batch_id, b->opt.batch_id, n + 1);
        return 0;
    }
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return mr_error_set(err, MR_E_CRYPTO, "random generator failed");
    volume_hex(rnd, sizeof rnd, hex);
    gmtime_r(&b->created, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(b->batch_id, sizeof b->batch_id, "%s-%s", stamp, hex);
    return 0;
}

static int open_keys(archive_batch *b, mr_error *err)
{
    struct keys_epoch_options eo = {
        .vault_dir = b->opt.vault_dir,
        .role = KEYS_EPOCH_CONTENT,
        .holder = b->opt.content_holder,
        .holder_name = "it",
        .batch_id = b->batch_id,
        .created = b->created,
        .expires = b->opt.expires,
    };
    int rc = keys_epoch_create(&eo, b->opt.audit, &b->content, err);

    if (rc != 0)
        return rc;
    eo.role = KEYS_EPOCH_REID;
    eo.holder = b->opt.reid_holder;
    eo.holder_name = b->opt.reid_holder_name != NULL ? b->opt.reid_holder_name : "it";
    return keys_epoch_create(&eo, b->opt.audit, &b->reid, err);
}

static void batch_free(archive_batch *b)
{
    struct vol_job *j, *next;

    for (j = b->done; j != NULL; j = next) {
        next = j->next;
        job_free(j);
    }
    for (j = b->q_head; j != NULL; j = next) {
        next = j->next;
        job_free(j);
    }
    job_free(b->cur);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < b->n_spare[k]; i++)
            buf_free(&b->spare[k][i]);
    keys_epoch_free(b->content);
    keys_epoch_free(b->reid);
    pseudo_session_free(b->pseudo);
    locator_builder_free(b->locator);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv_work);
    pthread_cond_destroy(&b->cv_space);
    free(b->uids);
    free(b);
}

static void stop_workers(archive_batch *b, bool abandon)
{
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    if (abandon)
        b->abandon = true;
    pthread_cond_broadcast(&b->cv_work);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < b->n_threads; i++)
        pthread_join(b->threads[i], NULL);
    b->n_threads = 0;
}

int archive_batch_open(const struct archive_options *opt, archive_batch **out, mr_error *err)
{
    archive_batch *b;
    char month[16], mbdir[256], parent[4096];
    int rc;

    *out = NULL;
    if (opt->archive_dir == NULL || opt->vault_dir == NULL || opt->mailbox == NULL
        || opt->content_holder == NULL || opt->reid_holder == NULL
        || opt->pseudonym_key == NULL || opt->signing_key == NULL || opt->expires == 0)
        return mr_error_set(err, MR_E_INVALID, "archive: incomplete options");
    if (strcmp(opt->archive_dir, opt->vault_dir) == 0)
        return mr_error_set(err, MR_E_CONFIG,
                            "the key vault must not be the archive directory");
    b = calloc(1, sizeof *b);
    if (b == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv_work, NULL);
    pthread_cond_init(&b->cv_space, NULL);
    b->opt = *opt;
    if (b->opt.volume_size == 0)
        b->opt.volume_size = (size_t)ARCHIVE_DEFAULT_VOLUME_MIB << 20;
    if (b->opt.workers <= 0)
        b->opt.workers = 2;
    if (b->opt.workers > MAX_WORKERS)
        b->opt.workers = MAX_WORKERS;
    if (b->opt.compression_level < -1 || b->opt.compression_level > 9) {
        batch_free(b);
        return mr_error_set(err, MR_E_CONFIG, "compression level must be 0-9");
    }
    if (opt->policy != NULL)
        b->policy = *opt->policy;
    else
        pseudo_policy_default(&b->policy);
    rc = pseudo_session_new(opt->pseudonym_key, &b->policy, &b->pseudo, err);
    if (rc != 0) {
        batch_free(b);
        return rc;
    }
    b->plain_limit = volume_plain_limit(b->opt.volume_size);
    /* One volume waiting is enough to keep the workers busy (the producer fills the
     * next while they compress); each more would hold another tar image in memory. */
    b->q_max = 1;
    b->created = opt->created != 0 ? opt->created : time(NULL);
    snprintf(b->mailbox, sizeof b->mailbox, "%s", opt->mailbox);
    rc = make_batch_id(b, err);
    if (rc == 0)
        rc = archive_mailbox_dirname(opt->mailbox, mbdir, sizeof mbdir, err);
    if (rc == 0)
        rc = mrtime_format_month(b->created, opt->zone != NULL ? opt->zone
                                                               : MRTIME_DEFAULT_ZONE,
                                 month, sizeof month, err);
    if (rc == 0) {
        snprintf(parent, sizeof parent, "%s/%s", opt->archive_dir, mbdir);
        if ((size_t)snprintf(b->dir, sizeof b->dir, "%s/%s-%s", parent, month, b->batch_id)
            >= sizeof b->dir)
            rc = mr_error_set(err, MR_E_INVALID, "archive path too long");
    }
    if (rc == 0 && access(b->dir, F_OK) == 0)
        rc = mr_error_set(err, MR_E_EXISTS, "batch directory %s already exists", b->dir);
    if (rc == 0)
        rc = durable_mkdirs(b->dir, 0700, err);
    /* Keys before any volume: a volume must never exist without its sealed key. */
    if (rc == 0)
        rc = open_keys(b, err);
    if (rc == 0)
        rc = job_new(b, err);
    if (rc == 0)
        rc = locator_builder_new(&b->locator, err);
    for (int i = 0; rc == 0 && i < b->opt.workers; i++) {
        if (pthread_create(&b->threads[i], NULL, worker_main, b) != 0)
            rc = mr_error_set(err, MR_E_NOMEM, "cannot start archive worker thread");
        else
            b->n_threads++;
    }
    if (rc != 0) {
        stop_workers(b, true);
        if (b->dir[0] != '\0')
            (void)rmdir(b->dir);
        if (b->content != NULL)
            (void)keys_epoch_shred(opt->vault_dir, keys_epoch_id(b->content), opt->audit, NULL);
        if (b->reid != NULL)
            (void)keys_epoch_shred(opt->vault_dir, keys_epoch_id(b->reid), opt->audit, NULL);
        batch_free(b);
        return rc;
    }
    log_info(opt->log, "batch %s: writing to %s", b->batch_id, b->dir);
    *out = b;
    return 0;
}

static int add_token_list(const pseudo_result *res, struct index_entry *e, mr_error *err)
{
    size_t n = pseudo_result_token_count(res);

    e->tokens = calloc(n ? n : 1, sizeof *e->tokens);
    if (e->tokens == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        enum pseudo_kind kind;
        const char *tok;
        char *s;
        if (pseudo_result_token(res, i, &kind, &tok) != 0)
            return mr_error_set(err, MR_E_INTERNAL, "pseudonymiser token %zu missing", i);
        s = malloc(strlen(pseudo_kind_name(kind)) + strlen(tok) + 2);
        if (s == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        sprintf(s, "%s:%s", pseudo_kind_name(kind), tok);
        e->tokens[e->n_tokens++] = s;
    }
    return 0;
}

int archive_batch_add(archive_batch *b, const struct archive_message *msg, mr_error *err)
{
    pseudo_result *res = NULL;
    struct index_entry e;
    struct mr_buf line = { 0 };
    const unsigned char *pb, *rb;
    size_t plen, rlen, need, need_reid;
    char rname[48];
    unsigned char sha[32], psha[32];
    struct vol_job *j;
    struct vol_msg *vm;
    int rc;

    pthread_mutex_lock(&b->mu);
    rc = b->failed;
    if (rc != 0 && err != NULL)
        *err = b->first_err;
    pthread_mutex_unlock(&b->mu);
    if (rc != 0)
        return rc;
    memset(&e, 0, sizeof e);
    rc = pseudo_session_message(b->pseudo, msg->bytes, msg->len, &res, err);
    if (rc != 0)
        return mr_error_prefix(err, "UID %u", (unsigned)msg->uid);
    pb = pseudo_result_bytes(res, &plen);
    rb = pseudo_result_reid(res, &rlen);
    index_member_name(e.file, sizeof e.file, msg->uidvalidity, msg->uid, ".eml");
    index_member_name(rname, sizeof rname, msg->uidvalidity, msg->uid, ".reid");
    e.uidvalidity = msg->uidvalidity;
    e.uid = msg->uid;
    e.internaldate = msg->internaldate;
    e.tz_min = msg->internaldate_tz_min;
    e.flags = (char *)(msg->flags != NULL ? msg->flags : "");
    e.size = msg->len;
    e.pseudo_size = plen;
    e.sealed = pseudo_result_sealed_count(res);
    /* Each digest once: the index line and the read-back check both use them (the
     * original's comes from the pseudonymiser, which hashed it for the reid record). */
    memcpy(sha, pseudo_result_original_sha256(res), sizeof sha);
    volume_hex(sha, 32, e.sha256);
    SHA256(pb, plen, psha);
    volume_hex(psha, 32, e.pseudo_sha256);
    rc = add_token_list(res, &e, err);
    if (rc == 0)
        rc = index_write_line(&line, &e, err);
    if (rc != 0)
        goto done;
    /* Start a new volume if this message would push the current one, or its reid file,
     * past the limit: the reid file holds the bodies of sealed attachments, so it can be
     * the larger of the two. */
    j = b->cur;
    need = j->tar.len + tar_entry_size(e.file, plen) + j->index.len + line.len
           + tar_entry_size(INDEX_FILE, j->index.len + line.len) + TAR_END_SIZE;
    need_reid = j->reid.len + tar_entry_size(rname, rlen) + TAR_END_SIZE;
    if (j->n_msgs > 0 && (need > b->plain_limit || need_reid > b->plain_limit)) {
        rc = enqueue_current(b, err);
        if (rc == 0)
            rc = job_new(b, err);
        if (rc != 0)
            goto done;
        j = b->cur;
    }
    if (j->n_msgs == j->cap_msgs) {
        size_t nc = j->cap_msgs ? j->cap_msgs * 2 : 64;
        struct vol_msg *nv = realloc(j->msgs, nc * sizeof *nv);
        if (nv == NULL) {
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
            goto done;
        }
        j->msgs = nv;
        j->cap_msgs = nc;
    }
    if (b->n_uids == b->cap_uids) {
        size_t nc = b->cap_uids ? b->cap_uids * 2 : 256;
        struct archive_uid *nv = realloc(b->uids, nc * sizeof *nv);
        if (nv == NULL) {
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
            goto done;
        }
        b->uids = nv;
        b->cap_uids = nc;
    }
    rc = locator_builder_add(b->locator, j->no, (unsigned)j->n_msgs, msg->internaldate,
                             msg->bytes, msg->len, (const char *const *)e.tokens, e.n_tokens,
                             err);
    if (rc == 0)
        rc = tar_write_entry(&j->tar, e.file, msg->internaldate, pb, plen, err);
    if (rc == 0)
        rc = tar_write_entry(&j->reid, rname, msg->internaldate, rb, rlen, err);
    if (rc == 0)
        rc = buf_append(&j->index, line.data, line.len, err);
    if (rc != 0)
        goto done;
    vm = &j->msgs[j->n_msgs++];
    snprintf(vm->name, sizeof vm->name, "%s", e.file);
    memcpy(vm->sha, sha, sizeof sha);
    memcpy(vm->psha, psha, sizeof psha);
    b->uids[b->n_uids].uidvalidity = msg->uidvalidity;
    b->uids[b->n_uids].uid = msg->uid;
    b->n_uids++;
    b->bytes_original += msg->len;
    b->sealed_parts += e.sealed;
    b->sealed_messages += e.sealed > 0;
done:
    e.flags = NULL;     /* borrowed from msg */
    index_entry_clear(&e);
    buf_free(&line);
    pseudo_result_free(res);
    return rc;
}

static int cmp_uid(const void *a, const void *b)
{
    const struct archive_uid *x = a, *y = b;

    if (x->uidvalidity != y->uidvalidity)
        return x->uidvalidity < y->uidvalidity ? -1 : 1;
    return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int check_unique(const archive_batch *b, mr_error *err)
{
    struct archive_uid *s;
    int rc = 0;

    if (b->n_uids < 2)
        return 0;
    s = malloc(b->n_uids * sizeof *s);
    if (s == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    memcpy(s, b->uids, b->n_uids * sizeof *s);
    qsort(s, b->n_uids, sizeof *s, cmp_uid);
    for (size_t i = 1; i < b->n_uids; i++)
        if (cmp_uid(&s[i - 1], &s[i]) == 0) {
            rc = mr_error_set(err, MR_E_INVALID, "UID %u was added twice to the batch",
                              (unsigned)s[i].uid);
            break;
        }
    free(s);
    return rc;
}

static int cmp_job(const void *a, const void *b)
{
    const struct vol_job *x = *(struct vol_job *const *)a, *y = *(struct vol_job *const *)b;

    return x->no < y->no ? -1 : x->no > y->no;
}

static int write_manifest(archive_batch *b, struct archive_result *r, mr_error *err)
{
    struct archive_manifest m;
    struct vol_job **jobs = NULL, *j;
    size_t n = 0;
    int rc;

    memset(&m, 0, sizeof m);
    for (j = b->done; j != NULL; j = j->next)
        n++;
    jobs = calloc(n ? n : 1, sizeof *jobs);
    m.volumes = calloc(n ? n : 1, sizeof *m.volumes);
    if (jobs == NULL || m.volumes == NULL) {
        free(jobs);
        free(m.volumes);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    n = 0;
    for (j = b->done; j != NULL; j = j->next)
        jobs[n++] = j;
    qsort(jobs, n, sizeof *jobs, cmp_job);
    for (size_t i = 0; i < n; i++) {
        m.volumes[i] = jobs[i]->vol;
        r->bytes_archived += jobs[i]->vol.size + jobs[i]->vol.reid_size;
    }
    m.n_volumes = n;
    free(jobs);
    snprintf(m.batch_id, sizeof m.batch_id, "%s", b->batch_id);
    snprintf(m.mailbox, sizeof m.mailbox, "%s", b->mailbox);
    m.period_start = b->opt.period_start;
    m.period_end = b->opt.period_end;
    m.created = b->created;
    m.expires = b->opt.expires;
    m.verified = time(NULL);
    snprintf(m.content_key_id, sizeof m.content_key_id, "%s", keys_epoch_id(b->content));
    snprintf(m.reid_key_id, sizeof m.reid_key_id, "%s", keys_epoch_id(b->reid));
    snprintf(m.content_holder, sizeof m.content_holder, "it");
    snprintf(m.reid_holder, sizeof m.reid_holder, "%s",
             b->opt.reid_holder_name != NULL ? b->opt.reid_holder_name : "it");
    m.pseudonym_epoch = b->opt.pseudonym_epoch;
    m.message_count = b->n_uids;
    m.bytes_original = b->bytes_original;
    if (b->opt.ledger != NULL) {
        m.has_ledger = true;
        m.ledger_count = b->opt.ledger->count;
        memcpy(m.ledger_head, b->opt.ledger->head, sizeof m.ledger_head);
    }
    rc = keys_cert_fingerprint(keys_epoch_cert(b->content), m.content_cert_fpr, err);
    if (rc == 0)
        rc = keys_cert_fingerprint(keys_epoch_cert(b->reid), m.reid_cert_fpr, err);
    if (rc == 0 && b->opt.audit != NULL) {
        long long seq = 0;
        rc = audit_head(b->opt.audit, &seq, m.audit_head, err);
        m.audit_seq = (unsigned long long)seq;
        m.has_audit = rc == 0;
    }
    /* The locator is written while the host still holds the reid epoch key that
     * authenticates it; the manifest then lists it like any volume. */
    if (rc == 0)
        rc = locator_builder_write(b->locator, b->dir, b->batch_id, m.volumes, n,
                                   keys_epoch_cert(b->reid), keys_epoch_private(b->reid),
                                   &m.locator_size, m.locator_sha256, err);
    if (rc == 0) {
        snprintf(m.locator_name, sizeof m.locator_name, "%s", batchdir_name(BATCHDIR_LOCATOR));
        r->bytes_archived += m.locator_size;
        rc = archive_manifest_write(b->dir, &m, b->opt.signing_key, err);
    }
    r->n_volumes = n;
    free(m.volumes);
    return rc;
}

int archive_batch_close(archive_batch *b, struct archive_result **out, mr_error *err)
{
    struct archive_result *r = NULL;
    int rc;

    *out = NULL;
    rc = enqueue_current(b, err);
    stop_workers(b, rc != 0);
    if (rc == 0 && b->failed) {
        rc = b->failed;
        if (err != NULL)
            *err = b->first_err;
    }
    if (rc == 0)
        rc = check_unique(b, err);
    if (rc == 0) {
        r = calloc(1, sizeof *r);
        if (r == NULL)
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    /* The manifest is the commit point: only now does the batch exist. */
    if (rc == 0)
        rc = write_manifest(b, r, err);
    /* Verified or not, the host forgets the private halves now. */
    keys_epoch_forget(b->content, b->opt.audit);
    keys_epoch_forget(b->reid, b->opt.audit);
    if (rc == 0 && b->opt.audit != NULL) {
        char count[32], vols[32], sealed[32];
        snprintf(count, sizeof count, "%zu", b->n_uids);
        snprintf(vols, sizeof vols, "%zu", r->n_volumes);
        snprintf(sealed, sizeof sealed, "%llu", b->sealed_parts);
        const struct audit_field f[] = {
            { "batch", b->batch_id },
            { "mailbox", b->mailbox },
            { "messages", count },
            { "volumes", vols },
            { "sealed_parts", sealed },
            { "content_key", keys_epoch_id(b->content) },
            { "reid_key", keys_epoch_id(b->reid) },
        };
        rc = audit_append(b->opt.audit, "backup.batch.create", f, sizeof f / sizeof f[0], err);
    }
    if (rc != 0) {
        log_error(b->opt.log, "batch %s: not verified, no manifest written", b->batch_id);
        free(r);
        batch_free(b);
        return rc;
    }
    snprintf(r->batch_id, sizeof r->batch_id, "%s", b->batch_id);
    snprintf(r->dir, sizeof r->dir, "%s", b->dir);
    r->n_messages = b->n_uids;
    r->uids = b->uids;
    r->bytes_original = b->bytes_original;
    r->sealed_parts = b->sealed_parts;
    r->sealed_messages = b->sealed_messages;
    b->uids = NULL;
    log_info(b->opt.log, "batch %s: %zu messages in %zu volumes verified", r->batch_id,
             r->n_messages, r->n_volumes);
    batch_free(b);
    *out = r;
    return 0;
}

void archive_batch_abort(archive_batch *b)
{
    if (b == NULL)
        return;
    stop_workers(b, true);
    (void)batchdir_destroy(b->dir, NULL);
    keys_epoch_forget(b->content, b->opt.audit);
    keys_epoch_forget(b->reid, b->opt.audit);
    (void)keys_epoch_shred(b->opt.vault_dir, keys_epoch_id(b->content), b->opt.audit, NULL);
    (void)keys_epoch_shred(b->opt.vault_dir, keys_epoch_id(b->reid), b->opt.audit, NULL);
    log_info(b->opt.log, "batch %s: discarded", b->batch_id);
    batch_free(b);
}

void archive_result_free(struct archive_result *r)
{
    if (r == NULL)
        return;
    free(r->uids);
    free(r);
}
