/*
 * log.h — operational logging to stderr or a file.  No global state: each command opens a
 * logger and passes the handle down.  As a second line of defence behind the rule "never
 * log a personal identifier", every formatted line is scrubbed: anything shaped like an
 * e-mail address, a CPR number or a Danish phone number is replaced by "[redacted]".
 */
#ifndef MAILRET_COMMON_LOG_H
#define MAILRET_COMMON_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN = 1, LOG_LEVEL_INFO = 2, LOG_LEVEL_DEBUG = 3 };

typedef struct mr_log mr_log;

/* path NULL or "-" = stderr.  A file is opened O_APPEND, 0640.  When stderr is the
 * journal's stream (JOURNAL_STREAM names its device:inode, as systemd sets it), every
 * line starts with its syslog priority "<3>".."<7>" instead of the timestamp and pid. */
int log_open(mr_log **out, enum log_level level, const char *path, mr_error *err);
void log_close(mr_log *log);

/* True if fd is the stream systemd named in JOURNAL_STREAM ("DEV:INO"). */
bool log_fd_is_journal(int fd);

/* The syslog priority of a level: error 3, warn 4, info 6, debug 7. */
int log_syslog_priority(enum log_level level);

/* Parse "error", "warn", "info", "debug". */
int log_level_parse(const char *name, enum log_level *level, mr_error *err);

/* One line: "2026-11-23T10:00:00Z mailret[pid] LEVEL message" ("<3>ERROR message" on
 * the journal's stream).  log may be NULL (no-op).
 * Thread-safe. */
void log_msg(mr_log *log, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(l, ...) log_msg((l), LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(l, ...) log_msg((l), LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(l, ...) log_msg((l), LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(l, ...) log_msg((l), LOG_LEVEL_DEBUG, __VA_ARGS__)

/* The scrubber on its own (in place; returns the number of redactions), for other writers
 * that must not carry identifiers, e.g. error messages shown to the operator.  In place
 * means the line never grows: an identifier shorter than "[redacted]" (an 8-digit phone
 * number, a short address) is replaced by a marker of its own length ("[redact]",
 * "[red]"); use log_scrub_buf when the buffer has room to spare. */
size_t log_scrub(char *line);

/* As log_scrub, for a NUL-terminated string in a buffer of `size` bytes: every
 * identifier becomes "[redacted]" as long as the result fits in size (shorter markers
 * are used only when it would not). */
size_t log_scrub_buf(char *buf, size_t size);

#endif
