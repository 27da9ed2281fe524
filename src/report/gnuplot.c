/* Finding and running gnuplot (a child process per script; its exit status is checked). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report/report_internal.h"

int rm_report_find_gnuplot(char *buf, size_t size) {
    const char *env = getenv("REGMIX_GNUPLOT");
    if (env) {
        if (!env[0] || access(env, X_OK) != 0) return 0;
        snprintf(buf, size, "%s", env);
        return 1;
    }
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t len = strcspn(path, ":");
        if (len > 0 && len + 9 < size) {
            snprintf(buf, size, "%.*s/gnuplot", (int)len, path);
            if (access(buf, X_OK) == 0) return 1;
        }
        path += len;
        if (*path == ':') path++;
    }
    return 0;
}

/* Exit status text of a waitpid status. */
static void describe(int status, char *buf, size_t size) {
    if (WIFEXITED(status)) snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) snprintf(buf, size, "was killed by signal %d", WTERMSIG(status));
    else snprintf(buf, size, "stopped (status %d)", status);
}

static int wait_child(pid_t pid, int *status) {
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR) return -1;
    return 0;
}

/* In the child: stdin from /dev/null so that gnuplot never waits for input. */
static void child_stdin(void) {
    int fd = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
        dup2(fd, 0);
        close(fd);
    }
}

rm_status rp_gnuplot_terminals(const char *gnuplot, char png[16], int *svg) {
    png[0] = '\0';
    *svg = 0;
    int fds[2];
    fflush(NULL); /* the child must not repeat buffered output */
    if (pipe(fds) != 0) return rm_fail(RM_ERR_IO, "pipe() for '%s -e \"set terminal\"': %s", gnuplot, strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return rm_fail(RM_ERR_IO, "fork() for '%s -e \"set terminal\"': %s", gnuplot, strerror(errno));
    }
    if (pid == 0) {
        child_stdin();
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execl(gnuplot, "gnuplot", "-e", "set terminal", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    /* the list: one terminal a line, its name first ("   pngcairo  png terminal based on cairo") */
    FILE *in = fdopen(fds[0], "r");
    char line[512];
    int have_png = 0, have_cairo = 0;
    while (in && fgets(line, sizeof line, in)) {
        char name[64];
        if (sscanf(line, " %63s", name) != 1) continue;
        have_cairo |= strcmp(name, "pngcairo") == 0;
        have_png |= strcmp(name, "png") == 0;
        *svg |= strcmp(name, "svg") == 0;
    }
    if (in) fclose(in);
    else close(fds[0]);
    int status;
    if (wait_child(pid, &status) != 0) return rm_fail(RM_ERR_IO, "waitpid(%s): %s", gnuplot, strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char why[64];
        describe(status, why, sizeof why);
        return rm_fail(RM_ERR_IO, "'%s -e \"set terminal\"' %s", gnuplot, why);
    }
    snprintf(png, 16, "%s", have_cairo ? "pngcairo" : have_png ? "png" : "");
    return RM_OK;
}

rm_status rp_gnuplot_run(const char *gnuplot, const char *dir, const char *script) {
    fflush(NULL); /* the child must not repeat buffered output */
    pid_t pid = fork();
    if (pid < 0) return rm_fail(RM_ERR_IO, "fork() for gnuplot %s/%s: %s", dir, script, strerror(errno));
    if (pid == 0) {
        child_stdin();
        if (chdir(dir) != 0) _exit(126);
        execl(gnuplot, "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    int status;
    if (wait_child(pid, &status) != 0) return rm_fail(RM_ERR_IO, "waitpid(gnuplot %s): %s", script, strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return RM_OK;
    char why[64];
    describe(status, why, sizeof why);
    return rm_fail(RM_ERR_IO, "'%s %s' in %s %s%s", gnuplot, script, dir, why,
                   WIFEXITED(status) && WEXITSTATUS(status) == 127 ? " (could not be started)" : "");
}
