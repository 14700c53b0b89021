/* cpr.c — see cpr.h. */
#include "ingest/cpr.h"

#include <string.h>

static bool cpr_isdigit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Day and month must make sense; the century follows from the 7th digit, so a date check
 * without knowing the century only has to allow 29 February in every year. */
static bool cpr_date_ok(const char d[6])
{
    static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int day = (d[0] - '0') * 10 + (d[1] - '0');
    int mon = (d[2] - '0') * 10 + (d[3] - '0');

    return mon >= 1 && mon <= 12 && day >= 1 && day <= mdays[mon - 1];
}

/* Try to read a CPR number at p (up to end); on success fill out, set *used. */
static bool cpr_at(const unsigned char *p, const unsigned char *end, char out[CPR_LEN + 1],
                   size_t *used)
{
    size_t i = 0, n = 0;

    while (n < 6) {
        if (p + i >= end || !cpr_isdigit(p[i]))
            return false;
        out[n++] = (char)p[i++];
    }
    if (p + i < end && (p[i] == '-' || p[i] == ' '))
        i++;
    while (n < CPR_LEN) {
        if (p + i >= end || !cpr_isdigit(p[i]))
            return false;
        out[n++] = (char)p[i++];
    }
    out[CPR_LEN] = '\0';
    if (p + i < end && cpr_isdigit(p[i]))
        return false;           /* part of a longer number (an account number, say) */
    if (!cpr_date_ok(out))
        return false;
    *used = i;
    return true;
}

bool cpr_normalise(const char *text, char out[CPR_LEN + 1])
{
    const unsigned char *p = (const unsigned char *)text;
    size_t len = strlen(text), used;

    return cpr_at(p, p + len, out, &used) && used == len;
}

bool cpr_scan(const char *text, size_t len, cpr_found_fn fn, void *ctx)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    char cpr[CPR_LEN + 1];

    while (p < end) {
        size_t used;
        if (!cpr_isdigit(*p)) {
            p++;
            continue;
        }
        /* Only at the start of a digit run: "123456789012" must not yield "3456789012". */
        if ((const char *)p > text && cpr_isdigit(p[-1])) {
            p++;
            continue;
        }
        if (cpr_at(p, end, cpr, &used)) {
            if (fn(ctx, cpr))
                return true;
            p += used;
            continue;
        }
        while (p < end && cpr_isdigit(*p))
            p++;
    }
    return false;
}
