/* The attacker: scratch for one network, the objective gradient every attack steps on,
 * and the accuracy count. */
#include "adv.h"

#include <math.h>
#include <string.h>

#include "regmix/loss.h"

void rm_attacker_destroy(rm_attacker *a) {
    if (!a) return;
    rm_tape_destroy(a->tape);
    rm_free(a->xadv);
    rm_free(a->logits);
    rm_free(a->dlogits);
    rm_free(a->grad);
    rm_free(a->cur);
    rm_free(a->zclean);
    rm_free(a);
}

rm_status rm_attacker_create(rm_net *net, int max_batch, rm_attacker **out) {
    if (!out) return rm_fail(RM_ERR_ARG, "rm_attacker_create: out is NULL");
    *out = NULL;
    if (!net) return rm_fail(RM_ERR_ARG, "rm_attacker_create: net is NULL");
    if (max_batch < 1)
        return rm_fail(RM_ERR_ARG, "rm_attacker_create: max_batch %d must be >= 1", max_batch);
    rm_attacker *a = rm_alloc(sizeof *a);
    if (!a) return RM_ERR_NOMEM;
    a->net = net;
    a->max_batch = max_batch;
    a->K = rm_net_num_classes(net);
    a->d = rm_net_input_size(net);
    const size_t nx = (size_t)max_batch * a->d, nz = (size_t)max_batch * (size_t)a->K;
    rm_status st = rm_tape_create(net, &a->tape);
    if (st != RM_OK) {
        rm_attacker_destroy(a);
        return st;
    }
    a->xadv = rm_alloc(nx * sizeof(float));
    a->grad = rm_alloc(nx * sizeof(float));
    a->cur = rm_alloc(nx * sizeof(float));
    a->logits = rm_alloc(nz * sizeof(float));
    a->dlogits = rm_alloc(nz * sizeof(float));
    a->zclean = rm_alloc(nz * sizeof(float));
    if (!a->xadv || !a->grad || !a->cur || !a->logits || !a->dlogits || !a->zclean) {
        rm_attacker_destroy(a);
        return RM_ERR_NOMEM;
    }
    *out = a;
    return RM_OK;
}

rm_status adv_check_batch(const char *fn, const rm_attacker *a, const float *x, int B) {
    if (!a || !x) return rm_fail(RM_ERR_ARG, "%s: attacker or images pointer is NULL", fn);
    if (B < 1 || B > a->max_batch)
        return rm_fail(RM_ERR_ARG, "%s: batch %d outside [1, %d] (the attacker's max_batch)",
                       fn, B, a->max_batch);
    return RM_OK;
}

rm_status adv_check_budget(const char *fn, float eps, float step, int steps) {
    if (!isfinite(eps) || eps < 0.0f)
        return rm_fail(RM_ERR_ARG, "%s: eps %g must be finite and >= 0", fn, (double)eps);
    if (!isfinite(step) || step < 0.0f)
        return rm_fail(RM_ERR_ARG, "%s: step %g must be finite and >= 0", fn, (double)step);
    if (steps < 0) return rm_fail(RM_ERR_ARG, "%s: steps %d must be >= 0", fn, steps);
    return RM_OK;
}

rm_status adv_check_labels(const char *fn, const int32_t *y, int B, int K) {
    if (!y) return rm_fail(RM_ERR_ARG, "%s: labels pointer is NULL", fn);
    for (int b = 0; b < B; b++)
        if (y[b] < 0 || y[b] >= K)
            return rm_fail(RM_ERR_ARG, "%s: label y[%d] = %d outside [0, %d)", fn, b, (int)y[b],
                           K);
    return RM_OK;
}

rm_status adv_forward(rm_attacker *a, rm_mode mode, const float *x, const float *delta,
                      int B) {
    const float *in = x;
    if (delta) {
        const size_t n = (size_t)B * a->d;
        for (size_t i = 0; i < n; i++) a->xadv[i] = x[i] + delta[i];
        in = a->xadv;
    }
    return rm_net_forward(a->net, a->tape, mode, in, B, a->logits);
}

/* Objective on the logits z = f(x + delta) (B, K), then back through the net to the input:
 *   CE: mean_b -log p_y          dz = (p - onehot(y)) / B
 *   CW: mean_b max_{j!=y} z_j - z_y
 *   KL: mean_b KL(softmax(zc) || softmax(z)), dz = (q - p_c) / B  (zc a constant)
 * Only the input gradient is formed (RM_GRAD_INPUT): no weight-gradient primitive runs. */
rm_status rm_attack_gradient(rm_attacker *a, rm_mode mode, rm_attack_loss loss,
                             const float *x, const float *delta, const int32_t *y,
                             const float *zc, int B, double *value, float *grad) {
    RM_TRY(adv_check_batch("rm_attack_gradient", a, x, B));
    if (!grad) return rm_fail(RM_ERR_ARG, "rm_attack_gradient: grad pointer is NULL");
    if (loss == RM_ATTACK_LOSS_KL) {
        if (!zc) return rm_fail(RM_ERR_ARG, "rm_attack_gradient: KL objective needs clean logits");
    } else if (loss == RM_ATTACK_LOSS_CE || loss == RM_ATTACK_LOSS_CW) {
        RM_TRY(adv_check_labels("rm_attack_gradient", y, B, a->K));
    } else {
        return rm_fail(RM_ERR_ARG, "rm_attack_gradient: unknown attack loss %d", (int)loss);
    }
    RM_TRY(adv_forward(a, mode, x, delta, B));
    const size_t nz = (size_t)B * (size_t)a->K;
    memset(a->dlogits, 0, nz * sizeof(float)); /* the loss terms accumulate */
    double v = 0.0;
    if (loss == RM_ATTACK_LOSS_CE)
        RM_TRY(rm_ce_ls(a->logits, y, B, a->K, 1.0, &v, a->dlogits));
    else if (loss == RM_ATTACK_LOSS_CW)
        RM_TRY(rm_cw_margin(a->logits, y, B, a->K, &v, a->dlogits));
    else
        RM_TRY(rm_kl(zc, a->logits, B, a->K, 1.0, &v, NULL, a->dlogits));
    RM_TRY(rm_loss_check_finite("attack objective", v));
    RM_TRY(rm_net_backward(a->net, a->tape, a->dlogits, grad, RM_GRAD_INPUT));
    if (value) *value = v;
    return RM_OK;
}

int adv_argmax(const float *z, int K) {
    int best = 0;
    for (int k = 1; k < K; k++)
        if (z[k] > z[best]) best = k;
    return best;
}

/* Arg max of each row of z (B, K), lowest index at ties, compared with y. */
static int count_argmax_hits(const float *z, const int32_t *y, int B, int K,
                             unsigned char *hit) {
    int correct = 0;
    for (int b = 0; b < B; b++) {
        const int ok = adv_argmax(z + (size_t)b * K, K) == y[b];
        if (hit) hit[b] = (unsigned char)ok;
        correct += ok;
    }
    return correct;
}

rm_status adv_backward_input(rm_attacker *a, float *grad) {
    return rm_net_backward(a->net, a->tape, a->dlogits, grad, RM_GRAD_INPUT);
}

rm_status adv_classify(rm_attacker *a, rm_mode mode, const float *x, const float *delta,
                       const int32_t *y, int B, unsigned char *hit, int *correct) {
    RM_TRY(adv_forward(a, mode, x, delta, B));
    const int c = count_argmax_hits(a->logits, y, B, a->K, hit);
    if (correct) *correct = c;
    return RM_OK;
}

rm_status rm_count_correct(rm_attacker *a, rm_mode mode, const float *x, const float *delta,
                           const int32_t *y, int B, int *correct) {
    RM_TRY(adv_check_batch("rm_count_correct", a, x, B));
    RM_TRY(adv_check_labels("rm_count_correct", y, B, a->K));
    if (!correct) return rm_fail(RM_ERR_ARG, "rm_count_correct: correct pointer is NULL");
    return adv_classify(a, mode, x, delta, y, B, NULL, correct);
}
