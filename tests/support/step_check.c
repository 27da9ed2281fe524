/* Comparisons of one training step against a PyTorch fixture (step_check.h). */
#include "step_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int step_check_scalar(const char *label, double ours, fixture_record *ref, double max_rel) {
    if (!ref || ref->count != 1) {
        printf("  %-44s NOT OK: no scalar fixture record\n", label);
        return 0;
    }
    double r = ref->data[0], diff = fabs(ours - r), rel = diff / fmax(fabs(r), 1e-30);
    int ok = isfinite(ours) && rel <= max_rel;
    printf("  %-44s ours %.9g  torch %.9g  rel %.3e  %s\n", label, ours, r, rel, ok ? "OK" : "NOT OK");
    return ok;
}

int step_check_count(const char *label, int ours, fixture_record *ref) {
    int theirs = ref && ref->count == 1 ? (int)ref->data[0] : -1;
    int ok = ours == theirs;
    printf("  %-44s ours %d  torch %d  %s\n", label, ours, theirs, ok ? "OK" : "NOT OK");
    return ok;
}

int step_check_exact(const char *label, const float *ours, size_t n, fixture_record *ref, double max_diff) {
    if (!ref || ref->numel != n || ref->stride != 1) {
        printf("  %-44s NOT OK: bad fixture record\n", label);
        return 0;
    }
    size_t off = 0;
    double worst = 0;
    for (size_t i = 0; i < ref->count; i++) {
        double diff = fabs((double)ours[i] - ref->data[i]);
        if (!(diff <= max_diff)) off++;
        if (diff > worst || isnan(diff)) worst = diff;
    }
    printf("  %-44s max|diff| %.3e  elements off by > %.0e: %zu of %zu  %s\n", label, worst, max_diff, off,
           ref->count, off ? "NOT OK" : "OK");
    return off == 0;
}

int step_check_momentum(const char *label, const float *M, size_t n, fixture_record *ref, double max_rel) {
    int ok = fixture_compare(label, M, n, ref, max_rel);
    if (!ref || ref->stride != 1 || ref->numel != n) return 0;
    double ms = 0, least = INFINITY, err = 0;
    size_t flips = 0;
    for (size_t i = 0; i < ref->count; i++) {
        double r = ref->data[i];
        ms += r * r;
        least = fmin(least, fabs(r));
        err = fmax(err, fabs(M[i] - r));
        flips += ((M[i] > 0) != (r > 0)) || ((M[i] < 0) != (r < 0));
    }
    double rms = sqrt(ms / (double)ref->count);
    printf("  %-44s min|M|/rms %.3e  C error/rms %.3e  (margin x%.0f)  signs differ at %zu  %s\n", "sign",
           least / rms, err / rms, err > 0 ? least / err : INFINITY, flips, flips ? "NOT OK" : "OK");
    return ok && flips == 0;
}

int step_check_pass_logits(fixture_file *fx, const char *prefix, rm_net *src, const float *x,
                           const float *e, const float *d, int B, double max_rel) {
    rm_net *net;
    rm_tape *tape;
    int K = rm_net_num_classes(src);
    size_t dim = rm_net_input_size(src);
    int c, h, w;
    rm_net_input_shape(src, &c, &h, &w);
    if (rm_net_create(rm_net_model(src), c, h, w, K, &net) != RM_OK) return 0;
    if (rm_tape_create(net, &tape) != RM_OK) {
        rm_net_destroy(net);
        return 0;
    }
    size_t np;
    rm_param *to = rm_net_params(net, &np), *from = rm_net_params(src, &np);
    for (size_t i = 0; i < np; i++) memcpy(to[i].data, from[i].data, from[i].numel * sizeof(float));
    rm_net_params_changed(net);
    float *xin = rm_alloc((size_t)B * dim * sizeof(float)), *z = rm_alloc((size_t)B * K * sizeof(float));
    const struct {
        const char *name;
        const float *delta;
    } passes[] = {{"logits_i", e}, {"logits_f", d}, {"logits_c", NULL}};
    int ok = xin && z;
    for (size_t p = 0; xin && z && p < 3; p++) {
        char name[64], label[96];
        snprintf(name, sizeof name, "%s%s", prefix, passes[p].name);
        fixture_record *ref = fixture_find(fx, name);
        if (!ref && !passes[p].delta) continue; /* mse has no clean pass */
        for (size_t i = 0; i < (size_t)B * dim; i++) xin[i] = x[i] + (passes[p].delta ? passes[p].delta[i] : 0.0f);
        if (rm_net_forward(net, tape, RM_MODE_TRAIN, xin, B, z) != RM_OK) {
            ok = 0;
            break;
        }
        snprintf(label, sizeof label, "%s (separate forward)", name);
        ok &= fixture_compare(label, z, (size_t)B * K, ref, max_rel);
    }
    rm_free(xin);
    rm_free(z);
    rm_tape_destroy(tape);
    rm_net_destroy(net);
    return ok;
}
