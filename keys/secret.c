/* secret.c — passphrases and raw key files: from a private file, the environment or the
 * terminal, never argv (argv is visible to every user through /proc). */
#include "keys/keys.h"
#include "common/secret.h"

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

void keys_wipe_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
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
    const char *prompt = src->prompt != NULL ? src->prompt : "Passphrase: ";
    char *buf, *again;
    size_t len;
    int rc;

    *out = NULL;
    if (src->file != NULL)
        return secret_read_text(src->file, NULL, out, err);
    if (src->env != NULL && getenv(src->env) != NULL)
        return secret_read_text(NULL, src->env, out, err);
    if (!src->terminal)
        return mr_error_set(err, MR_E_CONFIG,
                            "no passphrase source: give a passphrase file or set %s",
                            src->env != NULL ? src->env : "the environment variable");
    buf = calloc(1, SECRET_MAX + 1);
    if (buf == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    rc = secret_tty_prompt(prompt, buf, SECRET_MAX + 1, err);
    if (rc == 0 && src->confirm) {
        again = calloc(1, SECRET_MAX + 1);
        if (again == NULL)
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        else {
            rc = secret_tty_prompt("Again: ", again, SECRET_MAX + 1, err);
            if (rc == 0 && strcmp(again, buf) != 0)
                rc = mr_error_set(err, MR_E_INVALID, "the passphrases differ");
            keys_wipe_free(again, SECRET_MAX + 1);
        }
    }
    len = strlen(buf);
    if (rc == 0 && len > 0 && buf[len - 1] == '\r')
        buf[--len] = '\0';
    if (rc == 0 && len == 0)
        rc = mr_error_set(err, MR_E_INVALID, "the passphrase is empty");
    if (rc != 0) {
        keys_wipe_free(buf, SECRET_MAX + 1);
        return rc;
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
