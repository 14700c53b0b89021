/*
 * imap_stream.h — private to ingest/imap.c: a libetpan mailstream on a socket we connect
 * ourselves and, after imap_stream_start_tls, on an OpenSSL SSL* that we verify ourselves.
 *
 * Why not libetpan's own streams: Debian's libetpan uses GnuTLS without any certificate
 * check, its socket driver reports EOF as a 0-byte read (which makes the literal parser of
 * 1.9.4 loop forever when a server closes mid-literal), and it has no per-read timeout we
 * control.  This driver returns -1 on EOF, on every error and on timeout, remembers why,
 * and the caller turns that into an mr_error with imap_stream_error.
 */
#ifndef MAILRET_INGEST_IMAP_STREAM_H
#define MAILRET_INGEST_IMAP_STREAM_H

#include <stdbool.h>

#include <libetpan/libetpan.h>

#include "common/error.h"

typedef struct imap_stream imap_stream;

/* TCP connect to host:port (every address getaddrinfo returns, in order) within
 * connect_timeout_s, which bounds the TLS handshake too; every later read/write waits at
 * most io_timeout_s.  On success *out
 * is a mailstream that owns the socket (mailstream_close frees everything) and *st is
 * the handle for the functions below, valid as long as the mailstream lives. */
int imap_stream_open(const char *host, int port, int connect_timeout_s, int io_timeout_s,
                     mailstream **out, imap_stream **st, mr_error *err);

/* The same on a socket that is already connected (imap_connect_fd): the mailstream owns
 * fd from here, and on failure fd is closed.  Its TLS handshake waits io_timeout_s. */
int imap_stream_adopt_fd(int fd, int io_timeout_s, mailstream **out, imap_stream **st,
                         mr_error *err);

/* TLS handshake on the connected socket: TLS >= 1.2, SNI, and unless insecure the chain
 * against ca_file (NULL = system store) plus the host name.  From then on the mailstream
 * reads and writes through TLS.  Fails with MR_E_TLS on any handshake or verification
 * problem; the connection must then be closed. */
int imap_stream_start_tls(imap_stream *st, const char *host, const char *ca_file,
                          bool insecure, mr_error *err);

/* Why the last read or write failed (MR_E_NETWORK, MR_E_TIMEOUT or MR_E_TLS, with a
 * message), copied into err; returns the code.  If no I/O error was recorded, sets
 * MR_E_NETWORK "connection failed". */
int imap_stream_error(const imap_stream *st, mr_error *err);

/* True once imap_stream_start_tls has succeeded: everything from here on is encrypted. */
bool imap_stream_is_tls(const imap_stream *st);

/* True once a read or write has failed (EOF, reset, timeout): the stream is dead. */
bool imap_stream_failed(const imap_stream *st);

#endif
