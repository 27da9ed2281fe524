/* A full disk, injected: once armed, write() and pwrite() to files whose path contains a
 * pattern fail with ENOSPC after a byte budget is spent. Linking a test that calls
 * fault_io_fail_writes puts these definitions in the executable, where they take
 * precedence over libc's for the whole process (HDF5 included); other tests do not link
 * them. Without root and without a tmpfs. */
#ifndef REGMIX_TEST_FAULT_IO_H
#define REGMIX_TEST_FAULT_IO_H

/* From now on, writes to files whose /proc/self/fd path contains `pattern` succeed for
 * `budget` more bytes in all (a write that would cross the budget writes nothing), then
 * fail with ENOSPC until fault_io_off. */
void fault_io_fail_writes(const char *pattern, long long budget);

/* Disarms (the disk has room again). */
void fault_io_off(void);

/* Writes refused since the last fault_io_fail_writes. */
long long fault_io_refused(void);

#endif
