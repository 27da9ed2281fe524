/* Run ids of a sweep: one axis value made filename-safe (the whole-id rule is in
 * include/regmix/sweep.h). Kept apart so the report and tests can reproduce an id. */
#include <ctype.h>
#include <string.h>

#include "regmix/sweep.h"

static int id_char(int c) { return isalnum(c) || c == '.' || c == '+' || c == '-'; }

int rm_sweep_id_part(const char *value, char *buf, size_t size) {
    if (!value || !buf || size == 0) return -1;
    const unsigned char *p = (const unsigned char *)value;
    size_t len = strlen(value);
    while (len && isspace(*p)) p++, len--;
    while (len && isspace(p[len - 1])) len--;
    size_t n = 0;
    for (size_t k = 0; k < len; k++) {
        /* A fraction keeps its meaning ("8over255"); '-' would read as a range. */
        int fraction = p[k] == '/' && k > 0 && k + 1 < len && isdigit(p[k - 1]) && isdigit(p[k + 1]);
        const char *piece = fraction ? "over" : NULL;
        char one[2] = {id_char(p[k]) ? (char)p[k] : '-', '\0'};
        if (!piece) piece = one;
        size_t m = strlen(piece);
        if (n + m >= size) {
            buf[0] = '\0';
            return -1;
        }
        memcpy(buf + n, piece, m);
        n += m;
    }
    buf[n] = '\0';
    return (int)n;
}
