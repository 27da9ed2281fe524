/* How many CPUs this process may run on: its affinity mask, which mpirun sets (Open MPI
 * binds each rank to one core by default when it starts two ranks or fewer). */
#define _GNU_SOURCE
#include <sched.h>

#include "regmix/common.h"

int rm_cpus_allowed(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : -1;
}
