/* Child processes in tests: the Open MPI environment for mpirun, and exit statuses; the
 * removal of a test's temporary directory. */
#ifndef REGMIX_TEST_PROC_H
#define REGMIX_TEST_PROC_H

#include <sys/types.h>

/* In a child before exec of mpirun: allow root (as root only), oversubscription (more
 * ranks than cores) and no single-copy mechanism (containers). */
void rm_test_mpi_env(void);

/* Waits for pid (a CMocka assertion that it was our child); returns its exit status, or
 * 128 + the signal that killed it, as a shell would. */
int rm_test_wait_exit(pid_t pid);

/* Runs cmd through the shell; its output (what fits in size - 1 bytes, whole lines) into
 * out. Returns pclose's status (0: exit status 0). */
int rm_test_run_capture(const char *cmd, char *out, size_t size);

/* Removes the tree at path (nftw, depth first; symbolic links are removed, never
 * followed); a missing path is no error. Tests call it on their mkdtemp directories at
 * the end, after every child that writes there has exited, so that a ctest run leaves
 * nothing in /tmp. With REGMIX_TEST_KEEP set (not empty, not "0") it removes nothing and
 * prints "kept PATH (REGMIX_TEST_KEEP)" to stderr: what a failing test wrote can then be
 * inspected. */
void rm_test_remove_tree(const char *path);

/* The same, whatever REGMIX_TEST_KEEP says: for a test that clears a folder between its
 * own steps (a later check depends on it being gone). */
void rm_test_remove_tree_now(const char *path);

/* For a teardown after tests that check things while a child runs (a failed check
 * returns before the child is waited for): reaps the children that have exited; 1 when
 * one is still running (its directory must stay), else 0. */
int rm_test_children_running(void);

/* A group teardown's cleanup of a folder that child processes write into: removed
 * (rm_test_remove_tree) unless a child left by a failed check still runs, then kept and
 * named on stderr. */
void rm_test_remove_workdir(const char *path);

#endif
