/*
 * mrtime.c — see mrtime.h.
 *
 * Why not localtime_r/mktime: glibc converts with the process-wide TZ (tzset reads the
 * TZ environment variable and keeps global state), so computing in Europe/Copenhagen
 * would mean setenv("TZ") — racy with other threads, and it changes every other
 * conversion in the process.  Instead this file reads the zone's TZif file from
 * /usr/share/zoneinfo itself (RFC 8536: the 64-bit v2+ transition table plus the POSIX
 * TZ footer rule for instants after the table) and does the calendar arithmetic with
 * pure functions.  Everything lives in a per-call struct; there is no cache and no
 * global state.  The zone file is small (~2 KB), and mailret converts a handful of
 * dates per run.
 */
#include "common/mrtime.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZONEINFO_DIR "/usr/share/zoneinfo"
#define TZIF_MAX_SIZE (1 << 20)
#define SECS_PER_DAY 86400LL

/* A POSIX TZ rule date: Jn (julian, no leap day), n (zero-based day of year), Mm.w.d. */
struct rule_date {
    char kind;      /* 'J', 'D' (plain n) or 'M' */
    int a, b, c;    /* n | month, week, weekday */
    int32_t time;   /* seconds after local midnight, may be negative or > 24h */
};

struct posix_tz {
    int32_t std_off;    /* seconds east of UTC */
    int32_t dst_off;
    int has_dst;
    struct rule_date start, end;
};

struct zone {
    int64_t *trans;
    unsigned char *trans_type;
    size_t n_trans;
    int32_t *utoff;
    size_t n_types;
    int has_footer;
    struct posix_tz footer;
};

/* ---- civil calendar (proleptic Gregorian), after H. Hinnant's algorithms ---- */

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* 0 = Sunday */
static int weekday_of_days(int64_t days)
{
    int64_t w = (days + 4) % 7;     /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

/* ---- POSIX TZ string (the TZif footer) ---- */

static const char *parse_tz_name(const char *p)
{
    if (*p == '<') {
        while (*p != '\0' && *p != '>')
            p++;
        return *p == '>' ? p + 1 : NULL;
    }
    {
        const char *s = p;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
            p++;
        return p - s >= 3 ? p : NULL;
    }
}

/* [+-]hh[:mm[:ss]] with hours up to 167 (RFC 8536 extension). */
static const char *parse_tz_time(const char *p, int32_t *out)
{
    int sign = 1, h = 0, m = 0, s = 0;

    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    if (*p < '0' || *p > '9')
        return NULL;
    while (*p >= '0' && *p <= '9' && h <= 167)
        h = h * 10 + (*p++ - '0');
    if (*p == ':') {
        p++;
        if (p[0] < '0' || p[0] > '5' || p[1] < '0' || p[1] > '9')
            return NULL;
        m = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        if (*p == ':') {
            p++;
            if (p[0] < '0' || p[0] > '5' || p[1] < '0' || p[1] > '9')
                return NULL;
            s = (p[0] - '0') * 10 + (p[1] - '0');
            p += 2;
        }
    }
    if (h > 167)
        return NULL;
    *out = sign * (h * 3600 + m * 60 + s);
    return p;
}

static const char *parse_int(const char *p, int lo, int hi, int *out)
{
    int v = 0, digits = 0;

    while (*p >= '0' && *p <= '9' && digits < 4) {
        v = v * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || v < lo || v > hi)
        return NULL;
    *out = v;
    return p;
}

static const char *parse_rule_date(const char *p, struct rule_date *r)
{
    if (*p == 'J') {
        r->kind = 'J';
        p = parse_int(p + 1, 1, 365, &r->a);
    } else if (*p == 'M') {
        r->kind = 'M';
        p = parse_int(p + 1, 1, 12, &r->a);
        if (p == NULL || *p++ != '.')
            return NULL;
        p = parse_int(p, 1, 5, &r->b);
        if (p == NULL || *p++ != '.')
            return NULL;
        p = parse_int(p, 0, 6, &r->c);
    } else {
        r->kind = 'D';
        p = parse_int(p, 0, 365, &r->a);
    }
    if (p == NULL)
        return NULL;
    r->time = 2 * 3600;
    if (*p == '/')
        p = parse_tz_time(p + 1, &r->time);
    return p;
}

static int parse_posix_tz(const char *s, struct posix_tz *tz)
{
    const char *p = parse_tz_name(s);
    int32_t off;

    memset(tz, 0, sizeof *tz);
    if (p == NULL || (p = parse_tz_time(p, &off)) == NULL)
        return -1;
    tz->std_off = -off;     /* POSIX counts west-positive */
    if (*p == '\0')
        return 0;
    p = parse_tz_name(p);
    if (p == NULL)
        return -1;
    tz->has_dst = 1;
    tz->dst_off = tz->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if ((p = parse_tz_time(p, &off)) == NULL)
            return -1;
        tz->dst_off = -off;
    }
    if (*p == '\0') {
        /* POSIX leaves the default rule to the implementation; glibc uses the US one. */
        p = ",M3.2.0,M11.1.0";
    }
    if (*p++ != ',' || (p = parse_rule_date(p, &tz->start)) == NULL || *p++ != ',' ||
        (p = parse_rule_date(p, &tz->end)) == NULL || *p != '\0')
        return -1;
    return 0;
}

/* Days since the epoch of a rule date in year y. */
static int64_t rule_day(const struct rule_date *r, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1);

    switch (r->kind) {
    case 'J':
        return jan1 + r->a - 1 + (is_leap(y) && r->a >= 60);
    case 'D':
        return jan1 + r->a;
    default: {
        int64_t first = days_from_civil(y, r->a, 1);
        int day = 1 + (r->c - weekday_of_days(first) + 7) % 7 + (r->b - 1) * 7;
        while (day > days_in_month(y, r->a))
            day -= 7;
        return first + day - 1;
    }
    }
}

static int32_t posix_offset(const struct posix_tz *tz, int64_t t)
{
    int64_t y, start, end;
    int m, d;

    if (!tz->has_dst)
        return tz->std_off;
    civil_from_days(floor_div(t + tz->std_off, SECS_PER_DAY), &y, &m, &d);
    /* Start is given in standard time, end in daylight time. */
    start = rule_day(&tz->start, y) * SECS_PER_DAY + tz->start.time - tz->std_off;
    end = rule_day(&tz->end, y) * SECS_PER_DAY + tz->end.time - tz->dst_off;
    if (start < end)
        return t >= start && t < end ? tz->dst_off : tz->std_off;
    return t >= end && t < start ? tz->std_off : tz->dst_off;     /* southern hemisphere */
}

/* ---- TZif ---- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static void zone_free(struct zone *z)
{
    free(z->trans);
    free(z->trans_type);
    free(z->utoff);
    memset(z, 0, sizeof *z);
}

static int valid_zone_name(const char *zone)
{
    if (zone == NULL || *zone == '\0' || *zone == '/' || strlen(zone) > 128 ||
        strstr(zone, "..") != NULL)
        return 0;
    for (const char *p = zone; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+'))
            return 0;
    }
    return 1;
}

static int zone_parse(const unsigned char *buf, size_t len, struct zone *z, const char *zone,
                      mr_error *err)
{
    uint32_t cnt[6];    /* isutcnt isstdcnt leapcnt timecnt typecnt charcnt */
    size_t off = 0, block, tsize = 4;
    const unsigned char *p;

    if (len < 44 || memcmp(buf, "TZif", 4) != 0)
        goto bad;
    for (int pass = 0; pass < 2; pass++) {
        if (off + 44 > len || memcmp(buf + off, "TZif", 4) != 0)
            goto bad;
        for (int i = 0; i < 6; i++)
            cnt[i] = be32(buf + off + 20 + 4 * i);
        if (cnt[3] > 100000 || cnt[4] == 0 || cnt[4] > 256 || cnt[5] > 100000 ||
            cnt[2] > 100000 || cnt[0] > 256 || cnt[1] > 256)
            goto bad;
        block = (size_t)cnt[3] * tsize + cnt[3] + (size_t)cnt[4] * 6 + cnt[5] +
                (size_t)cnt[2] * (tsize + 4) + cnt[1] + cnt[0];
        if (off + 44 + block > len)
            goto bad;
        if (pass == 0 && buf[4] >= '2') {
            off += 44 + block;      /* skip the 32-bit data for the 64-bit copy */
            tsize = 8;
            continue;
        }
        break;
    }
    if (cnt[2] != 0)
        return mr_error_set(err, MR_E_UNSUPPORTED,
                            "time zone %s counts leap seconds; use a zone without", zone);
    p = buf + off + 44;
    z->n_trans = cnt[3];
    z->n_types = cnt[4];
    z->trans = calloc(z->n_trans + 1, sizeof *z->trans);
    z->trans_type = calloc(z->n_trans + 1, 1);
    z->utoff = calloc(z->n_types, sizeof *z->utoff);
    if (z->trans == NULL || z->trans_type == NULL || z->utoff == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    for (size_t i = 0; i < z->n_trans; i++) {
        z->trans[i] = tsize == 8 ? be64(p + 8 * i) : (int32_t)be32(p + 4 * i);
        if (i > 0 && z->trans[i] <= z->trans[i - 1])
            goto bad;
    }
    p += z->n_trans * tsize;
    for (size_t i = 0; i < z->n_trans; i++) {
        z->trans_type[i] = p[i];
        if (p[i] >= z->n_types)
            goto bad;
    }
    p += z->n_trans;
    for (size_t i = 0; i < z->n_types; i++) {
        z->utoff[i] = (int32_t)be32(p + 6 * i);
        if (z->utoff[i] < -25 * 3600 || z->utoff[i] > 26 * 3600)
            goto bad;
    }
    p += z->n_types * 6 + cnt[5] + (size_t)cnt[2] * (tsize + 4) + cnt[1] + cnt[0];
    if (tsize == 8 && (size_t)(p - buf) < len && *p == '\n') {
        const unsigned char *nl = memchr(p + 1, '\n', len - (size_t)(p - buf) - 1);
        char footer[128];
        size_t flen;
        if (nl == NULL)
            goto bad;
        flen = (size_t)(nl - p - 1);
        if (flen > 0) {
            if (flen >= sizeof footer)
                goto bad;
            memcpy(footer, p + 1, flen);
            footer[flen] = '\0';
            if (parse_posix_tz(footer, &z->footer) != 0)
                goto bad;
            z->has_footer = 1;
        }
    }
    return 0;
bad:
    return mr_error_set(err, MR_E_PARSE, "time zone file for %s is malformed", zone);
}

static int zone_load(const char *zone, struct zone *z, mr_error *err)
{
    char path[256];
    unsigned char *buf;
    size_t len = 0;
    FILE *f;
    int rc;

    memset(z, 0, sizeof *z);
    if (!valid_zone_name(zone))
        return mr_error_set(err, MR_E_INVALID, "bad time zone name '%.64s'",
                            zone == NULL ? "" : zone);
    snprintf(path, sizeof path, "%s/%s", ZONEINFO_DIR, zone);
    f = fopen(path, "rb");
    if (f == NULL)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                              "unknown time zone %s (%s)", zone, path);
    buf = malloc(TZIF_MAX_SIZE);
    if (buf == NULL) {
        fclose(f);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    len = fread(buf, 1, TZIF_MAX_SIZE, f);
    rc = ferror(f) ? mr_error_set(err, MR_E_IO, "cannot read %s", path) : 0;
    fclose(f);
    if (rc == 0)
        rc = zone_parse(buf, len, z, zone, err);
    free(buf);
    if (rc != 0)
        zone_free(z);
    return rc;
}

/* Seconds east of UTC in effect at t. */
static int32_t zone_offset(const struct zone *z, int64_t t)
{
    size_t lo, hi;

    if (z->n_trans == 0)
        return z->has_footer ? posix_offset(&z->footer, t) : z->utoff[0];
    if (t < z->trans[0])
        return z->utoff[0];
    if (t >= z->trans[z->n_trans - 1] && z->has_footer)
        return posix_offset(&z->footer, t);
    lo = 0;
    hi = z->n_trans;    /* invariant: trans[lo] <= t < trans[hi] (hi may be the end) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->utoff[z->trans_type[lo]];
}

/* The UTC instant of a local wall-clock time (seconds since the epoch as if local were
 * UTC).  Ambiguous times (autumn) take the first occurrence; times in a spring gap are
 * read with the offset in effect before the gap, i.e. moved forward like mktime does. */
static int64_t zone_from_local(const struct zone *z, int64_t local)
{
    int64_t best = 0;
    int found = 0;
    int32_t offs[260];
    size_t n = 0;

    for (size_t i = 0; i < z->n_types && n < 256; i++)
        offs[n++] = z->utoff[i];
    if (z->has_footer) {
        offs[n++] = z->footer.std_off;
        offs[n++] = z->footer.dst_off;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t t = local - offs[i];
        if (zone_offset(z, t) == offs[i] && (!found || t < best)) {
            best = t;
            found = 1;
        }
    }
    if (found)
        return best;
    return local - zone_offset(z, local - SECS_PER_DAY);
}

/* ---- public ---- */

struct local_time {
    int64_t year;
    int month, day;
    int64_t sod;    /* seconds of day */
};

static void to_local(const struct zone *z, time_t t, struct local_time *lt)
{
    int64_t local = (int64_t)t + zone_offset(z, t);
    int64_t days = floor_div(local, SECS_PER_DAY);

    civil_from_days(days, &lt->year, &lt->month, &lt->day);
    lt->sod = local - days * SECS_PER_DAY;
}

int mrtime_zone_check(const char *zone, mr_error *err)
{
    struct zone z;
    int rc = zone_load(zone, &z, err);

    zone_free(&z);
    return rc;
}

int mrtime_month_start(time_t now, const char *zone, time_t *out, mr_error *err)
{
    struct zone z;
    struct local_time lt;
    int rc;

    if (out == NULL)
        return mr_error_set(err, MR_E_INVALID, "mrtime_month_start: no output");
    rc = zone_load(zone, &z, err);
    if (rc != 0)
        return rc;
    to_local(&z, now, &lt);
    *out = (time_t)zone_from_local(&z, days_from_civil(lt.year, lt.month, 1) * SECS_PER_DAY);
    zone_free(&z);
    return 0;
}

int mrtime_add_years(time_t t, int years, const char *zone, time_t *out, mr_error *err)
{
    struct zone z;
    struct local_time lt;
    int rc;

    if (out == NULL || years < -10000 || years > 10000)
        return mr_error_set(err, MR_E_INVALID, "mrtime_add_years: bad arguments");
    rc = zone_load(zone, &z, err);
    if (rc != 0)
        return rc;
    to_local(&z, t, &lt);
    lt.year += years;
    if (lt.month == 2 && lt.day == 29 && !is_leap(lt.year)) {
        /* 1 March, never 28 February: the retention period must not come out short. */
        lt.month = 3;
        lt.day = 1;
    }
    *out = (time_t)zone_from_local(&z, days_from_civil(lt.year, lt.month, lt.day) *
                                           SECS_PER_DAY + lt.sod);
    zone_free(&z);
    return 0;
}

/* Exactly n decimal digits at p. */
static int digits(const char *p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

int mrtime_parse(const char *text, const char *zone, time_t *out, mr_error *err)
{
    int y, mo, d, h = 0, mi = 0, s = 0;
    size_t len;

    if (text == NULL || out == NULL)
        return mr_error_set(err, MR_E_INVALID, "mrtime_parse: no input");
    len = strlen(text);
    if ((len != 10 && len != 20) || digits(text, 4, &y) != 0 || text[4] != '-' ||
        digits(text + 5, 2, &mo) != 0 || text[7] != '-' || digits(text + 8, 2, &d) != 0 ||
        (len == 20 && (text[10] != 'T' || digits(text + 11, 2, &h) != 0 || text[13] != ':' ||
                       digits(text + 14, 2, &mi) != 0 || text[16] != ':' ||
                       digits(text + 17, 2, &s) != 0 || text[19] != 'Z')))
        return mr_error_set(err, MR_E_PARSE,
                            "bad date '%.32s' (use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)", text);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
        mi > 59 || s > 59)
        return mr_error_set(err, MR_E_PARSE, "no such date or time: %.32s", text);
    if (len == 20) {
        *out = (time_t)(days_from_civil(y, mo, d) * SECS_PER_DAY + h * 3600 + mi * 60 + s);
        return 0;
    }
    {
        struct zone z;
        int rc = zone_load(zone, &z, err);
        if (rc != 0)
            return rc;
        *out = (time_t)zone_from_local(&z, days_from_civil(y, mo, d) * SECS_PER_DAY);
        zone_free(&z);
    }
    return 0;
}

int mrtime_parse_utc(const char *text, time_t *out, mr_error *err)
{
    if (text == NULL || strlen(text) != 20)
        return mr_error_set(err, MR_E_PARSE, "bad time '%.32s' (use YYYY-MM-DDTHH:MM:SSZ)",
                            text != NULL ? text : "");
    return mrtime_parse(text, NULL, out, err);
}

void mrtime_format_utc(time_t t, char *buf, size_t size)
{
    int64_t days = floor_div((int64_t)t, SECS_PER_DAY), sod = (int64_t)t - days * SECS_PER_DAY;
    int64_t y;
    int m, d;

    if (buf == NULL || size == 0)
        return;
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, size, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d,
             (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
}

int mrtime_format_month(time_t t, const char *zone, char *buf, size_t size, mr_error *err)
{
    struct zone z;
    struct local_time lt;
    int rc, n;

    if (buf == NULL || size == 0)
        return mr_error_set(err, MR_E_INVALID, "mrtime_format_month: no buffer");
    rc = zone_load(zone, &z, err);
    if (rc != 0)
        return rc;
    to_local(&z, t, &lt);
    zone_free(&z);
    n = snprintf(buf, size, "%04lld-%02d", (long long)lt.year, lt.month);
    if (n < 0 || (size_t)n >= size)
        return mr_error_set(err, MR_E_INVALID, "mrtime_format_month: buffer too small");
    return 0;
}
