/*
 * cli.h — what every `mailret <command>` implementation receives and may use.
 *
 * Each command lives in cli/cmd_<name>.c and implements
 *     int cmd_<name>(struct cli_ctx *ctx, int argc, char **argv);
 * argv[0] is the command name; options are parsed with getopt_long by the command itself.
 * The return value is the process exit status:
 *     0 success, 1 failure (one-line error already printed), 2 usage error or
 *     "not implemented yet"; `check` uses 0 ok / 1 warning / 2 violation.
 * Every command prints its help for --help/-h and exits 0.
 */
#ifndef MAILRET_CLI_CLI_H
#define MAILRET_CLI_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "common/error.h"
#include "common/log.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE 2

struct mr_config;

struct cli_ctx {
    const char *config_path;    /* -c FILE, or MAILRET_CONFIG, or /etc/mailret/mailret.conf */
    bool config_explicit;       /* given with -c or MAILRET_CONFIG */
    enum log_level log_level;   /* -v raises, -q lowers; the config file may set it too */
    mr_log *log;                /* opened by main before the command runs (stderr) */
};

/* Load the configuration named in ctx; prints nothing, fills err (with file:line). */
int cli_config_load(struct cli_ctx *ctx, struct mr_config **out, mr_error *err);
/* The same without opening the [log] file: for init and config, which must work before
 * the log directory exists. */
int cli_config_parse(struct cli_ctx *ctx, struct mr_config **out, mr_error *err);

/* Print "mailret <command>: <message>" on stderr for a failed call; returns
 * CLI_EXIT_FAILURE.  The message is scrubbed (log_scrub) before it is printed. */
int cli_fail(const char *command, const mr_error *err);

/* The stable machine-readable name of a failure, from its MR_E_* code: "config",
 * "network", "auth", "state" (e.g. the run lock is held), ... (mr_status_name). */
const char *cli_error_code(const mr_error *err);

/* --json output of a command.  err NULL: print report (one JSON object) as it is.
 * err set: the report object (or {} when report is NULL or not an object) with
 * "command", "error" (cli_error_code) and "message" (the scrubbed one-line message)
 * added, so stdout always carries exactly one object.  Returns 0 or -1. */
int cli_json_result(FILE *out, const char *command, const char *report, const mr_error *err);

/* Whether cli_json_result printed an object in this process. */
bool cli_json_printed(void);

/* cli_fail, and with json also the failure object on stdout; returns CLI_EXIT_FAILURE. */
int cli_fail_json(const char *command, bool json, const mr_error *err);

/* --progress / --no-progress / neither (on when stderr is a terminal outside systemd). */
enum cli_progress_mode { CLI_PROGRESS_AUTO = -1, CLI_PROGRESS_OFF = 0, CLI_PROGRESS_ON = 1 };
struct mr_progress;
/* The progress line on stderr for mode; NULL when off (or out of memory: no progress is
 * no reason to fail a run).  Free with progress_close. */
struct mr_progress *cli_progress_open(enum cli_progress_mode mode);

/* "<3>" when stderr is the journal's stream (so the one-line failure is at priority
 * err in journalctl), "" otherwise. */
const char *cli_journal_prefix(void);

/* The code (MR_E_*, or MR_E_USAGE_CLI for a usage error; 0 if none) and scrubbed message
 * of the last cli_fail or cli_usage_error. */
#define MR_E_USAGE_CLI 1
int cli_last_failure(char *message, size_t size);

/* Print a usage error plus "try 'mailret <command> --help'"; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* For a command not built yet: prints "<command>: not implemented yet", returns 2. */
int cli_not_implemented(const char *command);

/* Scheduled commands (purge, expire) wait this long for the run lock (--lock-wait): the
 * monthly purge timer and the five-minute ingest timer fire together. */
#define CLI_LOCK_WAIT_DEFAULT_S 900

/* Parse a whole number of seconds 0..86400 (--lock-wait); false if it is not one. */
bool cli_parse_seconds(const char *text, int *out);

/* True if argv holds -h or --help (checked before any other parsing). */
bool cli_wants_help(int argc, char **argv);

#define CLI_COMMANDS(X) \
    X(ingest, "copy casework mail from the shared mailboxes into the member system") \
    X(purge, "back up and delete mail older than the monthly cutoff") \
    X(backup, "archive mail older than the cutoff without deleting it") \
    X(restore, "IT: restore archived mail (Maildir, mbox or IMAP)") \
    X(access_request, "IT: every message of one person, re-identified, and a summary") \
    X(locate, "IT: add a locator to batches written without one") \
    X(verify, "verify a batch's manifest and volumes (--deep: decrypt, IT)") \
    X(status, "last runs, test login, unrouted queue, key dates, archive disk use") \
    X(check, "compliance check of every batch and mailbox (exit 0/1/2)") \
    X(expire, "crypto-shred and delete batches past their expiry") \
    X(hold, "place or release a legal hold on a batch") \
    X(erase, "record a person's erasure request as tokens in the ledger") \
    X(init, "create the state, archive, vault and log directories (as root)") \
    X(config, "configuration: check (FILE:LINE errors, exit 0/1) and show") \
    X(keys, "key management: init-it, init-host, list") \
    X(members, "member registry: import a CSV file") \
    X(unrouted, "the queue of unrouted mail: list, show, assign, done") \
    X(audit, "audit log: verify the hash chain")

#define CLI_DECLARE(name, summary) int cmd_##name(struct cli_ctx *ctx, int argc, char **argv);
CLI_COMMANDS(CLI_DECLARE)
#undef CLI_DECLARE

#endif
