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

#endif
