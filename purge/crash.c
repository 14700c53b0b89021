/* crash.c — fault injection for the purge tests: MAILRET_TEST_CRASH_AT=<step> kills the
 * process with SIGKILL at that step (see purge.h for the step names; common/crashpoint.h
 * for the mechanism and the steps inside key creation and durable writes). */
#include "common/crashpoint.h"
#include "purge/purge.h"

void purge_test_crash_hook(void *ctx, const char *step)
{
    (void)ctx;
    mr_crash_point(step, NULL);
}
