#include "gradcheck.h"

#include <math.h>
#include <stdio.h>

int rm_check_gradient(const char *name, rm_scalar_fn f, void *ctx, float *x, size_t n,
                      const float *analytic, double h, double atol, double rtol,
                      size_t stride) {
    if (stride == 0) stride = 1;
    double worst_abs = 0.0;
    size_t checked = 0;
    for (size_t i = 0; i < n; i += stride) {
        float saved = x[i];
        x[i] = (float)((double)saved + h);
        double up_h = (double)x[i] - (double)saved; /* the step actually taken in float */
        double up = f(ctx);
        x[i] = (float)((double)saved - h);
        double down_h = (double)saved - (double)x[i];
        double down = f(ctx);
        x[i] = saved;
        double numeric = (up - down) / (up_h + down_h);
        double a = analytic[i];
        double diff = fabs(a - numeric);
        double tol = atol + rtol * fmax(fabs(a), fabs(numeric));
        if (diff > worst_abs) worst_abs = diff;
        checked++;
        if (!(diff <= tol)) {
            printf("  %-28s NOT OK at [%zu]: analytic %.8e numeric %.8e |diff| %.3e > tol %.3e "
                   "(x=%.6e h=%.1e f+=%.10e f-=%.10e)\n",
                   name, i, a, numeric, diff, tol, (double)saved, h, up, down);
            return 0;
        }
    }
    printf("  %-28s OK  %zu elements checked, max |analytic - numeric| %.3e\n", name, checked,
           worst_abs);
    return 1;
}
