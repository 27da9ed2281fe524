/* Preemption: SIGTERM (what mpirun and batch systems send first) and SIGUSR1 (Slurm's
 * --signal before the time limit) set a flag; every run stops at its next batch
 * boundary, checkpoints and ends with RM_RUN_END_PREEMPTED, so a requeued job resumes
 * it. */
#include <signal.h>
#include <string.h>

#include "regmix/run.h"

static volatile sig_atomic_t stop_flag;

static void on_stop_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

void rm_run_install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

void rm_run_request_stop(void) { stop_flag = 1; }
void rm_run_clear_stop(void) { stop_flag = 0; }
int rm_run_stop_requested(void) { return stop_flag != 0; }
