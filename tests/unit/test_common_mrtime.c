/* test_common_mrtime.c — calendar arithmetic in Europe/Copenhagen (common/mrtime.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mrtime.h"

#define CPH MRTIME_DEFAULT_ZONE

/* "YYYY-MM-DDTHH:MM:SSZ" -> time_t, via the code under test's UTC parser. */
static time_t utc(const char *s)
{
    time_t t;
    mr_error err;

    if (mrtime_parse(s, CPH, &t, &err) != 0)
        fail_msg("parse %s: %s", s, err.msg);
    return t;
}

static void expect_utc(time_t t, const char *want)
{
    char buf[32];

    mrtime_format_utc(t, buf, sizeof buf);
    assert_string_equal(buf, want);
}

static void month_start_is(const char *now, const char *zone, const char *want)
{
    time_t out = 0;
    mr_error err;

    if (mrtime_month_start(utc(now), zone, &out, &err) != 0)
        fail_msg("%s", err.msg);
    expect_utc(out, want);
}

static void test_format_utc(void **state)
{
    char buf[32];

    (void)state;
    mrtime_format_utc(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    mrtime_format_utc(1795428000, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-23T10:00:00Z");
    mrtime_format_utc(951782400, buf, sizeof buf);
    assert_string_equal(buf, "2000-02-29T00:00:00Z");
}

static void test_month_start_winter_summer(void **state)
{
    (void)state;
    /* CET (+01) */
    month_start_is("2026-01-15T12:00:00Z", CPH, "2025-12-31T23:00:00Z");
    month_start_is("2026-11-23T10:00:00Z", CPH, "2026-10-31T23:00:00Z");
    /* CEST (+02) */
    month_start_is("2026-07-15T12:00:00Z", CPH, "2026-06-30T22:00:00Z");
    /* the very first second of a month is its own month start */
    month_start_is("2026-06-30T22:00:00Z", CPH, "2026-06-30T22:00:00Z");
    month_start_is("2026-06-30T21:59:59Z", CPH, "2026-05-31T22:00:00Z");
}

static void test_month_start_dst_months(void **state)
{
    (void)state;
    /* March 2026: CET until Sunday 29 March 01:00 UTC, then CEST.  The month began
     * in CET even when asked after the change. */
    month_start_is("2026-03-31T12:00:00Z", CPH, "2026-02-28T23:00:00Z");
    month_start_is("2026-03-29T00:59:59Z", CPH, "2026-02-28T23:00:00Z");
    month_start_is("2026-03-29T01:00:00Z", CPH, "2026-02-28T23:00:00Z");
    /* 31 March 22:30 UTC is already 1 April in Copenhagen (CEST) */
    month_start_is("2026-03-31T22:30:00Z", CPH, "2026-03-31T22:00:00Z");
    /* October 2026: CEST until Sunday 25 October 01:00 UTC.  The month began in CEST. */
    month_start_is("2026-10-26T12:00:00Z", CPH, "2026-09-30T22:00:00Z");
    month_start_is("2026-10-25T00:59:59Z", CPH, "2026-09-30T22:00:00Z");
    /* 31 October 23:30 UTC is 1 November 00:30 CET */
    month_start_is("2026-10-31T23:30:00Z", CPH, "2026-10-31T23:00:00Z");
    month_start_is("2026-10-31T22:59:59Z", CPH, "2026-09-30T22:00:00Z");
}

static void test_month_start_beyond_table_and_other_zones(void **state)
{
    (void)state;
    /* far beyond any transition table: the POSIX footer rule decides */
    month_start_is("2090-07-15T12:00:00Z", CPH, "2090-06-30T22:00:00Z");
    month_start_is("2090-01-15T12:00:00Z", CPH, "2089-12-31T23:00:00Z");
    /* southern hemisphere: summer time across New Year */
    month_start_is("2026-01-15T00:00:00Z", "Australia/Sydney", "2025-12-31T13:00:00Z");
    month_start_is("2090-01-15T00:00:00Z", "Australia/Sydney", "2089-12-31T13:00:00Z");
    month_start_is("2026-07-15T00:00:00Z", "Australia/Sydney", "2026-06-30T14:00:00Z");
    month_start_is("2026-11-23T10:00:00Z", "UTC", "2026-11-01T00:00:00Z");
    /* early in the table (CET all year in 1970-1979) */
    month_start_is("1971-01-15T00:00:00Z", CPH, "1970-12-31T23:00:00Z");
}

/* Cross-check every month 1970..2100 against glibc's mktime with TZ set — allowed in a
 * test process, which is exactly what mrtime avoids doing in mailret. */
static void test_month_start_matches_libc(void **state)
{
    static const char *const zones[] = { CPH, "America/New_York", "Australia/Sydney" };

    (void)state;
    for (size_t zi = 0; zi < sizeof zones / sizeof zones[0]; zi++) {
        char tzenv[64];
        snprintf(tzenv, sizeof tzenv, ":%s", zones[zi]);
        setenv("TZ", tzenv, 1);
        tzset();
        for (int y = 1971; y <= 2100; y++) {
            for (int m = 1; m <= 12; m++) {
                struct tm tm;
                time_t want, mid, got;
                mr_error err;

                memset(&tm, 0, sizeof tm);
                tm.tm_year = y - 1900;
                tm.tm_mon = m - 1;
                tm.tm_mday = 1;
                tm.tm_isdst = -1;
                want = mktime(&tm);
                tm.tm_mday = 15;
                tm.tm_hour = 12;
                tm.tm_isdst = -1;
                mid = mktime(&tm);
                if (mrtime_month_start(mid, zones[zi], &got, &err) != 0)
                    fail_msg("%s", err.msg);
                if (got != want)
                    fail_msg("%s %04d-%02d: got %lld want %lld", zones[zi], y, m,
                             (long long)got, (long long)want);
            }
        }
    }
    unsetenv("TZ");
    tzset();
}

static void add_years_is(const char *from, int years, const char *want)
{
    time_t out = 0;
    mr_error err;

    if (mrtime_add_years(utc(from), years, CPH, &out, &err) != 0)
        fail_msg("%s", err.msg);
    expect_utc(out, want);
}

static void test_add_years(void **state)
{
    (void)state;
    /* 1 Nov 2026 00:00 CET + 5 years = 1 Nov 2031 00:00 CET */
    add_years_is("2026-10-31T23:00:00Z", 5, "2031-10-31T23:00:00Z");
    /* 1 Jun 2026 00:00 CEST + 5 years = 1 Jun 2031 00:00 CEST */
    add_years_is("2026-05-31T22:00:00Z", 5, "2031-05-31T22:00:00Z");
    /* same wall-clock time even when the offset differs: 26 Oct 2026 00:30 is CET,
     * 26 Oct 2031 00:30 is still CEST (the change is on that day at 03:00) */
    add_years_is("2026-10-25T23:30:00Z", 5, "2031-10-25T22:30:00Z");
    /* 29 February + 5 years -> 1 March (never 28 February: not shorter) */
    add_years_is("2028-02-29T11:00:00Z", 5, "2033-03-01T11:00:00Z");
    add_years_is("2028-02-29T11:00:00Z", 4, "2032-02-29T11:00:00Z");
    /* 00:30 on 29 Feb local is still 28 Feb in UTC */
    add_years_is("2028-02-28T23:30:00Z", 5, "2033-02-28T23:30:00Z");
    add_years_is("2026-11-23T10:00:00Z", 0, "2026-11-23T10:00:00Z");
}

static void test_parse(void **state)
{
    time_t t;
    mr_error err;

    (void)state;
    /* dates are local midnight in the zone */
    assert_int_equal(mrtime_parse("2026-11-01", CPH, &t, &err), 0);
    expect_utc(t, "2026-10-31T23:00:00Z");
    assert_int_equal(mrtime_parse("2026-07-01", CPH, &t, &err), 0);
    expect_utc(t, "2026-06-30T22:00:00Z");
    assert_int_equal(mrtime_parse("2028-02-29", CPH, &t, &err), 0);
    expect_utc(t, "2028-02-28T23:00:00Z");
    assert_int_equal(mrtime_parse("2026-11-01", "UTC", &t, &err), 0);
    expect_utc(t, "2026-11-01T00:00:00Z");
    /* full timestamps are UTC whatever the zone */
    assert_int_equal(mrtime_parse("2026-11-23T10:00:00Z", "Australia/Sydney", &t, &err), 0);
    assert_int_equal((long long)t, 1795428000LL);
}

static void test_parse_rejects(void **state)
{
    static const char *const bad[] = {
        "2026-02-30", "2026-13-01", "2026-00-10", "2026-01-00", "2027-02-29", "2026-04-31",
        "2026-1-01", "26-11-01", "2026/11/01", "2026-11-01 ", " 2026-11-01", "",
        "2026-11-01T25:00:00Z", "2026-11-01T10:60:00Z", "2026-11-01T10:00:60Z",
        "2026-11-01T10:00:00", "2026-11-01T10:00:00+01:00", "2026-11-0a", "1969-12-31",
    };
    time_t t;
    mr_error err;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mr_error_clear(&err);
        if (mrtime_parse(bad[i], CPH, &t, &err) != MR_E_PARSE)
            fail_msg("'%s' accepted", bad[i]);
        assert_true(err.msg[0] != '\0');
    }
}

static void test_format_month_and_zones(void **state)
{
    char buf[16];
    mr_error err;
    time_t t;

    (void)state;
    assert_int_equal(mrtime_format_month(utc("2026-10-31T23:30:00Z"), CPH, buf, sizeof buf,
                                         &err), 0);
    assert_string_equal(buf, "2026-11");
    assert_int_equal(mrtime_format_month(utc("2026-10-31T22:30:00Z"), CPH, buf, sizeof buf,
                                         &err), 0);
    assert_string_equal(buf, "2026-10");
    assert_int_equal(mrtime_format_month(0, CPH, buf, 4, &err), MR_E_INVALID);

    assert_int_equal(mrtime_zone_check(CPH, &err), 0);
    assert_int_equal(mrtime_zone_check("Mars/Olympus_Mons", &err), MR_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "Mars/Olympus_Mons"));
    assert_int_equal(mrtime_zone_check("../../etc/passwd", &err), MR_E_INVALID);
    assert_int_equal(mrtime_zone_check("/etc/localtime", &err), MR_E_INVALID);
    assert_int_equal(mrtime_zone_check("", &err), MR_E_INVALID);
    /* a directory or a non-TZif file is not a zone */
    assert_true(mrtime_zone_check("Europe", &err) < 0);
    assert_true(mrtime_zone_check("zone.tab", &err) < 0);
    assert_int_equal(mrtime_month_start(0, "Nowhere", &t, &err), MR_E_NOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_utc),
        cmocka_unit_test(test_month_start_winter_summer),
        cmocka_unit_test(test_month_start_dst_months),
        cmocka_unit_test(test_month_start_beyond_table_and_other_zones),
        cmocka_unit_test(test_month_start_matches_libc),
        cmocka_unit_test(test_add_years),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_format_month_and_zones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
