/* The synthetic task of tiny_task.h. */
#include "tiny_task.h"

#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>

#include "regmix/loss.h"
#include "regmix/optim.h"

void tiny_task_init(tiny_task *t, int K, size_t d, uint64_t seed) {
    t->K = K;
    t->d = d;
    rm_rng_seed(&t->rng, seed);
    t->templ = rm_alloc((size_t)K * d * sizeof(float));
    assert_non_null(t->templ);
    for (size_t i = 0; i < (size_t)K * d; i++) t->templ[i] = rm_rng_uniform(&t->rng) < 0.5f ? -1.0f : 1.0f;
}

void tiny_task_free(tiny_task *t) {
    rm_free(t->templ);
    t->templ = NULL;
}

void tiny_task_batch(tiny_task *t, int B, float *x, int32_t *y) {
    for (int b = 0; b < B; b++) {
        y[b] = (int32_t)rm_rng_below(&t->rng, (uint32_t)t->K);
        for (size_t j = 0; j < t->d; j++) {
            float v = 0.5f + 0.12f * t->templ[(size_t)y[b] * t->d + j] + 0.25f * rm_rng_normal(&t->rng);
            x[(size_t)b * t->d + j] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
    }
}

double tiny_task_train(tiny_task *t, rm_net *net, int steps, int batch, double lr) {
    const size_t nz = (size_t)batch * (size_t)t->K;
    float *xb = rm_alloc((size_t)batch * t->d * sizeof(float));
    float *z = rm_alloc(nz * sizeof(float)), *dz = rm_alloc(nz * sizeof(float));
    int32_t *yb = rm_alloc((size_t)batch * sizeof(int32_t));
    assert_true(xb && z && dz && yb);
    rm_tape *tape;
    assert_int_equal(rm_tape_create(net, &tape), RM_OK);
    size_t np;
    rm_param *p = rm_net_params(net, &np);
    rm_sgd *opt;
    assert_int_equal(rm_sgd_create(p, np, (rm_sgd_config){.momentum = 0.9, .weight_decay = 0}, &opt), RM_OK);
    double loss = 0;
    for (int it = 0; it < steps; it++) {
        tiny_task_batch(t, batch, xb, yb);
        assert_int_equal(rm_net_forward(net, tape, RM_MODE_TRAIN, xb, batch, z), RM_OK);
        memset(dz, 0, nz * sizeof(float));
        assert_int_equal(rm_ce_ls(z, yb, batch, t->K, 1.0, &loss, dz), RM_OK);
        rm_net_zero_grad(net);
        assert_int_equal(rm_net_backward(net, tape, dz, NULL, RM_GRAD_WEIGHTS), RM_OK);
        rm_sgd_step(opt, lr);
        rm_net_params_changed(net);
    }
    rm_sgd_destroy(opt);
    rm_tape_destroy(tape);
    rm_free(xb);
    rm_free(z);
    rm_free(dz);
    rm_free(yb);
    return loss;
}
