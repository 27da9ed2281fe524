/* rm_cpus_allowed: the CPUs of this process's affinity mask, which mpirun narrows when it
 * binds a rank. Checked against /proc/self/status (Cpus_allowed_list, counted by hand)
 * and after narrowing the mask to one CPU, as Open MPI's default binding does. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regmix/common.h"

/* Counts the CPUs of a list such as "0-3,8,10-11". */
static int count_list(const char *s) {
    int n = 0;
    while (*s && *s != '\n') {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (*end == '-') b = strtol(end + 1, &end, 10);
        n += (int)(b - a + 1);
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

static int proc_status_cpus(void) {
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[4096];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Cpus_allowed_list:", 18) == 0) n = count_list(line + 18 + strspn(line + 18, " \t"));
    fclose(f);
    return n;
}

static void test_matches_proc_status(void **state) {
    (void)state;
    int n = proc_status_cpus();
    assert_true(n >= 1);
    assert_int_equal(rm_cpus_allowed(), n);
}

static void test_follows_binding(void **state) {
    (void)state;
    cpu_set_t old, one;
    assert_int_equal(sched_getaffinity(0, sizeof old, &old), 0);
    int first = -1;
    for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
        if (CPU_ISSET(c, &old)) first = c;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    assert_int_equal(rm_cpus_allowed(), 1);
    assert_int_equal(proc_status_cpus(), 1);
    assert_int_equal(sched_setaffinity(0, sizeof old, &old), 0);
    assert_int_equal(rm_cpus_allowed(), CPU_COUNT(&old));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_proc_status),
        cmocka_unit_test(test_follows_binding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
