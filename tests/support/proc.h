/* Child processes in tests: the Open MPI environment for mpirun, and exit statuses. */
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

#endif
