/* imap_stream.c — see imap_stream.h. */
#include "ingest/imap_stream.h"
#include "ingest/imap_guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct imap_stream {
    /* The driver table lives in the handle rather than in a static: libetpan wants a
     * non-const pointer, and per-connection storage keeps the module free of globals. */
    mailstream_low_driver driver;
    int fd;
    int io_timeout_ms;
    int handshake_timeout_ms;   /* the TLS handshake is part of connecting */
    SSL_CTX *ctx;
    SSL *ssl;
    bool tls_up;        /* handshake (and verification, unless insecure) succeeded */
    BIO_METHOD *bio_method;
    struct imap_guard guard;    /* what the server sends passes it before libetpan */
    bool failed;        /* sticky: after EOF/error/timeout every call returns -1 */
    bool eof;           /* the peer closed the socket */
    mr_error last;      /* why it failed */
};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Record the first failure only: later ones are consequences of it. */
static void stream_fail(imap_stream *st, int code, int errnum, const char *what)
{
    if (st->failed)
        return;
    st->failed = true;
    if (errnum != 0)
        mr_error_errno(&st->last, code, errnum, "%s", what);
    else
        mr_error_set(&st->last, code, "%s", what);
}

/* Wait until fd is ready for `events` or the deadline passes.  Returns 1 ready, 0 timeout,
 * -1 error (errno set). */
static int wait_fd(int fd, short events, long long deadline_ms)
{
    for (;;) {
        long long left = deadline_ms - now_ms();
        struct pollfd p = { .fd = fd, .events = events };
        int r;

        if (left <= 0)
            return 0;
        r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (r > 0)
            return 1;   /* POLLERR/POLLHUP count as ready: the next call reports them */
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* ---- raw socket I/O, shared by the plain phase and by our BIO under TLS ---- */

/* Returns bytes (> 0), 0 for "would block", -1 for a recorded failure (EOF included). */
static ssize_t sock_recv_once(imap_stream *st, void *buf, size_t count)
{
    for (;;) {
        ssize_t n = recv(st->fd, buf, count, 0);
        if (n > 0)
            return n;
        if (n == 0) {
            st->eof = true;
            stream_fail(st, MR_E_NETWORK, 0, "the server closed the connection");
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        stream_fail(st, MR_E_NETWORK, errno, "read from the server failed");
        return -1;
    }
}

static ssize_t sock_send_once(imap_stream *st, const void *buf, size_t count)
{
    for (;;) {
        /* MSG_NOSIGNAL: a server that went away must give an error, not kill us. */
        ssize_t n = send(st->fd, buf, count, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        stream_fail(st, MR_E_NETWORK, errno, "write to the server failed");
        return -1;
    }
}

static void fail_timeout(imap_stream *st, int poll_result, const char *what)
{
    char msg[128];

    if (poll_result < 0) {
        stream_fail(st, MR_E_NETWORK, errno, "poll failed");
        return;
    }
    snprintf(msg, sizeof msg, "timed out after %d s %s", st->io_timeout_ms / 1000, what);
    stream_fail(st, MR_E_TIMEOUT, 0, msg);
}

/* ---- a BIO on our socket: OpenSSL's socket BIO uses write(2), which raises SIGPIPE on a
 * dropped connection; ours uses send(MSG_NOSIGNAL) and records the cause. ---- */

static int bio_write(BIO *b, const char *buf, int len)
{
    imap_stream *st = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    n = sock_send_once(st, buf, (size_t)len);
    if (n == 0) {
        BIO_set_retry_write(b);
        return -1;
    }
    return (int)n;
}

static int bio_read(BIO *b, char *buf, int len)
{
    imap_stream *st = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    n = sock_recv_once(st, buf, (size_t)len);
    if (n == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    if (n < 0)
        return st->eof ? 0 : -1;   /* 0 = EOF: OpenSSL reports an unexpected EOF */
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* ---- the mailstream_low driver ---- */

/* n bytes just read, through the guard (imap_guard.h): n, or -1 when it refused them. */
static ssize_t guarded(imap_stream *st, void *buf, size_t n)
{
    char what[160];

    (void)imap_guard_filter(&st->guard, buf, n);
    if (st->guard.refused == 0 && !st->guard.line_too_long)
        return (ssize_t)n;
    if (st->guard.line_too_long)
        snprintf(what, sizeof what, "the IMAP server sent a line longer than %u MiB",
                 (unsigned)(IMAP_GUARD_LINE_MAX >> 20));
    else
        snprintf(what, sizeof what, "the IMAP server announced a literal of %u bytes outside "
                 "a message body (at most %u are accepted)", (unsigned)st->guard.refused,
                 IMAP_GUARD_STRING_MAX);
    stream_fail(st, MR_E_PROTOCOL, 0, what);
    return -1;
}

static ssize_t drv_read(mailstream_low *low, void *buf, size_t count)
{
    imap_stream *st = low->data;
    long long deadline = now_ms() + st->io_timeout_ms;

    if (st->failed)
        return -1;
    if (count == 0)
        return 0;
    if (count > INT_MAX)
        count = INT_MAX;
    for (;;) {
        short want = POLLIN;
        int w;

        if (st->ssl == NULL) {
            ssize_t n = sock_recv_once(st, buf, count);
            if (n > 0)
                return guarded(st, buf, (size_t)n);
            if (n != 0)
                return n;   /* -1 failure (never 0: libetpan would spin) */
        } else {
            int n = SSL_read(st->ssl, buf, (int)count);
            if (n > 0)
                return guarded(st, buf, (size_t)n);
            switch (SSL_get_error(st->ssl, n)) {
            case SSL_ERROR_WANT_READ:
                break;
            case SSL_ERROR_WANT_WRITE:
                want = POLLOUT;
                break;
            case SSL_ERROR_ZERO_RETURN:
                stream_fail(st, MR_E_NETWORK, 0, "the server closed the TLS connection");
                return -1;
            case SSL_ERROR_SYSCALL:
                stream_fail(st, MR_E_NETWORK, errno, "TLS read failed");
                return -1;
            default: {
                unsigned long e = ERR_peek_error();
                char msg[256];
                if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
                    ERR_clear_error();
                    stream_fail(st, MR_E_NETWORK, 0,
                                "the server closed the connection unexpectedly");
                } else {
                    snprintf(msg, sizeof msg, "TLS read failed: %s",
                             ERR_reason_error_string(e) ? ERR_reason_error_string(e)
                                                        : "unknown error");
                    ERR_clear_error();
                    stream_fail(st, MR_E_TLS, 0, msg);
                }
                return -1;
            }
            }
        }
        if (st->failed)
            return -1;
        w = wait_fd(st->fd, want, deadline);
        if (w <= 0) {
            fail_timeout(st, w, "waiting for the server");
            return -1;
        }
    }
}

static ssize_t drv_write(mailstream_low *low, const void *buf, size_t count)
{
    imap_stream *st = low->data;
    long long deadline = now_ms() + st->io_timeout_ms;

    if (st->failed)
        return -1;
    if (count == 0)
        return 0;
    if (count > INT_MAX)
        count = INT_MAX;
    for (;;) {
        short want = POLLOUT;
        int w;

        if (st->ssl == NULL) {
            ssize_t n = sock_send_once(st, buf, count);
            if (n != 0)
                return n;
        } else {
            int n = SSL_write(st->ssl, buf, (int)count);
            if (n > 0)
                return n;
            switch (SSL_get_error(st->ssl, n)) {
            case SSL_ERROR_WANT_WRITE:
                break;
            case SSL_ERROR_WANT_READ:
                want = POLLIN;
                break;
            case SSL_ERROR_SYSCALL:
                stream_fail(st, MR_E_NETWORK, errno, "TLS write failed");
                return -1;
            default:
                ERR_clear_error();
                stream_fail(st, MR_E_NETWORK, 0, "TLS write failed");
                return -1;
            }
        }
        if (st->failed)
            return -1;
        w = wait_fd(st->fd, want, deadline);
        if (w <= 0) {
            fail_timeout(st, w, "sending to the server");
            return -1;
        }
    }
}

static int drv_close(mailstream_low *low)
{
    imap_stream *st = low->data;

    if (st->ssl != NULL && !st->failed)
        (void)SSL_shutdown(st->ssl);   /* best effort, one non-blocking attempt */
    if (st->fd >= 0) {
        close(st->fd);
        st->fd = -1;
    }
    return 0;
}

static int drv_get_fd(mailstream_low *low)
{
    imap_stream *st = low->data;

    return st->fd;
}

static void stream_free(imap_stream *st)
{
    if (st == NULL)
        return;
    SSL_free(st->ssl);        /* frees the BIO too */
    SSL_CTX_free(st->ctx);
    BIO_meth_free(st->bio_method);
    if (st->fd >= 0)
        close(st->fd);
    free(st);
}

static void drv_free(mailstream_low *low)
{
    stream_free(low->data);
    low->data = NULL;
    free(low);   /* a mailstream_low driver frees the low itself */
}

/* ---- connect ---- */

static int connect_one(const struct addrinfo *ai, long long deadline, int *fd_out,
                       int *errnum)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    int soerr = 0, w;
    socklen_t len = sizeof soerr;

    if (fd < 0) {
        *errnum = errno;
        return MR_E_NETWORK;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        *fd_out = fd;
        return 0;
    }
    if (errno != EINPROGRESS) {
        *errnum = errno;
        close(fd);
        return MR_E_NETWORK;
    }
    w = wait_fd(fd, POLLOUT, deadline);
    if (w <= 0) {
        *errnum = w < 0 ? errno : 0;
        close(fd);
        return w < 0 ? MR_E_NETWORK : MR_E_TIMEOUT;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
        *errnum = soerr != 0 ? soerr : errno;
        close(fd);
        return MR_E_NETWORK;
    }
    *fd_out = fd;
    return 0;
}

int imap_stream_open(const char *host, int port, int connect_timeout_s, int io_timeout_s,
                     mailstream **out, imap_stream **st_out, mr_error *err)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    char portstr[16];
    long long deadline = now_ms() + (long long)connect_timeout_s * 1000;
    int fd = -1, rc = MR_E_NETWORK, errnum = 0, one = 1;

    *out = NULL;
    *st_out = NULL;
    snprintf(portstr, sizeof portstr, "%d", port);
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0)
        return mr_error_set(err, MR_E_NETWORK, "cannot resolve IMAP server %s: %s", host,
                            gai_strerror(rc));
    rc = MR_E_NETWORK;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        rc = connect_one(ai, deadline, &fd, &errnum);
        if (rc == 0 || rc == MR_E_TIMEOUT)
            break;
    }
    freeaddrinfo(res);
    if (rc == MR_E_TIMEOUT)
        return mr_error_set(err, MR_E_TIMEOUT, "connecting to IMAP server %s:%d timed out "
                            "after %d s", host, port, connect_timeout_s);
    if (rc != 0)
        return mr_error_errno(err, MR_E_NETWORK, errnum, "cannot connect to IMAP server %s:%d",
                              host, port);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    rc = imap_stream_adopt_fd(fd, io_timeout_s, out, st_out, err);
    if (rc == 0 && connect_timeout_s > 0)
        (*st_out)->handshake_timeout_ms = connect_timeout_s * 1000;
    return rc;
}

int imap_stream_adopt_fd(int fd, int io_timeout_s, mailstream **out, imap_stream **st_out,
                         mr_error *err)
{
    imap_stream *st;
    mailstream_low *low;
    mailstream *s;

    *out = NULL;
    *st_out = NULL;
    st = calloc(1, sizeof *st);
    if (st == NULL) {
        close(fd);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    st->fd = fd;
    st->io_timeout_ms = io_timeout_s * 1000;
    st->handshake_timeout_ms = st->io_timeout_ms;
    imap_guard_init(&st->guard);
    st->driver.mailstream_read = drv_read;
    st->driver.mailstream_write = drv_write;
    st->driver.mailstream_close = drv_close;
    st->driver.mailstream_get_fd = drv_get_fd;
    st->driver.mailstream_free = drv_free;
    low = mailstream_low_new(st, &st->driver);
    if (low == NULL) {
        stream_free(st);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    /* 64 KiB: a FETCH response streams through this buffer; larger reads mean fewer
     * driver calls per message (bench-ingest showed ~6 small reads per message at 8 KiB). */
    s = mailstream_new(low, 65536);
    if (s == NULL) {
        drv_free(low);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    *out = s;
    *st_out = st;
    return 0;
}

/* ---- TLS ---- */

static bool is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int tls_setup(imap_stream *st, const char *host, const char *ca_file, bool insecure,
                     mr_error *err)
{
    BIO *bio;

    st->ctx = SSL_CTX_new(TLS_client_method());
    if (st->ctx == NULL)
        return mr_error_openssl(err, MR_E_TLS, "cannot create TLS context");
    if (SSL_CTX_set_min_proto_version(st->ctx, TLS1_2_VERSION) != 1)
        return mr_error_openssl(err, MR_E_TLS, "cannot require TLS 1.2");
    if (!insecure) {
        SSL_CTX_set_verify(st->ctx, SSL_VERIFY_PEER, NULL);
        if (ca_file != NULL) {
            if (SSL_CTX_load_verify_locations(st->ctx, ca_file, NULL) != 1)
                return mr_error_openssl(err, MR_E_CONFIG, "cannot load CA file %s", ca_file);
        } else if (SSL_CTX_set_default_verify_paths(st->ctx) != 1) {
            return mr_error_openssl(err, MR_E_TLS, "cannot load the system trust store");
        }
    } else {
        SSL_CTX_set_verify(st->ctx, SSL_VERIFY_NONE, NULL);
    }
    st->ssl = SSL_new(st->ctx);
    if (st->ssl == NULL)
        return mr_error_openssl(err, MR_E_TLS, "cannot create TLS session");
    /* SNI is defined for names only (RFC 6066), never for address literals. */
    if (!is_ip_literal(host) && SSL_set_tlsext_host_name(st->ssl, host) != 1)
        return mr_error_openssl(err, MR_E_TLS, "cannot set TLS server name");
    if (!insecure) {
        SSL_set_hostflags(st->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        /* OpenSSL 3 treats an address literal as an iPAddress SAN check. */
        if (SSL_set1_host(st->ssl, host) != 1)
            return mr_error_openssl(err, MR_E_TLS, "cannot set the expected host name");
    }
    st->bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                  "mailret-imap-socket");
    if (st->bio_method == NULL || BIO_meth_set_write(st->bio_method, bio_write) != 1 ||
        BIO_meth_set_read(st->bio_method, bio_read) != 1 ||
        BIO_meth_set_ctrl(st->bio_method, bio_ctrl) != 1 ||
        BIO_meth_set_create(st->bio_method, bio_create) != 1)
        return mr_error_openssl(err, MR_E_TLS, "cannot create TLS socket BIO");
    bio = BIO_new(st->bio_method);
    if (bio == NULL)
        return mr_error_openssl(err, MR_E_TLS, "cannot create TLS socket BIO");
    BIO_set_data(bio, st);
    SSL_set_bio(st->ssl, bio, bio);
    /* Read ahead: let OpenSSL pull whole socket buffers through our BIO instead of a 5-byte
     * record header and then the record, halving recv calls.  Safe with our poll loop: we
     * poll only after SSL_read says WANT_READ, i.e. when its own buffer is empty. */
    SSL_set_read_ahead(st->ssl, 1);
    return 0;
}

int imap_stream_start_tls(imap_stream *st, const char *host, const char *ca_file,
                          bool insecure, mr_error *err)
{
    long long deadline = now_ms() + st->handshake_timeout_ms;
    int rc;

    if (st->ssl != NULL)
        return mr_error_set(err, MR_E_INTERNAL, "TLS already started");
    ERR_clear_error();
    rc = tls_setup(st, host, ca_file, insecure, err);
    if (rc != 0)
        return rc;
    for (;;) {
        int r = SSL_connect(st->ssl), w;
        short want;

        if (r == 1)
            break;
        switch (SSL_get_error(st->ssl, r)) {
        case SSL_ERROR_WANT_READ:
            want = POLLIN;
            break;
        case SSL_ERROR_WANT_WRITE:
            want = POLLOUT;
            break;
        default: {
            long vr = SSL_get_verify_result(st->ssl);
            if (!insecure && vr != X509_V_OK) {
                ERR_clear_error();
                st->failed = true;
                return mr_error_set(err, MR_E_TLS, "TLS certificate verification failed for "
                                    "%s: %s", host, X509_verify_cert_error_string(vr));
            }
            if (st->failed) {   /* the socket itself failed: say so, as TLS */
                ERR_clear_error();
                return mr_error_set(err, MR_E_TLS, "TLS handshake with %s failed: %s", host,
                                    st->last.msg);
            }
            st->failed = true;
            return mr_error_openssl(err, MR_E_TLS, "TLS handshake with %s failed", host);
        }
        }
        if (st->failed)
            return mr_error_set(err, MR_E_TLS, "TLS handshake with %s failed: %s", host,
                                st->last.msg);
        w = wait_fd(st->fd, want, deadline);
        if (w <= 0) {
            st->failed = true;
            return mr_error_set(err, MR_E_TLS, "TLS handshake with %s timed out after %d s "
                                "(connect_timeout)", host, st->handshake_timeout_ms / 1000);
        }
    }
    if (!insecure) {
        /* Belt and braces: SSL_VERIFY_PEER already aborted on failure, but a handshake
         * that somehow completed without a verified peer certificate must not pass. */
        X509 *peer = SSL_get0_peer_certificate(st->ssl);
        long vr = SSL_get_verify_result(st->ssl);
        if (peer == NULL || vr != X509_V_OK) {
            st->failed = true;
            return mr_error_set(err, MR_E_TLS, "TLS certificate verification failed for %s: %s",
                                host, peer == NULL ? "no certificate"
                                                   : X509_verify_cert_error_string(vr));
        }
    }
    st->tls_up = true;
    return 0;
}

int imap_stream_error(const imap_stream *st, mr_error *err)
{
    if (st == NULL || !st->failed || st->last.code == 0)
        return mr_error_set(err, MR_E_NETWORK, "connection to the IMAP server failed");
    return mr_error_set(err, st->last.code, "%s", st->last.msg);
}

bool imap_stream_failed(const imap_stream *st)
{
    return st != NULL && st->failed;
}

bool imap_stream_is_tls(const imap_stream *st)
{
    return st != NULL && st->tls_up && !st->failed;
}
