/* Data-parallel helpers shared by the method and the trainer (not public). */
#ifndef REGMIX_TRAIN_DP_INTERNAL_H
#define REGMIX_TRAIN_DP_INTERNAL_H

#include "regmix/method.h"

/* Sum of float buf[0..n) over the group in rank order, in place (through doubles, in
 * chunks: one allreduce per chunk). */
rm_status dp_allreduce_floats(rm_dp *g, float *buf, size_t n);

/* Every rank's slice of a (B, d) float array, gathered in place: rank r contributes rows
 * rm_dp_slice(B, r, size), so afterwards every rank holds all B rows. */
rm_status dp_allgather_rows(rm_dp *g, float *buf, int B, size_t d);

/* The allreduce callback for rm_net_set_allreduce (ctx: the rm_dp). */
rm_status dp_net_allreduce(void *ctx, double *buf, int n);

#endif
