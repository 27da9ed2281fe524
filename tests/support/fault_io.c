/* write()/pwrite() interposed for fault_io.h: a full disk on matching files. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include "fault_io.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static char pattern[256];
static int armed;
static long long budget, refused;

void fault_io_fail_writes(const char *p, long long bytes) {
    snprintf(pattern, sizeof pattern, "%s", p);
    budget = bytes;
    refused = 0;
    armed = 1;
}

void fault_io_off(void) { armed = 0; }

long long fault_io_refused(void) { return refused; }

/* 1: this write must fail (the fd is a matching file and the budget is spent). */
static int refuse(int fd, size_t n) {
    if (!armed || fd < 0) return 0;
    char link[64], target[1024];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len <= 0) return 0;
    target[len] = '\0';
    if (!strstr(target, pattern)) return 0;
    if ((long long)n <= budget) {
        budget -= (long long)n;
        return 0;
    }
    budget = 0;
    refused++;
    errno = ENOSPC;
    return 1;
}

ssize_t write(int fd, const void *buf, size_t n) {
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (refuse(fd, n)) return -1;
    return real(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    if (refuse(fd, n)) return -1;
    return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) { return pwrite(fd, buf, n, off); }
