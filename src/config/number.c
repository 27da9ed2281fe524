/* Numbers in settings: decimal literals and fractions ("8/255"), parsed strictly so that
 * a typo is an error rather than a silently different experiment; and printed in the
 * shortest form that reads back as the same double (canonical YAML, hashing). */
#include "regmix/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Skips one decimal literal [+-]?(d+(.d*)?|.d+)([eE][+-]?d+)? starting at p (before end);
 * returns the end of it, or NULL if there is none. No hex, inf or nan: strtod would take
 * them, we do not want them. */
static const char *scan_decimal(const char *p, const char *end, int allow_sign) {
    if (allow_sign && p < end && (*p == '+' || *p == '-')) p++;
    const char *digits = p;
    while (p < end && isdigit((unsigned char)*p)) p++;
    int n_int = (int)(p - digits);
    int n_frac = 0;
    if (p < end && *p == '.') {
        p++;
        const char *f = p;
        while (p < end && isdigit((unsigned char)*p)) p++;
        n_frac = (int)(p - f);
    }
    if (n_int + n_frac == 0) return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        if (q < end && (*q == '+' || *q == '-')) q++;
        const char *e = q;
        while (q < end && isdigit((unsigned char)*q)) q++;
        if (q == e) return NULL; /* "1e" */
        p = q;
    }
    return p;
}

/* strtod on [p, end) through a NUL-terminated copy (the input is not ours to modify). */
static const char *convert(const char *p, const char *end, double *out) {
    char tmp[128];
    size_t n = (size_t)(end - p);
    if (n >= sizeof tmp) return "number too long";
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    errno = 0;
    double v = strtod(tmp, NULL);
    if (!isfinite(v)) return "out of range";
    *out = v; /* underflow to 0 or a subnormal is accepted, as in any literal */
    return NULL;
}

const char *rm_number_error(const char *text, double *out) {
    if (!text) return "no value";
    const char *p = text, *end = text + strlen(text);
    while (p < end && isspace((unsigned char)*p)) p++;
    while (end > p && isspace((unsigned char)end[-1])) end--;
    if (p == end) return "empty";
    const char *num_end = scan_decimal(p, end, 1);
    if (!num_end) return "not a number";
    double num, den = 1.0;
    const char *why = convert(p, num_end, &num);
    if (why) return why;
    if (num_end < end) {
        if (*num_end != '/') return "not a number";
        const char *d = num_end + 1;
        const char *den_end = scan_decimal(d, end, 0);
        if (!den_end) return "fraction without a denominator";
        if (den_end != end) return "not a number";
        if ((why = convert(d, den_end, &den))) return why;
        if (den == 0.0) return "division by zero";
    }
    double v = num / den;
    if (!isfinite(v)) return "out of range";
    if (out) *out = v;
    return NULL;
}

rm_status rm_parse_number(const char *text, double *out) {
    const char *why = rm_number_error(text, out);
    if (why) return rm_fail(RM_ERR_ARG, "'%.80s' is not a valid number (%s)", text ? text : "(null)", why);
    return RM_OK;
}

void rm_format_number(double v, char *buf, size_t size) {
    if (!buf || size == 0) return;
    if (!isfinite(v)) { /* never produced by parsing; printed readably for messages */
        snprintf(buf, size, "%s", isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
        return;
    }
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        double back = strtod(tmp, NULL);
        if (back == v && signbit(back) == signbit(v)) break;
    } /* %.17g always round-trips an IEEE double */
    /* YAML 1.1 readers (PyYAML) take "1e-05" for a string: a float needs a '.', so the
     * exponent form gets one ("1.0e-05"); the value is the same. */
    char *e = strchr(tmp, 'e');
    if (e && !memchr(tmp, '.', (size_t)(e - tmp)))
        snprintf(buf, size, "%.*s.0%s", (int)(e - tmp), tmp, e);
    else
        snprintf(buf, size, "%s", tmp);
}
