/* Set-up shared by the run-file tests (tests/test_runfile_*.c): a fresh temporary
 * directory with a run-file path and a default configuration, its removal with a check
 * that every HDF5 id was closed, a status check that fails the test with the module's
 * message, and a whole-file reader for byte-for-byte comparisons. */
#ifndef REGMIX_TEST_RUNFILE_FIXTURE_H
#define REGMIX_TEST_RUNFILE_FIXTURE_H

#include <stddef.h>

#include "regmix/common.h"
#include "regmix/config.h"

typedef struct {
    char dir[256];  /* /tmp/regmix-<tag>-XXXXXX, made by rft_fixture_init */
    char path[512]; /* <dir>/<file> (not created) */
    rm_config cfg;  /* rm_config_defaults */
} rft_fixture;

/* Makes a fresh directory "/tmp/regmix-<tag>-XXXXXX" (mkdtemp) and writes its name into
 * dir. Returns 0, or -1 when mkdtemp fails (CMocka's set-up convention). */
int rft_tmpdir_make(char *dir, size_t dir_size, const char *tag);

/* Removes dir and everything in it (rm_test_remove_tree: not with REGMIX_TEST_KEEP). Before
 * that, counts the HDF5 objects still open in this process and prints the count when it
 * is not 0. Returns 0 when none was open, else -1 (so the teardown fails the test). */
int rft_tmpdir_remove(const char *dir);

/* rft_tmpdir_make(f->dir, tag), f->path = "<dir>/<file>", default f->cfg, and a cleared
 * error message. Returns 0 or -1. */
int rft_fixture_init(rft_fixture *f, const char *tag, const char *file);

/* A calloc'd fixture after rft_fixture_init, or NULL. For a CMocka set-up. */
rft_fixture *rft_fixture_new(const char *tag, const char *file);

/* CMocka teardown for a fixture from rft_fixture_new in *state: rft_tmpdir_remove, free.
 * Returns rft_tmpdir_remove's result. */
int rft_fixture_teardown(void **state);

/* Fails the running test with "<what>: <status name>: <error message>" unless st is RM_OK. */
void rft_check_ok(rm_status st, const char *what);

/* The whole file in a malloc'd buffer (one spare byte at the end) and its size in *size;
 * NULL when it cannot be opened or read, or is not a plain file of at most 1 GiB (a
 * directory opens but reports a huge size). */
char *rft_slurp(const char *path, size_t *size);

#endif
