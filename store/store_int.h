/* store_int.h — shared by the drivers in store/, not part of the interface. */
#ifndef MAILRET_STORE_INT_H
#define MAILRET_STORE_INT_H

#include "store/store.h"

/* Read len bytes of src from off; a file that shrank is MR_E_IO. */
int store_source_read(const struct store_source *src, uint64_t off, void *buf, size_t len,
                      mr_error *err);
/* SHA-256 of len bytes of src from off. */
int store_source_sha256(const struct store_source *src, uint64_t off, uint64_t len,
                        unsigned char out[32], mr_error *err);

#endif
