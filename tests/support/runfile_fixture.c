/* Set-up shared by the run-file tests; see runfile_fixture.h. */
#include "runfile_fixture.h"

#include "proc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rft_tmpdir_make(char *dir, size_t dir_size, const char *tag) {
    int n = snprintf(dir, dir_size, "/tmp/regmix-%s-XXXXXX", tag);
    if (n < 0 || (size_t)n >= dir_size) return -1;
    return mkdtemp(dir) ? 0 : -1;
}

int rft_tmpdir_remove(const char *dir) {
    /* Every HDF5 id the module opened must be closed again (files, datasets, types...). */
    ssize_t open_ids = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open_ids != 0) fprintf(stderr, "teardown: %zd HDF5 objects left open\n", open_ids);
    rm_test_remove_tree(dir);
    return open_ids == 0 ? 0 : -1;
}

int rft_fixture_init(rft_fixture *f, const char *tag, const char *file) {
    if (rft_tmpdir_make(f->dir, sizeof f->dir, tag) != 0) return -1;
    snprintf(f->path, sizeof f->path, "%s/%s", f->dir, file);
    rm_config_defaults(&f->cfg);
    rm_error_clear();
    return 0;
}

rft_fixture *rft_fixture_new(const char *tag, const char *file) {
    rft_fixture *f = calloc(1, sizeof *f);
    if (f && rft_fixture_init(f, tag, file) != 0) {
        free(f);
        f = NULL;
    }
    return f;
}

int rft_fixture_teardown(void **state) {
    rft_fixture *f = *state;
    int rc = rft_tmpdir_remove(f->dir);
    free(f);
    return rc;
}

void rft_check_ok(rm_status st, const char *what) {
    if (st != RM_OK) fail_msg("%s: %s: %s", what, rm_status_name(st), rm_error_message());
}

char *rft_slurp(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    long n = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    if (n < 0 || n > (1L << 30) || fseek(fp, 0, SEEK_SET) != 0) { /* a directory reads as "size LONG_MAX" */
        fclose(fp);
        return NULL;
    }
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    *size = (size_t)n;
    return buf;
}
