/* A follower of a data-parallel group: the same trainer and the same epochs as the
 * leader (every collective in step), no run file, no output. The leader tells it whether
 * the run starts, is skipped, or resumes from the checkpoint it just opened, and after
 * every epoch whether it wrote the epoch. */
#include <stdio.h>

#include "run/run_internal.h"

static rm_run_status status_of(rm_run_end end) {
    return end == RM_RUN_END_COMPLETED   ? RM_RUN_COMPLETED
           : end == RM_RUN_END_PREEMPTED ? RM_RUN_PREEMPTED
           : end == RM_RUN_END_DIVERGED  ? RM_RUN_DIVERGED
                                         : RM_RUN_FAILED;
}

rm_run_end run_follow(const run_ctx *c, rm_run_result *result) {
    const rm_config *cfg = c->cfg;
    const rm_run_options *o = c->o;
    rm_trainer *t = NULL;
    rm_status st = rm_trainer_create(cfg, &t);
    if (st == RM_OK) st = rm_trainer_set_dp(t, o->dp);
    /* failed (this rank's failure joins the leader's: it must not train without us),
     * skip, resume */
    double v[3] = {st != RM_OK, 0, 0};
    rm_status sync = rm_dp_allreduce(o->dp, v, 3);
    if (sync != RM_OK || v[0] || v[1] || st != RM_OK) {
        if (st != RM_OK) {
            rm_run_event ev = {.kind = RM_RUN_EVENT_ERROR, .message = rm_error_message()};
            run_emit(c, &ev);
        }
        rm_trainer_destroy(t);
        rm_run_end end = v[1] && st == RM_OK ? RM_RUN_END_COMPLETED : RM_RUN_END_FAILED;
        if (result) result->end = end, result->status = status_of(end);
        return end;
    }
    if (v[2]) st = rm_trainer_load_checkpoint(t, c->path, 0);
    rm_run_end end = RM_RUN_END_COMPLETED;
    double row[64];
    while (st == RM_OK && rm_trainer_epoch(t) < cfg->epochs) {
        st = rm_trainer_run_epoch(t, row, run_batch_hook, (void *)c);
        run_abort_if_alone(c, st, rm_trainer_epoch(t) + 1);
        if (st == RM_ERR_INTERRUPTED) {
            end = RM_RUN_END_PREEMPTED;
            break;
        }
        double f = 0; /* the leader's verdict on writing this epoch */
        if (run_from_leader(o, &f, 1) != RM_OK || f) {
            if (st == RM_OK) st = rm_fail(RM_ERR_STATE, "the group's leader stopped the run");
        }
    }
    if (st != RM_OK && end != RM_RUN_END_PREEMPTED) end = st == RM_ERR_DIVERGED ? RM_RUN_END_DIVERGED : RM_RUN_END_FAILED;
    if (result) {
        result->end = end;
        result->status = status_of(end);
        result->epochs = rm_trainer_epoch(t);
    }
    rm_trainer_destroy(t);
    return end;
}
