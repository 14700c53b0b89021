/* pseudo/policy.h — what the policy decides about a part's type and an address. */
#ifndef MAILRET_PSEUDO_POLICY_H
#define MAILRET_PSEUDO_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "pseudo/pseudo.h"

/* Does the policy keep (true) or seal (false) a part of this lower-case type/subtype? */
bool pseudo_type_kept(const struct pseudo_policy *pol, const char *type, const char *subtype);

/* Is a normalised (lower-case) address the fund's own? */
bool pseudo_is_own(const struct pseudo_policy *pol, const unsigned char *norm, size_t len);

#endif
