/* pseudo/hooks.h — entry points for the tests only. */
#ifndef MAILRET_PSEUDO_HOOKS_H
#define MAILRET_PSEUDO_HOOKS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "pseudo/pseudo.h"

#define PSEUDO_TEST_FORCE_WHOLE 0x1u   /* exercise the whole-message fallback */

int pseudo_message_ex(const pseudo_key *key, const struct pseudo_policy *policy,
                      const unsigned char *msg, size_t len, unsigned test_flags,
                      pseudo_result **out, mr_error *err);
int pseudo_session_message_ex(pseudo_session *s, const unsigned char *msg, size_t len,
                              unsigned test_flags, pseudo_result **out, mr_error *err);
/* True when the message was replaced as a whole (fallback). */
bool pseudo_result_is_whole(const pseudo_result *res);

#endif
