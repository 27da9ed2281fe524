/* AutoAttack's standard evaluation (Croce & Hein, ICML 2020): the components in turn,
 * each on the examples still robust, worst case per example. */
#include "adv.h"

#include <string.h>

void rm_aa_params_default(rm_aa_params *p) {
    p->apgd_iters = 100;
    p->n_targets = 9;
    p->fab_iters = 100;
    p->square_queries = 5000;
    p->square_p_init = 0.8f;
}

const char *rm_aa_part_name(unsigned part) {
    switch (part) {
    case RM_AA_APGD_CE: return "apgd-ce";
    case RM_AA_APGD_T: return "apgd-t";
    case RM_AA_FAB_T: return "fab-t";
    case RM_AA_SQUARE: return "square";
    default: return NULL;
    }
}

/* Class of rank r (0 = largest) of one row z (K): decreasing logits, the lower index
 * first at ties (rank 0 is then adv_argmax's class). */
static int class_of_rank(const float *z, int K, int r) {
    for (int k = 0; k < K; k++) {
        int above = 0; /* classes ranked before k */
        for (int j = 0; j < K; j++) above += z[j] > z[k] || (z[j] == z[k] && j < k);
        if (above == r) return k;
    }
    return -1;
}

/* The robust examples of the whole batch, gathered into sub-batches, and every
 * example's random streams. */
typedef struct {
    float *x, *delta;
    int32_t *y, *target, *rank_class; /* rank_class: (B, K) classes by clean rank */
    unsigned char *rob;
    int *idx;
    uint64_t *seed;   /* (B) one seed per example, drawn from the caller's rng */
    rm_rng *stream;   /* (B) example b's stream for the component running */
    rm_rng *sub_rng;  /* (B) the streams of the sub-batch */
} aa_scratch;

static void aa_free(aa_scratch *s) {
    void *p[] = {s->x, s->delta, s->y, s->target, s->rank_class, s->rob, s->idx, s->seed, s->stream, s->sub_rng};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) rm_free(p[i]);
}

static rm_status aa_alloc(aa_scratch *s, int B, size_t d, int K) {
    memset(s, 0, sizeof *s);
    s->x = rm_alloc((size_t)B * d * sizeof(float));
    s->delta = rm_alloc((size_t)B * d * sizeof(float));
    s->y = rm_alloc((size_t)B * sizeof(int32_t));
    s->target = rm_alloc((size_t)B * sizeof(int32_t));
    s->rank_class = rm_alloc((size_t)B * (size_t)K * sizeof(int32_t));
    s->rob = rm_alloc((size_t)B);
    s->idx = rm_alloc((size_t)B * sizeof(int));
    s->seed = rm_alloc((size_t)B * sizeof(uint64_t));
    s->stream = rm_alloc((size_t)B * sizeof(rm_rng));
    s->sub_rng = rm_alloc((size_t)B * sizeof(rm_rng));
    if (!s->x || !s->delta || !s->y || !s->target || !s->rank_class || !s->rob || !s->idx || !s->seed ||
        !s->stream || !s->sub_rng) {
        aa_free(s);
        return RM_ERR_NOMEM;
    }
    return RM_OK;
}

/* Gathers the examples with robust[b] = 1 into s (x, y, and the class of clean rank
 * `rank` as target when rank > 0); returns their number. */
static int gather(aa_scratch *s, const float *x, const int32_t *y, const unsigned char *robust,
                  int B, size_t d, int K, int rank) {
    int nb = 0;
    for (int b = 0; b < B; b++) {
        if (!robust[b]) continue;
        s->idx[nb] = b;
        s->y[nb] = y[b];
        s->sub_rng[nb] = s->stream[b];
        if (rank > 0) s->target[nb] = s->rank_class[(size_t)b * K + rank];
        memcpy(s->x + (size_t)nb * d, x + (size_t)b * d, d * sizeof(float));
        nb++;
    }
    return nb;
}

/* Takes the sub-batch's verdicts back: an example the component reports fooled is
 * classified again at x + delta with this batch, and only a confirmed misclassification
 * counts (so robust accuracy never rests on a claim the network does not repeat). */
static rm_status scatter(rm_attacker *a, rm_mode mode, aa_scratch *s, int nb, size_t d,
                         float *delta, unsigned char *robust) {
    for (int j = 0; j < nb; j++) s->stream[s->idx[j]] = s->sub_rng[j]; /* streams advance */
    int nf = 0; /* fooled candidates, compacted to the front */
    for (int j = 0; j < nb; j++) {
        if (s->rob[j]) continue;
        if (nf != j) {
            s->idx[nf] = s->idx[j];
            s->y[nf] = s->y[j];
            memcpy(s->x + (size_t)nf * d, s->x + (size_t)j * d, d * sizeof(float));
            memcpy(s->delta + (size_t)nf * d, s->delta + (size_t)j * d, d * sizeof(float));
        }
        nf++;
    }
    if (nf == 0) return RM_OK;
    RM_TRY(adv_classify(a, mode, s->x, s->delta, s->y, nf, s->rob, NULL));
    for (int j = 0; j < nf; j++) {
        if (s->rob[j]) continue; /* not confirmed */
        robust[s->idx[j]] = 0;
        memcpy(delta + (size_t)s->idx[j] * d, s->delta + (size_t)j * d, d * sizeof(float));
    }
    return RM_OK;
}

static int count_set(const unsigned char *v, int n) {
    int c = 0;
    for (int i = 0; i < n; i++) c += v[i] != 0;
    return c;
}

/* One component over the robust examples (targeted ones once per target rank). Example
 * b's stream for the component is derived from its seed and the component's name, so
 * what a component does to an example depends neither on the other examples of the batch
 * nor on the components before it. */
static rm_status run_part(rm_attacker *a, rm_mode mode, unsigned part, const float *x,
                          const int32_t *y, int B, float eps, const rm_aa_params *p,
                          float *delta, unsigned char *robust, aa_scratch *s, rm_aa_stats *st) {
    const size_t d = a->d;
    const int K = a->K;
    for (int b = 0; b < B; b++) rm_rng_derive(&s->stream[b], s->seed[b], rm_aa_part_name(part));
    const int targeted = part == RM_AA_APGD_T || part == RM_AA_FAB_T;
    const int n_targets = !targeted ? 1 : (p->n_targets < K - 1 ? p->n_targets : K - 1);
    for (int r = 1; r <= n_targets; r++) {
        const int nb = gather(s, x, y, robust, B, d, K, targeted ? r : 0);
        if (nb == 0) break;
        int zeros = 0;
        switch (part) {
        case RM_AA_APGD_CE:
        case RM_AA_APGD_T:
            RM_TRY(rm_apgd(a, mode, s->x, s->y, targeted ? s->target : NULL, nb, eps, p->apgd_iters,
                           s->sub_rng, s->delta, s->rob, &zeros));
            st->apgd_runs += nb;
            st->zero_grad_runs += zeros;
            break;
        case RM_AA_FAB_T:
            RM_TRY(rm_fab_t(a, mode, s->x, s->y, s->target, nb, eps, p->fab_iters, s->delta, s->rob));
            break;
        case RM_AA_SQUARE:
            RM_TRY(rm_square(a, mode, s->x, s->y, nb, eps, p->square_queries, p->square_p_init,
                             s->sub_rng, s->delta, s->rob));
            break;
        default: return rm_fail(RM_ERR_ARG, "rm_autoattack: unknown component %u", part);
        }
        RM_TRY(scatter(a, mode, s, nb, d, delta, robust));
    }
    return RM_OK;
}

static rm_status aa_run(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y, int B,
                        float eps, unsigned components, const rm_aa_params *p, rm_rng *rng,
                        float *delta, unsigned char *robust, aa_scratch *s, rm_aa_stats *st) {
    const int K = a->K;
    for (int b = 0; b < B; b++) s->seed[b] = rm_rng_u64(rng); /* B draws, whatever the data */
    memset(delta, 0, (size_t)B * a->d * sizeof(float));
    RM_TRY(adv_classify(a, mode, x, NULL, y, B, robust, NULL));
    st->clean_correct = count_set(robust, B);
    for (int b = 0; b < B; b++) /* target ranks from the clean logits */
        for (int r = 0; r < K; r++)
            s->rank_class[(size_t)b * K + r] = class_of_rank(a->logits + (size_t)b * K, K, r);
    static const unsigned order[RM_AA_MAX_PARTS] = {RM_AA_APGD_CE, RM_AA_APGD_T, RM_AA_FAB_T,
                                                    RM_AA_SQUARE};
    for (int i = 0; i < RM_AA_MAX_PARTS; i++) {
        if (!(components & order[i])) continue;
        RM_TRY(run_part(a, mode, order[i], x, y, B, eps, p, delta, robust, s, st));
        st->part[st->n_parts] = order[i];
        st->robust_after[st->n_parts++] = count_set(robust, B);
    }
    return RM_OK;
}

rm_status rm_autoattack(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y, int B,
                        float eps, unsigned components, const rm_aa_params *p, rm_rng *rng,
                        float *delta, unsigned char *robust, rm_aa_stats *stats) {
    RM_TRY(adv_check_batch("rm_autoattack", a, x, B));
    RM_TRY(adv_check_budget("rm_autoattack", eps, 0.0f, 0));
    if (!delta || !robust || !rng || !p)
        return rm_fail(RM_ERR_ARG, "rm_autoattack: delta, robust, params or rng pointer is NULL");
    if (components == 0 || (components & ~(unsigned)RM_AA_STANDARD))
        return rm_fail(RM_ERR_ARG, "rm_autoattack: component set %#x is not a non-empty set of RM_AA_* bits",
                       components);
    if ((components & RM_AA_APGD_T) && a->K < 4)
        return rm_fail(RM_ERR_ARG, "rm_autoattack: APGD-T (targeted DLR) needs at least 4 classes (the network has %d)",
                       a->K);
    if (p->apgd_iters < 1 || p->fab_iters < 1 || p->square_queries < 0 || p->n_targets < 1)
        return rm_fail(RM_ERR_ARG, "rm_autoattack: iterations %d/%d, queries %d and targets %d must be positive",
                       p->apgd_iters, p->fab_iters, p->square_queries, p->n_targets);
    RM_TRY(adv_check_labels("rm_autoattack", y, B, a->K));
    rm_aa_stats local;
    rm_aa_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    aa_scratch s;
    RM_TRY(aa_alloc(&s, B, a->d, a->K));
    rm_status status = aa_run(a, mode, x, y, B, eps, components, p, rng, delta, robust, &s, st);
    aa_free(&s);
    return status;
}
