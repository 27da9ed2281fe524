/* Hostile YAML for both readers (run/config files: rm_config_load_yaml; sweep files:
 * rm_sweep_load): a "billion laughs" document (aliases of aliases: 10^9 strings once
 * expanded), aliases hidden in legitimate structure, a megabyte of nesting (libyaml's
 * time grows with the square of the depth: about an hour for this one), a mapping of
 * 100000 keys, 70000 exclude entries, a 150000-value axis and a file over the size
 * limit. Each load runs in a child process with a CPU-time limit of 60 s; the test
 * asserts that the child finished by itself (not killed at the limit), that the load
 * was refused with a message naming the file and line and the reason, and that the
 * child's peak memory stayed under 1 GiB. The refusals take milliseconds (the limit
 * is a guard against a hang, not a timing verdict). */
#define _DEFAULT_SOURCE /* wait4 (the child's peak memory) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "regmix/config.h"
#include "regmix/sweep.h"

static char tmpdir[64];
static char path[128];

static int make_dir(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/regmix-hostile-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(path, sizeof path, "%s/hostile.yaml", tmpdir);
    return 0;
}

static int remove_dir(void **state) {
    (void)state;
    unlink(path);
    return rmdir(tmpdir);
}

/* A growable text buffer. */
typedef struct {
    char *s;
    size_t len, cap;
} text_t;

static void add(text_t *t, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = 2 * t->cap + (size_t)n + 64;
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
    }
}

static void write_text(const text_t *t) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(t->s, 1, t->len, f), t->len);
    assert_int_equal(fclose(f), 0);
}

/* The classic document: lol0 a string, lolK a list of ten aliases of lol(K-1). */
static void laughs(text_t *t, const char *indent) {
    add(t, "%slol0: &l0 \"lol\"\n", indent);
    for (int k = 1; k <= 9; k++) {
        add(t, "%slol%d: &l%d [", indent, k, k);
        for (int j = 0; j < 10; j++) add(t, "%s*l%d", j ? ", " : "", k - 1);
        add(t, "]\n");
    }
}

enum { RUN_FILE, SWEEP_FILE };

/* Loads `path` with the chosen reader in a child under a CPU-time limit; expects a
 * refusal whose message holds "hostile.yaml:<line>: " (line > 0) and `frag`. */
static void expect_refused(int reader, int line, const char *frag, int src_line) {
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        struct rlimit cpu = {60, 60};
        setrlimit(RLIMIT_CPU, &cpu);
        rm_status st;
        if (reader == RUN_FILE) {
            rm_config c;
            rm_config_defaults(&c);
            st = rm_config_load_yaml(&c, path);
        } else {
            rm_sweep s;
            st = rm_sweep_load(path, &s);
            rm_sweep_free(&s);
        }
        const char *msg = st == RM_OK ? "(loaded)" : rm_error_message();
        ssize_t w = write(fd[1], msg, strlen(msg));
        _exit(w < 0 ? 3 : st == RM_OK ? 1 : 0);
    }
    close(fd[1]);
    char msg[2048] = "";
    size_t n = 0;
    ssize_t r;
    while (n < sizeof msg - 1 && (r = read(fd[0], msg + n, sizeof msg - 1 - n)) > 0) n += (size_t)r;
    msg[n] = '\0';
    close(fd[0]);
    int status;
    struct rusage ru;
    assert_int_equal(wait4(pid, &status, 0, &ru), pid);
    if (WIFSIGNALED(status))
        fail_msg("test line %d: the load was killed by signal %d (SIGXCPU %d: it ran past 60 s of CPU)", src_line,
                 WTERMSIG(status), SIGXCPU);
    if (WEXITSTATUS(status) != 0) fail_msg("test line %d: not refused (child status %d): %s", src_line,
                                           WEXITSTATUS(status), msg);
    char where[64];
    snprintf(where, sizeof where, "hostile.yaml:%d: ", line);
    if (line > 0 && !strstr(msg, where)) fail_msg("test line %d: \"%s\" lacks \"%s\"", src_line, msg, where);
    if (!strstr(msg, frag)) fail_msg("test line %d: \"%s\" lacks \"%s\"", src_line, msg, frag);
    if (ru.ru_maxrss > 1024L * 1024L) /* KiB */
        fail_msg("test line %d: the load used %ld KiB of memory", src_line, ru.ru_maxrss);
}
#define REFUSED(reader, line, frag) expect_refused((reader), (line), (frag), __LINE__)

static void test_billion_laughs(void **state) {
    (void)state;
    text_t t = {0};
    /* as an attacker writes it: a run file stops at its first key, a sweep file at its
     * first alias */
    laughs(&t, "");
    write_text(&t);
    REFUSED(RUN_FILE, 1, "unknown setting 'lol0'");
    REFUSED(SWEEP_FILE, 2, "alias '*l0': sweep files take no aliases");

    /* hidden in a sweep's own structure: under base, and as an axis's values */
    t.len = 0;
    add(&t, "name: laughs\nbase:\n");
    laughs(&t, "  ");
    write_text(&t);
    REFUSED(SWEEP_FILE, 4, "alias '*l0'");
    t.len = 0;
    add(&t, "name: laughs\ndescription: &l0 lol\ngrid:\n  eval_attacks: [");
    for (int j = 0; j < 10; j++) add(&t, "%s[*l0, *l0]", j ? ", " : "");
    add(&t, "]\n");
    write_text(&t);
    REFUSED(SWEEP_FILE, 4, "alias '*l0'");

    /* a run file's aliases: where a value belongs and inside eval_attacks */
    t.len = 0;
    add(&t, "data_dir: &l0 lol\nseed: *l0\n");
    write_text(&t);
    REFUSED(RUN_FILE, 2, "seed: expected a value, got an alias");
    t.len = 0;
    add(&t, "data_dir: &l0 clean\neval_attacks:\n  - fgsm\n  - *l0\n");
    write_text(&t);
    REFUSED(RUN_FILE, 4, "eval_attacks: expected a list of attack names, got an alias inside it");
    free(t.s);
}

static void test_deep_and_wide(void **state) {
    (void)state;
    text_t t = {0};
    /* a megabyte of nesting */
    add(&t, "eval_attacks: ");
    for (int k = 0; k < 450000; k++) add(&t, "[");
    for (int k = 0; k < 450000; k++) add(&t, "]");
    add(&t, "\n");
    write_text(&t);
    REFUSED(RUN_FILE, 1, "eval_attacks: expected a list of attack names, got a sequence inside it");
    t.len = 0;
    add(&t, "name: deep\ngrid:\n  seed: ");
    for (int k = 0; k < 450000; k++) add(&t, "[");
    for (int k = 0; k < 450000; k++) add(&t, "]");
    add(&t, "\n");
    write_text(&t);
    REFUSED(SWEEP_FILE, 3, "lists or mappings nested more than 8 deep; not a sweep file");

    /* wide: a mapping of 100000 keys, 70000 exclude entries, 150000 values on an axis */
    t.len = 0;
    add(&t, "name: wide\n");
    for (int k = 0; k < 100000; k++) add(&t, "k%d: 1\n", k);
    write_text(&t);
    REFUSED(SWEEP_FILE, 1, "top level: 100001 keys in one mapping, at most 256");
    t.len = 0;
    add(&t, "name: wide\ngrid:\n  seed: [0, 1]\nexclude:\n");
    for (int k = 0; k < 70000; k++) add(&t, "  - {seed: 0}\n");
    write_text(&t);
    REFUSED(SWEEP_FILE, 5, "exclude: 70000 entries, at most 256");
    t.len = 0;
    add(&t, "name: wide\ngrid:\n  seed: [0");
    for (int k = 1; k < 150000; k++) add(&t, ",%d", k);
    add(&t, "]\n");
    write_text(&t);
    REFUSED(SWEEP_FILE, 3, "axis 'seed' has 150000 values, more runs than max_runs (10000) allows");

    /* over the size limit: refused before parsing */
    t.len = 0;
    for (int k = 0; k < 1100; k++) add(&t, "# %01020d\n", k);
    write_text(&t);
    REFUSED(RUN_FILE, 0, "hostile.yaml: larger than 1048576 bytes; not a run file");
    REFUSED(SWEEP_FILE, 0, "hostile.yaml: larger than 1048576 bytes; not a sweep file");
    free(t.s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_billion_laughs),
        cmocka_unit_test(test_deep_and_wide),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
