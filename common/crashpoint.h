/*
 * crashpoint.h — fault injection for the crash tests: if $MAILRET_TEST_CRASH_AT names
 * this step, the process kills itself with SIGKILL (as a kill -9 or a power cut would
 * stop it).  "STEP" matches the step; "STEP:GLOB" matches the step when the file it is
 * about has a base name matching GLOB (e.g. durable-before-rename:*.key.p7m).  Test
 * equipment compiled into every build on purpose: it can only do what kill -9 does, and
 * an unset variable costs one getenv per step.
 */
#ifndef MAILRET_COMMON_CRASHPOINT_H
#define MAILRET_COMMON_CRASHPOINT_H

void mr_crash_point(const char *step, const char *path);

#endif
