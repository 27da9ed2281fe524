/* Reader for the .rmfx PyTorch fixtures and the weight formula they were made with
 * (tests/pytorch/gen_model_fixtures.py). See fixture.h for the format. */
#include "fixture.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE_MAGIC "RMFX0001"
#define FIXTURE_MAX_NAME 1024

/* ---- little-endian decoding with bounds checks ---- */

typedef struct {
    const unsigned char *p;
    size_t left;
} cursor;

static int take(cursor *c, size_t n, const unsigned char **out) {
    if (c->left < n) return 0;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return 1;
}

static uint64_t le_bytes(const unsigned char *b, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static int take_u32(cursor *c, uint32_t *v) {
    const unsigned char *b;
    if (!take(c, 4, &b)) return 0;
    *v = (uint32_t)le_bytes(b, 4);
    return 1;
}

static int take_u64(cursor *c, uint64_t *v) {
    const unsigned char *b;
    if (!take(c, 8, &b)) return 0;
    *v = le_bytes(b, 8);
    return 1;
}

static rm_status read_whole_file(const char *path, unsigned char **data, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return rm_fail(RM_ERR_IO, "fopen(%s): %s", path, strerror(errno));
    size_t cap = 1 << 20, len = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        fclose(fp);
        return rm_fail(RM_ERR_NOMEM, "%s: malloc(%zu)", path, cap);
    }
    for (;;) {
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (len < cap) break;
        unsigned char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            fclose(fp);
            return rm_fail(RM_ERR_NOMEM, "%s: realloc(%zu)", path, cap * 2);
        }
        buf = bigger;
        cap *= 2;
    }
    if (ferror(fp)) {
        free(buf);
        fclose(fp);
        return rm_fail(RM_ERR_IO, "fread(%s) failed", path);
    }
    fclose(fp);
    *data = buf;
    *size = len;
    return RM_OK;
}

/* Parses record `idx` at the cursor into r (name and data allocated). */
static rm_status parse_record(const char *path, size_t idx, cursor *c, fixture_record *r) {
    uint32_t name_len, ndim;
    const unsigned char *b;
    if (!take_u32(c, &name_len))
        return rm_fail(RM_ERR_FORMAT, "%s: truncated at the name length of record %zu", path, idx);
    if (name_len == 0 || name_len > FIXTURE_MAX_NAME)
        return rm_fail(RM_ERR_FORMAT, "%s: record %zu has a name length of %u (1..%d allowed)",
                       path, idx, name_len, FIXTURE_MAX_NAME);
    if (!take(c, name_len, &b))
        return rm_fail(RM_ERR_FORMAT, "%s: truncated in the name of record %zu", path, idx);
    r->name = malloc(name_len + 1);
    if (!r->name) return rm_fail(RM_ERR_NOMEM, "%s: malloc for a record name", path);
    memcpy(r->name, b, name_len);
    r->name[name_len] = '\0';

    if (!take_u32(c, &ndim))
        return rm_fail(RM_ERR_FORMAT, "%s: record \"%s\": truncated at ndim", path, r->name);
    if (ndim > FIXTURE_MAX_NDIM)
        return rm_fail(RM_ERR_FORMAT, "%s: record \"%s\": ndim %u > %d", path, r->name, ndim,
                       FIXTURE_MAX_NDIM);
    r->ndim = (int)ndim;
    size_t numel = 1;
    for (uint32_t d = 0; d < ndim; d++) {
        uint64_t v;
        if (!take_u64(c, &v))
            return rm_fail(RM_ERR_FORMAT, "%s: record \"%s\": truncated in dims", path, r->name);
        r->dims[d] = (int64_t)v;
        if (r->dims[d] < 0 || (r->dims[d] > 0 && numel > SIZE_MAX / (size_t)r->dims[d]))
            return rm_fail(RM_ERR_FORMAT, "%s: record \"%s\": bad dimension %lld", path, r->name,
                           (long long)r->dims[d]);
        numel *= (size_t)r->dims[d];
    }
    r->numel = numel;

    uint64_t stride, count;
    if (!take_u64(c, &stride) || !take_u64(c, &count))
        return rm_fail(RM_ERR_FORMAT, "%s: record \"%s\": truncated at stride/count", path, r->name);
    if (stride == 0 || stride > numel + 1 || count != (numel + stride - 1) / stride)
        return rm_fail(RM_ERR_FORMAT,
                       "%s: record \"%s\": stride %llu and count %llu do not fit %zu elements",
                       path, r->name, (unsigned long long)stride, (unsigned long long)count, numel);
    r->stride = (size_t)stride;
    r->count = (size_t)count;
    if (!take(c, r->count * 4, &b))
        return rm_fail(RM_ERR_FORMAT, "%s: record \"%s\": truncated data (%zu floats expected, %zu bytes left)",
                       path, r->name, r->count, c->left);
    r->data = malloc(r->count ? r->count * sizeof(float) : 1);
    if (!r->data) return rm_fail(RM_ERR_NOMEM, "%s: malloc for record \"%s\"", path, r->name);
    for (size_t i = 0; i < r->count; i++) {
        uint32_t bits = (uint32_t)le_bytes(b + 4 * i, 4);
        memcpy(&r->data[i], &bits, sizeof bits);
    }
    return RM_OK;
}

rm_status fixture_load(const char *path, fixture_file **out) {
    *out = NULL;
    unsigned char *bytes = NULL;
    size_t size = 0;
    RM_TRY(read_whole_file(path, &bytes, &size));

    rm_status st = RM_OK;
    fixture_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        st = rm_fail(RM_ERR_NOMEM, "%s: calloc", path);
        goto done;
    }
    cursor c = {bytes, size};
    const unsigned char *magic;
    uint32_t count;
    if (!take(&c, 8, &magic) || memcmp(magic, FIXTURE_MAGIC, 8) != 0) {
        st = rm_fail(RM_ERR_FORMAT, "%s: not a fixture file (magic \"%s\" expected)", path,
                     FIXTURE_MAGIC);
        goto done;
    }
    if (!take_u32(&c, &count)) {
        st = rm_fail(RM_ERR_FORMAT, "%s: truncated at the record count", path);
        goto done;
    }
    f->records = calloc(count ? count : 1, sizeof *f->records);
    if (!f->records) {
        st = rm_fail(RM_ERR_NOMEM, "%s: calloc for %u records", path, count);
        goto done;
    }
    for (uint32_t i = 0; i < count; i++) {
        f->count = i + 1; /* so fixture_free releases a partly parsed record too */
        st = parse_record(path, i, &c, &f->records[i]);
        if (st != RM_OK) goto done;
    }
    f->count = count;
    if (c.left != 0)
        st = rm_fail(RM_ERR_FORMAT, "%s: %zu unexpected bytes after the last of %u records", path,
                     c.left, count);
done:
    free(bytes);
    if (st != RM_OK) {
        fixture_free(f);
        return st;
    }
    *out = f;
    return RM_OK;
}

void fixture_free(fixture_file *f) {
    if (!f) return;
    for (size_t i = 0; f->records && i < f->count; i++) {
        free(f->records[i].name);
        free(f->records[i].data);
    }
    free(f->records);
    free(f->path);
    free(f);
}

fixture_record *fixture_find(fixture_file *f, const char *name) {
    for (size_t i = 0; i < f->count; i++) {
        if (strcmp(f->records[i].name, name) == 0) {
            f->records[i].used = 1;
            return &f->records[i];
        }
    }
    return NULL;
}

size_t fixture_report_unused(const fixture_file *f) {
    size_t unused = 0;
    for (size_t i = 0; i < f->count; i++) {
        if (!f->records[i].used) {
            printf("  fixture record \"%s\" of %s was never compared\n", f->records[i].name,
                   f->path);
            unused++;
        }
    }
    return unused;
}

int fixture_compare(const char *label, const float *ours, size_t numel, const fixture_record *ref,
                    double max_rel) {
    if (!ref) {
        printf("  %-44s NOT OK: no such fixture record\n", label);
        return 0;
    }
    if (ref->numel != numel) {
        printf("  %-44s NOT OK: %zu elements here, %zu in fixture record \"%s\"\n", label, numel,
               ref->numel, ref->name);
        return 0;
    }
    double max_diff = 0.0, max_ref = 0.0;
    int finite = 1;
    for (size_t i = 0; i < ref->count; i++) {
        double a = ours[i * ref->stride], r = ref->data[i];
        if (!isfinite(a) || !isfinite(r)) finite = 0;
        max_diff = fmax(max_diff, fabs(a - r));
        max_ref = fmax(max_ref, fabs(r));
    }
    double rel = max_diff / fmax(max_ref, 1e-30);
    int ok = finite && rel <= max_rel;
    printf("  %-44s max|diff| %.3e  rel %.3e  %s%s\n", label, max_diff, rel, ok ? "OK" : "NOT OK",
           finite ? "" : " (NaN or Inf)");
    return ok;
}

/* ---- the weight formula ---- */

uint64_t fixture_name_key(const char *name) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h;
}

double fixture_u(uint64_t key, uint64_t i) {
    uint64_t h = (i + 1) * 0x9E3779B97F4A7C15ULL + key;
    h ^= h >> 31;
    h *= 0x94D049BB133111EBULL;
    h ^= h >> 29;
    return (double)(h >> 11) * 0x1p-53;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* fan_in of a conv (O,I,KH,KW) or linear (O,I) weight; 0 for anything else. */
static int64_t weight_fan_in(const rm_param *w) {
    if (w->ndim == 4) return w->dims[1] * w->dims[2] * w->dims[3];
    if (w->ndim == 2) return w->dims[1];
    return 0;
}

typedef enum { FILL_FAN_IN, FILL_BN_WEIGHT, FILL_BN_BIAS, FILL_MEAN, FILL_VAR, FILL_UNKNOWN } fill_kind;

/* Which affine map of u a tensor gets; classified by name and shape like the PyTorch
 * modules: a 1-D ".weight" is a batch norm scale, ".bias" follows its ".weight". */
static fill_kind classify(rm_net *net, const rm_param *p, int64_t *fan_in) {
    *fan_in = 0;
    if (ends_with(p->name, ".running_mean")) return FILL_MEAN;
    if (ends_with(p->name, ".running_var")) return FILL_VAR;
    const rm_param *w = NULL;
    if (ends_with(p->name, ".weight")) {
        w = p;
    } else if (ends_with(p->name, ".bias")) {
        char wname[sizeof p->name + 8];
        size_t stem = strlen(p->name) - strlen(".bias");
        snprintf(wname, sizeof wname, "%.*s.weight", (int)stem, p->name);
        w = rm_net_find_param(net, wname);
        if (!w) return FILL_UNKNOWN;
    } else {
        return FILL_UNKNOWN;
    }
    if (w->ndim == 1) return w == p ? FILL_BN_WEIGHT : FILL_BN_BIAS;
    *fan_in = weight_fan_in(w);
    return *fan_in > 0 ? FILL_FAN_IN : FILL_UNKNOWN;
}

void fixture_fill_params(rm_net *net) {
    size_t n;
    rm_param *params = rm_net_params(net, &n);
    for (size_t k = 0; k < n; k++) {
        rm_param *p = &params[k];
        int64_t fan_in;
        fill_kind kind = classify(net, p, &fan_in);
        if (kind == FILL_UNKNOWN)
            printf("  fixture_fill_params: cannot classify \"%s\" (ndim %d): filled with NaN\n",
                   p->name, p->ndim);
        if (kind == FILL_FAN_IN && p->fan_in != 0 && p->fan_in != fan_in)
            printf("  fixture_fill_params: \"%s\" has fan_in %lld, its weight's dims give %lld\n",
                   p->name, (long long)p->fan_in, (long long)fan_in);
        uint64_t key = fixture_name_key(p->name);
        double bound = kind == FILL_FAN_IN ? 1.0 / sqrt((double)fan_in) : 0.0;
        for (size_t i = 0; i < p->numel; i++) {
            double u = fixture_u(key, i), v;
            switch (kind) {
            case FILL_FAN_IN: v = bound * (2.0 * u - 1.0); break;
            case FILL_BN_WEIGHT:
            case FILL_VAR: v = 0.5 + u; break;
            case FILL_BN_BIAS: v = 0.2 * (2.0 * u - 1.0); break;
            case FILL_MEAN: v = 0.1 * (2.0 * u - 1.0); break;
            default: v = NAN; break;
            }
            p->data[i] = (float)v;
        }
    }
    rm_net_params_changed(net);
}
