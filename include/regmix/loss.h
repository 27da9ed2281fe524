/* regmix loss: the loss terms of RegMix and its baselines, on logits.
 *
 * Every term reads logits z as float arrays of shape (B, K), row-major (sample b's K
 * logits at z + b*K), and returns its value together with its gradient with respect to
 * every logit array it reads. Notation and formulas follow sweeps/METHOD.md:
 *   p = softmax(z),  KL(p || q) = sum_k p_k (log p_k - log q_k),
 *   every value is a mean over the batch ("batchmean"; MSE: a mean over B*K),
 *   every weight (s, lambda, w, alpha, beta, gamma) is already inside the value and the
 *   gradients.
 * Internally everything is computed in double, with log-softmax by max subtraction, so
 * that large logits (|z| ~ 1e3) neither overflow nor lose the small probabilities.
 *
 * Conventions shared by every function below:
 * - GRADIENTS ACCUMULATE: a gradient buffer dz (B*K floats) is ADDED INTO (dz += dL/dz),
 *   never overwritten, so several terms of one loss sum into one buffer per forward pass.
 *   Zero the buffer once per step before the first term.
 * - A NULL gradient pointer means "not needed" and costs nothing. A NULL `value` pointer
 *   is also allowed (an attack that only needs the gradient).
 * - Input arrays must not alias output buffers; two gradient buffers may be the same
 *   array (both contributions are added).
 * - Return RM_OK, or RM_ERR_ARG for a bad argument (B < 1, K < 2, a label outside
 *   [0, K), a NULL input or config, a non-finite weight, s outside [0, 1], an unknown
 *   AGR direction); a failed call adds nothing to any buffer. They do not check for
 *   NaN/Inf in the logits: a non-finite input gives a non-finite value, which the caller
 *   turns into a stopped run with rm_loss_check_finite().
 *
 * Method compositions (sweeps/METHOD.md):
 *   PGI step:  L = CE_ls(z_f, y) + R,  R one of rm_mse_logits / rm_amr / rm_agr / rm_regmix.
 *   TRADES:    L = CE(z_c, y) + beta * KL(p_c || p_adv)
 *                = rm_ce_ls(z_c, y, .., 1.0, ..) + rm_kl(z_c, z_adv, .., beta, dz_c, dz_adv);
 *              its attack maximises KL(p_c || p_adv) over the adversarial input, so it
 *              needs only d/dz_adv:  rm_kl(z_c, z_adv, B, K, 1.0, &v, NULL, dz_adv).
 *   CW-inf:    PGD-20 ascending rm_cw_margin.
 */
#ifndef REGMIX_LOSS_H
#define REGMIX_LOSS_H

#include "regmix/common.h"

/* log(sum_k exp(z_k)) of one row of K logits, computed in double with the row maximum
 * subtracted first (never overflows). log p_k = z_k - rm_logsumexp(z, K). */
double rm_logsumexp(const float *z, int K);

/* Cross-entropy against the smoothed target t_y = s, t_k = (1-s)/(K-1) for k != y:
 *   value = (1/B) sum_b  -sum_k t_k log p_k,     dz += (p - t) / B.
 * s = 1 is plain cross-entropy; the reference PGI setting is s = 0.6. s in [0, 1].
 * z: (B, K) logits; y: (B) labels in [0, K). */
rm_status rm_ce_ls(const float *z, const int32_t *y, int B, int K, double s, double *value,
                   float *dz);

/* MSE on logits (FGSM-PGI's regulariser):
 *   value = lambda * (1/(B K)) sum (z_f - z_i)^2,
 *   dzf  += 2 lambda (z_f - z_i) / (B K),   dzi += -2 lambda (z_f - z_i) / (B K). */
rm_status rm_mse_logits(const float *zf, const float *zi, int B, int K, double lambda,
                        double *value, float *dzf, float *dzi);

/* Weighted KL divergence, batchmean, with p = softmax(a), q = softmax(b):
 *   value = w * (1/B) sum_b KL(p_b || q_b),
 *   da_j += w/B * p_j (log p_j - log q_j - KL(p||q)),   db += w/B * (q - p).
 * a and b may be the same array (then the value and both gradients are zero). */
rm_status rm_kl(const float *a, const float *b, int B, int K, double w, double *value,
                float *da, float *db);

/* AMR (RegMix, weighted adversarial mutual regularisation) on the final and initial
 * adversarial logits:  alpha * KL(p_f || p_i) + beta * KL(p_i || p_f).
 * Both sides receive gradients (mutual learning) unless stopped: stop_f = 1 treats z_f as
 * a constant target (PyTorch .detach()), so nothing is added to dzf; likewise stop_i. */
typedef struct {
    double alpha, beta;
    int stop_f, stop_i;
} rm_amr_config;

rm_status rm_amr(const float *zf, const float *zi, int B, int K, const rm_amr_config *cfg,
                 double *value, float *dzf, float *dzi);

/* AGR (RegMix, adversarial generalisation regularisation) between the clean logits
 * z_c = f(x) and the final adversarial logits z_f. Its published form is not available
 * (sweeps/METHOD.md), so the direction is a setting:
 *   RM_AGR_C_F  "c||f":  gamma * KL(p_c || p_f)   (default)
 *   RM_AGR_F_C  "f||c":  gamma * KL(p_f || p_c)
 *   RM_AGR_BOTH "both":  gamma * (KL(p_c || p_f) + KL(p_f || p_c))
 * detach_clean = 1 treats z_c as a constant target: nothing is added to dzc. */
typedef enum { RM_AGR_C_F = 0, RM_AGR_F_C, RM_AGR_BOTH } rm_agr_direction;

typedef struct {
    double gamma;
    rm_agr_direction dir;
    int detach_clean;
} rm_agr_config;

rm_status rm_agr(const float *zc, const float *zf, int B, int K, const rm_agr_config *cfg,
                 double *value, float *dzc, float *dzf);

/* "c||f", "f||c", "both" <-> rm_agr_direction. Parsing anything else is RM_ERR_ARG with a
 * message naming the value and the accepted names. */
rm_status rm_agr_direction_parse(const char *name, rm_agr_direction *out);
const char *rm_agr_direction_name(rm_agr_direction dir);

/* RegMix regulariser = AMR(z_f, z_i) + AGR(z_c, z_f): the sum of the two values, and
 * each gradient buffer receives the sum of both terms' contributions. */
rm_status rm_regmix(const float *zf, const float *zi, const float *zc, int B, int K,
                    const rm_amr_config *amr, const rm_agr_config *agr, double *value,
                    float *dzf, float *dzi, float *dzc);

/* CW margin for the CW-inf attack (to be maximised):
 *   value = (1/B) sum_b ( max_{j != y_b} z_bj - z_b,y_b ),   a batch MEAN like every other
 *   term (the attack steps along the sign of the input gradient, so the scale is moot);
 *   dz_b,j* += 1/B and dz_b,y -= 1/B, with j* the arg max over j != y. At ties j* is the
 *   lowest such index (a valid subgradient). */
rm_status rm_cw_margin(const float *z, const int32_t *y, int B, int K, double *value,
                       float *dz);

/* DLR loss (Croce & Hein 2020, "difference of logits ratio"), the objective APGD-T
 * maximises; invariant to shifting and to positive scaling of the logits. Per example,
 * with pi1, pi2, ... the classes by decreasing logit (ties: the lower index first):
 *   untargeted (target NULL):  -(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3 + 1e-12)
 *   targeted (class t_b):      -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)
 * value = mean over the batch; loss (B doubles, may be NULL) receives each example's
 * value; dz += gradient / B with the ranking held fixed (a valid subgradient at ties).
 * Untargeted needs K >= 3, targeted K >= 4 and target[b] != y[b]. */
rm_status rm_dlr(const float *z, const int32_t *y, const int32_t *target, int B, int K,
                 double *value, double *loss, float *dz);

/* RM_OK when `value` is finite; otherwise RM_ERR_DIVERGED with a message naming `what`
 * (e.g. "loss at epoch 3 step 17") and the value, so the run stops as "diverged". */
rm_status rm_loss_check_finite(const char *what, double value);

#endif
