/* test_helpers.c — see test_helpers.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "helpers/test_helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *th_tempdir(const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    char *path;
    size_t n;

    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    n = strlen(tmp) + strlen(prefix) + 16;
    path = malloc(n);
    if (path == NULL)
        return NULL;
    snprintf(path, n, "%s/%s-XXXXXX", tmp, prefix);
    if (mkdtemp(path) == NULL) {
        free(path);
        return NULL;
    }
    return path;
}

void th_rmtree(const char *path)
{
    DIR *d;
    struct dirent *de;
    struct stat st;

    if (path == NULL || lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    d = opendir(path);
    if (d != NULL) {
        while ((de = readdir(d)) != NULL) {
            char child[4096];
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(child, sizeof child, "%s/%s", path, de->d_name);
            th_rmtree(child);
        }
        closedir(d);
    }
    rmdir(path);
}

unsigned char *th_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, used = 0;

    if (f == NULL)
        return NULL;
    for (;;) {
        size_t got;
        if (cap - used < 65536) {
            unsigned char *nb = realloc(buf, cap + 65536 + 1);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap += 65536;
        }
        got = fread(buf + used, 1, cap - used, f);
        used += got;
        if (got == 0)
            break;
    }
    fclose(f);
    if (buf == NULL)
        buf = malloc(1);
    if (buf == NULL)
        return NULL;
    buf[used] = '\0';
    if (len != NULL)
        *len = used;
    return buf;
}

int th_each_file(const char *dir,
                 int (*fn)(const char *name, const unsigned char *data, size_t len, void *arg),
                 void *arg)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        char path[8192];
        size_t len;
        unsigned char *data;
        int stop;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        data = th_read_file(path, &len);
        if (data == NULL) {
            n = -1;
            break;
        }
        stop = fn(de->d_name, data, len, arg);
        free(data);
        n++;
        if (stop != 0)
            break;
    }
    closedir(d);
    return n;
}

int th_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int rc = 0;

    if (f == NULL)
        return -1;
    if (len > 0 && fwrite(data, 1, len, f) != len)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

char *th_imap_env(const char *key)
{
    const char *dir = getenv("MAILRET_TEST_IMAP_DIR");
    char path[4096], line[4096];
    size_t klen = strlen(key);
    FILE *f;
    char *value = NULL;

    if (dir == NULL)
        return NULL;
    snprintf(path, sizeof path, "%s/env", dir);
    f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            line[strcspn(line, "\r\n")] = '\0';
            value = strdup(line + klen + 1);
            break;
        }
    }
    fclose(f);
    return value;
}

static size_t find_in_file(const char *path, const char *const *needles, size_t n,
                           char **where)
{
    size_t len, hits = 0;
    unsigned char *buf = th_read_file(path, &len);

    if (buf == NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        size_t nlen = strlen(needles[i]);
        if (nlen == 0 || nlen > len)
            continue;
        if (memmem(buf, len, needles[i], nlen) != NULL) {
            if (hits == 0 && where != NULL && *where == NULL) {
                size_t wl = strlen(path) + 32;
                *where = malloc(wl);
                if (*where != NULL)
                    snprintf(*where, wl, "%s: needle %zu", path, i);
            }
            hits++;
        }
    }
    free(buf);
    return hits;
}

size_t th_find_in_tree(const char *dir, const char *const *needles, size_t n_needles,
                       char **where)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t hits = 0;

    if (d == NULL)
        return find_in_file(dir, needles, n_needles, where);
    while ((de = readdir(d)) != NULL) {
        char child[4096];
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(child, sizeof child, "%s/%s", dir, de->d_name);
        if (lstat(child, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            hits += th_find_in_tree(child, needles, n_needles, where);
        else if (S_ISREG(st.st_mode))
            hits += find_in_file(child, needles, n_needles, where);
    }
    closedir(d);
    return hits;
}
