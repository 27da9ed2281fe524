/* The settings are documented in three places that must say the same: the table in
 * src/config/settings.c (the truth), `regmix train --help` (printed from it) and the
 * settings table of README.md (written by hand). This test reads the README's table and
 * the help output of the real binary and compares every row (name, default, allowed
 * values, meaning) with the code's table, in order; a mismatch prints the row as it
 * should read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "regmix/config.h"

#define README_PATH REGMIX_TEST_DATA_DIR "/../../README.md"
#define TABLE_HEAD "| setting | default | allowed values | meaning |"

/* The whole of a stream, NUL-terminated. */
static char *slurp(FILE *f) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    return buf;
}

/* The default as both documents print it: "" for the empty text. */
static const char *shown_default(int i) {
    const char *d = rm_config_setting_default(i);
    return d[0] ? d : "\"\"";
}

/* Text with every '|' written "\|", as a Markdown table cell needs it. */
static void escape_pipes(const char *in, char *out, size_t size) {
    size_t n = 0;
    for (; *in && n + 3 < size; in++) {
        if (*in == '|') out[n++] = '\\';
        out[n++] = *in;
    }
    out[n] = '\0';
}

/* The README row setting i should have. */
static void expected_row(int i, char *out, size_t size) {
    char range[256], d[300], r[300], h[600];
    rm_config_setting_range(i, range, sizeof range);
    escape_pipes(shown_default(i), d, sizeof d);
    escape_pipes(range, r, sizeof r);
    escape_pipes(rm_config_setting_help(i), h, sizeof h);
    snprintf(out, size, "| `%s` | `%s` | %s | %s |", rm_config_setting_name(i), d, r, h);
}

/* Lines of the README's settings table, from the header to the first line that does
 * not start with '|'; returns how many rows follow the separator. */
static int readme_rows(char *readme, char **rows, int max) {
    char *p = strstr(readme, "\n" TABLE_HEAD "\n");
    if (!p) fail_msg("README.md has no settings table (a line '%s')", TABLE_HEAD);
    p = strchr(p + 1, '\n') + 1;
    char *sep_end = strchr(p, '\n');
    assert_non_null(sep_end);
    *sep_end = '\0';
    if (strspn(p, "|-: ") != strlen(p)) fail_msg("README.md: the line after the settings header is not a separator: %s", p);
    p = sep_end + 1;
    int n = 0;
    while (*p == '|') {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        if (n == max) {
            fail_msg("README.md: more than %d rows in the settings table", max);
            return n;
        }
        rows[n++] = p;
        if (!nl) break;
        p = nl + 1;
    }
    return n;
}

static void test_readme_table(void **state) {
    (void)state;
    FILE *f = fopen(README_PATH, "r");
    if (!f) fail_msg("cannot open %s", README_PATH);
    char *readme = slurp(f);
    fclose(f);
    char *rows[256];
    int n = readme_rows(readme, rows, 256), count = rm_config_setting_count();
    int bad = 0;
    for (int i = 0; i < count || i < n; i++) {
        char want[1400];
        if (i >= count) {
            print_error("README.md settings row %d names no setting of the table: %s\n", i + 1, rows[i]);
            bad++;
            continue;
        }
        expected_row(i, want, sizeof want);
        if (i >= n) {
            print_error("README.md settings table lacks row %d; add:\n%s\n", i + 1, want);
            bad++;
        } else if (strcmp(rows[i], want) != 0) {
            print_error("README.md settings row %d is\n%s\nbut the table in src/config/settings.c says\n%s\n", i + 1,
                        rows[i], want);
            bad++;
        }
    }
    free(readme);
    if (bad) fail_msg("%d row(s) of README.md's settings table differ from the code (%d settings, %d rows)", bad,
                      count, n);
}

static void test_help_output(void **state) {
    (void)state;
    FILE *p = popen(REGMIX_BINARY " train --help", "r");
    assert_non_null(p);
    char *out = slurp(p);
    int status = pclose(p);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* every setting: "    NAME = DEFAULT  (RANGE)" then "        HELP", in table order */
    const char *at = out;
    for (int i = 0; i < rm_config_setting_count(); i++) {
        char range[256], want[1400];
        rm_config_setting_range(i, range, sizeof range);
        snprintf(want, sizeof want, "\n    %s = %s  (%s)\n        %s\n", rm_config_setting_name(i), shown_default(i),
                 range, rm_config_setting_help(i));
        const char *hit = strstr(at, want);
        if (!hit) {
            free(out);
            fail_msg("regmix train --help lacks (after the previous setting):%s", want);
        }
        at = hit + strlen(want) - 1;
    }
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readme_table),
        cmocka_unit_test(test_help_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
