/* A run's id, its output folder and its writer lock. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run/run_internal.h"

void rm_run_id(const rm_config *cfg, char *out, size_t size) {
    if (cfg->run_id[0]) {
        snprintf(out, size, "%s", cfg->run_id);
        return;
    }
    char hash[17];
    rm_config_hash(cfg, hash);
    /* model, method and reg are short known names: bounded so the id always fits */
    snprintf(out, size, "%.40s_%.16s_%.16s_seed%llu_%.8s", cfg->model, cfg->method, cfg->reg,
             (unsigned long long)cfg->seed, hash);
}

/* "<prefix>_<8 hex digits>.h5" */
static int is_auto_name(const char *name, const char *prefix, size_t plen) {
    if (strlen(name) != plen + 1 + 8 + 3 || strncmp(name, prefix, plen) || name[plen] != '_') return 0;
    for (size_t i = plen + 1; i < plen + 9; i++)
        if (!isxdigit((unsigned char)name[i]) || isupper((unsigned char)name[i])) return 0;
    return !strcmp(name + plen + 9, ".h5");
}

int run_find_renamed(const rm_config *cfg, char *run_id, size_t id_size, char *path, size_t path_size) {
    size_t n = strlen(run_id);
    if (cfg->run_id[0] || n < 10) return 0;
    char prefix[256], want[17], best[300] = "";
    snprintf(prefix, sizeof prefix, "%.*s", (int)(n - 9), run_id); /* without "_<hash8>" */
    rm_config_hash(cfg, want);
    DIR *d = opendir(cfg->outdir);
    if (!d) return 0; /* no folder yet: nothing written before */
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_auto_name(e->d_name, prefix, strlen(prefix))) continue;
        if (best[0] && strcmp(e->d_name, best) >= 0) continue; /* the first by name: deterministic */
        char candidate[1024];
        snprintf(candidate, sizeof candidate, "%s/%s", cfg->outdir, e->d_name);
        rm_run_summary sum;
        if (rm_runfile_read(candidate, &sum) != RM_OK) {
            rm_error_clear(); /* not ours to judge here */
            continue;
        }
        if (!strcmp(sum.identity_hash, want)) snprintf(best, sizeof best, "%s", e->d_name);
        rm_run_summary_free(&sum);
    }
    closedir(d);
    if (!best[0]) return 0;
    snprintf(run_id, id_size, "%.*s", (int)(strlen(best) - 3), best);
    snprintf(path, path_size, "%s/%s", cfg->outdir, best);
    return 1;
}

rm_status rm_make_dirs(const char *path) {
    char buf[512];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return rm_fail(RM_ERR_ARG, "outdir too long: %s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return rm_fail(RM_ERR_IO, "mkdir(%s): %s", buf, strerror(errno));
            *p = saved;
            if (saved == '\0') break;
        }
    }
    /* refused here, before any training, rather than by the first file written */
    struct stat sb;
    if (stat(buf, &sb) != 0) return rm_fail(RM_ERR_IO, "stat(%s): %s", buf, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return rm_fail(RM_ERR_IO, "%s exists and is not a directory", buf);
    if (access(buf, W_OK | X_OK) != 0) return rm_fail(RM_ERR_IO, "cannot write into %s: %s", buf, strerror(errno));
    return RM_OK;
}

/* The kernel drops the lock when the process dies (even SIGKILL), so a lock that can be
 * taken means no live writer, and repairing a file left open by a dead writer is safe. */
rm_status run_lock(const char *path, int *fd_out) {
    char lock_path[800];
    snprintf(lock_path, sizeof lock_path, "%s.lock", path);
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return rm_fail(RM_ERR_IO, "open(%s): %s", lock_path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return rm_fail(RM_ERR_STATE, "%s is being written by another regmix process (lock %s held)", path, lock_path);
        return rm_fail(RM_ERR_IO, "flock(%s): %s", lock_path, strerror(e));
    }
    *fd_out = fd;
    return RM_OK;
}
