/* Which thread takes the preemption signals (SIGTERM, SIGUSR1).
 *
 * oneDNN's JIT kernels may point the stack pointer into a heap buffer while they run
 * (valgrind reports their reads as "on thread 1's stack" at heap addresses). The kernel
 * pushes a signal frame at the interrupted thread's stack pointer, so a handler that runs
 * on a thread inside such a kernel writes into the heap: `regmix train` sent SIGTERM at a
 * random time aborted with "corrupted size vs. prev_size while consolidating" in about 1
 * run of 15 (test_resume_exact failed that way). So no thread that computes ever takes
 * them: the main thread blocks both before any other thread exists (the OpenMP, oneDNN
 * and MPI threads created later inherit the mask), and one watcher thread, which only
 * waits, has them unblocked; the kernel delivers a process-directed signal to it, and it
 * runs whatever handler the command installed (run_install_signal_handlers) or the
 * default action. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"

static void stop_set(sigset_t *s) {
    sigemptyset(s);
    sigaddset(s, SIGTERM);
    sigaddset(s, SIGUSR1);
}

static void *watcher(void *arg) {
    (void)arg;
    sigset_t s;
    stop_set(&s);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    for (;;) pause();
    return NULL;
}

int cli_route_stop_signals(void) {
    sigset_t s;
    stop_set(&s);
    int rc = pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_t t;
    if (rc == 0) rc = pthread_create(&t, NULL, watcher, NULL);
    if (rc == 0) rc = pthread_detach(t);
    if (rc != 0) {
        fprintf(stderr, "regmix: cannot start the signal thread: %s\n", strerror(rc));
        pthread_sigmask(SIG_UNBLOCK, &s, NULL);
        return -1;
    }
    return 0;
}
