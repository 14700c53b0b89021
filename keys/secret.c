/* secret.c — passphrases and raw key files: from a private file, the environment or the
 * terminal, never argv (argv is visible to every user through /proc). */
#include "keys/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#define SECRET_MAX 4096

void keys_secret_free(char *secret)
{
    if (secret == NULL)
        return;
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
}

void keys_wipe_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
}

int keys_secret_file_check(const char *path, mr_error *err)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                              "cannot stat secret file %s", path);
    if (!S_ISREG(st.st_mode))
        return mr_error_set(err, MR_E_PERM, "secret file %s is not a regular file", path);
    if ((st.st_mode & 077) != 0)
        return mr_error_set(err, MR_E_PERM,
                            "secret file %s is accessible by group or others (mode %04o); "
                            "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
    return 0;
}

/* Read at most max bytes of a checked secret file. */
static int secret_file_read(const char *path, unsigned char *buf, size_t max, size_t *len,
                            mr_error *err)
{
    int rc = keys_secret_file_check(path, err);
    int fd;
    size_t got = 0;

    if (rc != 0)
        return rc;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return mr_error_errno(err, MR_E_IO, errno, "cannot open secret file %s", path);
    for (;;) {
        ssize_t n = read(fd, buf + got, max - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot read secret file %s", path);
            close(fd);
            return rc;
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (got == max) {
            char extra;
            if (read(fd, &extra, 1) > 0) {
                close(fd);
                return mr_error_set(err, MR_E_INVALID, "secret file %s is too long", path);
            }
            break;
        }
    }
    close(fd);
    *len = got;
    return 0;
}

static void strip_newline(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static int secret_tty_prompt(const char *prompt, char *buf, size_t size, mr_error *err)
{
    struct termios old, quiet;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    size_t got = 0;
    int rc = 0;

    if (fd < 0)
        return mr_error_set(err, MR_E_CONFIG,
                            "no passphrase given (file or environment) and no terminal");
    if (write(fd, prompt, strlen(prompt)) < 0) {
        close(fd);
        return mr_error_errno(err, MR_E_IO, errno, "cannot prompt on the terminal");
    }
    if (tcgetattr(fd, &old) != 0) {
        close(fd);
        return mr_error_errno(err, MR_E_IO, errno, "cannot read terminal settings");
    }
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
        close(fd);
        return mr_error_errno(err, MR_E_IO, errno, "cannot switch terminal echo off");
    }
    while (got + 1 < size) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || c == '\n')
            break;
        buf[got++] = c;
    }
    buf[got] = '\0';
    (void)tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0)
        rc = 0;     /* the passphrase is read; a missing newline on the tty is cosmetic */
    close(fd);
    return rc;
}

int keys_secret_read(const struct keys_secret_source *src, char **out, mr_error *err)
{
    char *buf = calloc(1, SECRET_MAX + 1);
    size_t len = 0;
    int rc;

    *out = NULL;
    if (buf == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (src->file != NULL) {
        rc = secret_file_read(src->file, (unsigned char *)buf, SECRET_MAX, &len, err);
        if (rc != 0) {
            keys_wipe_free(buf, SECRET_MAX + 1);
            return rc;
        }
        buf[len] = '\0';
        if (memchr(buf, '\0', len) != NULL) {
            keys_wipe_free(buf, SECRET_MAX + 1);
            return mr_error_set(err, MR_E_INVALID, "secret file %s holds a NUL byte",
                                src->file);
        }
    } else if (src->env != NULL && getenv(src->env) != NULL) {
        const char *v = getenv(src->env);
        if (strlen(v) > SECRET_MAX) {
            keys_wipe_free(buf, SECRET_MAX + 1);
            return mr_error_set(err, MR_E_INVALID, "$%s is too long", src->env);
        }
        strcpy(buf, v);
    } else if (src->terminal) {
        const char *prompt = src->prompt != NULL ? src->prompt : "Passphrase: ";
        rc = secret_tty_prompt(prompt, buf, SECRET_MAX + 1, err);
        if (rc == 0 && src->confirm) {
            char *again = calloc(1, SECRET_MAX + 1);
            if (again == NULL)
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
            else {
                rc = secret_tty_prompt("Again: ", again, SECRET_MAX + 1, err);
                if (rc == 0 && strcmp(again, buf) != 0)
                    rc = mr_error_set(err, MR_E_INVALID, "the passphrases differ");
                keys_wipe_free(again, SECRET_MAX + 1);
            }
        }
        if (rc != 0) {
            keys_wipe_free(buf, SECRET_MAX + 1);
            return rc;
        }
    } else {
        free(buf);
        return mr_error_set(err, MR_E_CONFIG,
                            "no passphrase source: give a passphrase file or set %s",
                            src->env != NULL ? src->env : "the environment variable");
    }
    strip_newline(buf);
    if (buf[0] == '\0') {
        keys_wipe_free(buf, SECRET_MAX + 1);
        return mr_error_set(err, MR_E_INVALID, "the passphrase is empty");
    }
    *out = buf;
    return 0;
}

int keys_secret_key_read(const char *path, unsigned char out[KEYS_SECRET_LEN], mr_error *err)
{
    unsigned char buf[KEYS_SECRET_LEN + 1];
    size_t len = 0;
    int rc = secret_file_read(path, buf, sizeof buf, &len, err);

    if (rc != 0) {
        OPENSSL_cleanse(buf, sizeof buf);
        return rc;
    }
    if (len != KEYS_SECRET_LEN) {
        OPENSSL_cleanse(buf, sizeof buf);
        return mr_error_set(err, MR_E_INVALID, "key file %s must hold exactly %d bytes",
                            path, KEYS_SECRET_LEN);
    }
    memcpy(out, buf, KEYS_SECRET_LEN);
    OPENSSL_cleanse(buf, sizeof buf);
    return 0;
}

void keys_secret_key_id(const unsigned char key[KEYS_SECRET_LEN], char out[17])
{
    static const char label[] = "mailret key id";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;

    if (HMAC(EVP_sha256(), key, KEYS_SECRET_LEN, (const unsigned char *)label,
             sizeof label - 1, mac, &mac_len) == NULL) {
        strcpy(out, "????????????????");
        return;
    }
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
}
