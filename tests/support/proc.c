#define _XOPEN_SOURCE 700 /* nftw */
#include "proc.h"

#include <errno.h>
#include <ftw.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

void rm_test_mpi_env(void) {
    if (getuid() == 0) {
        setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
        setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    }
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 1);
}

int rm_test_wait_exit(pid_t pid) {
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int rm_test_run_capture(const char *cmd, char *out, size_t size) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = 0;
    out[0] = '\0';
    char line[4096];
    while (fgets(line, sizeof line, p)) {
        size_t len = strlen(line);
        if (n + len < size) {
            memcpy(out + n, line, len + 1);
            n += len;
        }
    }
    return pclose(p);
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb;
    (void)ftw;
    /* FTW_DEPTH: a directory comes after its entries; FTW_PHYS: a link is removed, never followed */
    int rc = (type == FTW_DP || type == FTW_D || type == FTW_DNR) ? rmdir(path) : unlink(path);
    if (rc != 0 && errno != ENOENT)
        fprintf(stderr, "rm_test_remove_tree: cannot remove %s: %s\n", path, strerror(errno));
    return 0; /* go on: remove what can be removed */
}

void rm_test_remove_tree_now(const char *path) {
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        fprintf(stderr, "rm_test_remove_tree: %s: %s\n", path, strerror(errno));
}

void rm_test_remove_tree(const char *path) {
    /* REGMIX_TEST_KEEP: what a failing test wrote stays, to be looked at. */
    const char *keep = getenv("REGMIX_TEST_KEEP");
    if (keep && *keep && strcmp(keep, "0") != 0) {
        fprintf(stderr, "kept %s (REGMIX_TEST_KEEP)\n", path);
        return;
    }
    rm_test_remove_tree_now(path);
}

int rm_test_children_running(void) {
    pid_t r;
    while ((r = waitpid(-1, NULL, WNOHANG)) > 0) {
    }
    return r == 0;
}

void rm_test_remove_workdir(const char *path) {
    if (rm_test_children_running()) /* left by a failed check: the folder stays with it */
        fprintf(stderr, "kept %s: a child process still runs\n", path);
    else
        rm_test_remove_tree(path);
}
