/*
 * fuzz_imap_client.c — libFuzzer target for mailret's handling of IMAP server responses
 * (imap/imap.c over imap/imap_stream.c), without a network or TLS.
 *
 * Seam: imap_connect_fd, the session of imap_connect on a socket that is already
 * connected.  The target makes a socketpair(2); the fuzz input is the server's whole byte
 * stream: it is written to one end, which is then shut down for writing, so the client
 * reads exactly the input and then EOF (the stream's EOF handling is part of what is
 * tested).  What the client sends is never read.
 * The session driven over that stream is what ingest, backup and purge do:
 *   greeting, LOGIN (unless the greeting is PREAUTH), CAPABILITY, EXAMINE INBOX,
 *   UID SEARCH 1:* BEFORE, UID FETCH 1:* (streaming bodies to a callback, max literal
 *   4 KiB so that the oversized path runs), UID FETCH of a UID set, UID STORE \Deleted +
 *   UID EXPUNGE, APPEND, LOGOUT.
 * As the callers do (ingest, backup, purge), the session stops at the first error; every
 * error must follow common/error.h (negative code, one-line message).  The callback reads
 * every body byte (ASan checks the pointer and length) and checks the promised invariants
 * (UID in the requested range or set, flags without \Recent, body NULL only when
 * oversized).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/error.h"
#include "imap/imap.h"

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

struct fuzz_cb {
    uint32_t first, last;
    const uint32_t *set;
    size_t n_set;
    unsigned stop_after;    /* callback error after this many messages (0 = never) */
    unsigned seen;
    volatile unsigned char sink;
};

/* Promised of the flags: a space-separated list of "\\atom" and atom, never \\Recent. */
static void check_flags(const char *flags)
{
    const char *p = flags;

    if (flags == NULL)
        abort();
    while (*p != '\0') {
        size_t n = strcspn(p, " "), k = *p == '\\' ? 1 : 0;
        if (n == k || (n == 7 && strncasecmp(p, "\\Recent", 7) == 0))
            abort();
        for (; k < n; k++)
            if ((unsigned char)p[k] <= 0x20 || (unsigned char)p[k] >= 0x7F ||
                strchr("(){%*\"\\]", p[k]) != NULL)
                abort();
        p += n;
        if (*p == ' ' && *++p == '\0')
            abort();    /* a trailing blank */
    }
}

static int fuzz_on_message(void *ctx, const struct imap_message *m, mr_error *err)
{
    struct fuzz_cb *cb = ctx;

    check_flags(m->flags);
    if (m->oversized ? (m->body != NULL || m->body_len != 0) : m->body == NULL)
        abort();
    if (m->body_len > 4096)
        abort();    /* max_literal */
    if (cb->set != NULL) {
        if (bsearch(&m->uid, cb->set, cb->n_set, sizeof *cb->set, cmp_u32) == NULL)
            abort();
    } else if (m->uid < cb->first || (cb->last != 0 && m->uid > cb->last)) {
        abort();
    }
    for (size_t i = 0; i < m->body_len; i++)
        cb->sink ^= m->body[i];
    cb->seen++;
    if (cb->stop_after != 0 && cb->seen >= cb->stop_after)
        return mr_error_set(err, MR_E_IO, "fuzz: callback stops at UID %u", m->uid);
    return 0;
}

static void check_rc(int rc, const mr_error *err)
{
    if (rc > 0 || (rc < 0 && (err->code != rc || err->msg[0] == '\0')))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t set[] = { 1, 2, 3, 7, 8, 100, 4294967295u };
    int sv[2], rc, sndbuf = 4 * 1024 * 1024;
    unsigned stop_after = 0;
    imap_conn *c = NULL;
    struct imap_options opt = {
        .host = "imap.fuzz.invalid", .user = "fuzz", .password = "fuzz",
        .plaintext_auth_for_tests = true,
        .io_timeout_s = 2, .max_literal = 4096,
    };
    mr_error err;

    /* The first byte is not server data: it picks when the callback stops the fetch. */
    if (size > 0) {
        stop_after = data[0] & 3;
        data++;
        size--;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    (void)setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf);
    (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    (void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf);
    for (size_t off = 0; off < size;) {
        ssize_t n = send(sv[1], data + off, size - off, MSG_NOSIGNAL);
        if (n <= 0)
            abort();    /* -max_len must stay below the socket buffer */
        off += (size_t)n;
    }
    shutdown(sv[1], SHUT_WR);

    mr_error_clear(&err);
    rc = imap_connect_fd(sv[0], &opt, &c, &err);   /* owns sv[0] from here */
    check_rc(rc, &err);
    if (rc != 0)
        goto out;
    (void)imap_has_capability(c, "UIDPLUS");
    (void)imap_has_capability(c, "IMAP4rev1");
    {
        struct imap_mailbox_info info;
        rc = imap_examine(c, "INBOX", &info, &err);
        check_rc(rc, &err);
    }
    if (rc == 0) {
        uint32_t *uids = NULL;
        size_t n = 0;
        rc = imap_uid_search(c, 1, 0, (time_t)1763596800, &uids, &n, &err);
        check_rc(rc, &err);
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (uids[i] == 0 || (i > 0 && uids[i] < uids[i - 1]))
                abort();    /* promised: ascending, within [first, last] */
        free(uids);
    }
    if (rc == 0) {
        struct fuzz_cb cb = { .first = 1, .last = 0, .stop_after = stop_after };
        rc = imap_uid_fetch(c, 1, 0, fuzz_on_message, &cb, &err);
        check_rc(rc, &err);
    }
    if (rc == 0) {
        struct fuzz_cb cb = { .set = set, .n_set = sizeof set / sizeof set[0] };
        rc = imap_uid_fetch_set(c, set, sizeof set / sizeof set[0], fuzz_on_message, &cb,
                                &err);
        check_rc(rc, &err);
    }
    if (rc == 0) {
        rc = imap_uid_store_deleted(c, set, 3, &err);
        check_rc(rc, &err);
        if (rc == 0) {
            rc = imap_uid_expunge(c, set, 3, &err);
            check_rc(rc, &err);
        }
    }
    if (rc == 0) {
        static const unsigned char msg[] = "Subject: x\r\n\r\nbody\r\n";
        rc = imap_append(c, "INBOX", "\\Seen", (time_t)1763596800, 60, msg, sizeof msg - 1,
                         &err);
        check_rc(rc, &err);
    }
out:
    /* The stream ends with the input: LOGOUT's answer is EOF at once, not a wait. */
    imap_close(c);
    close(sv[1]);
    return 0;
}
