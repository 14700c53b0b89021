/* pseudo/arena.h — per-message bump allocator. */
#ifndef MAILRET_PSEUDO_ARENA_H
#define MAILRET_PSEUDO_ARENA_H

#include <stddef.h>

#include "common/error.h"

/* Bump allocator for objects that live until the end of the message; freed as a whole. */
struct parena_block;
typedef struct parena {
    struct parena_block *blocks;    /* newest first */
    unsigned char *cur;             /* the newest block's bytes */
    size_t used, cap;
} parena;

void parena_init(parena *a);
/* n bytes, aligned for any type; NULL (err set) when out of memory. */
void *parena_alloc(parena *a, size_t n, mr_error *err);
/* A copy of n bytes plus a NUL. */
void *parena_dup(parena *a, const void *p, size_t n, mr_error *err);
/* Forget every object but keep one standard block for the next message. */
void parena_reset(parena *a);
void parena_free(parena *a);

#endif
