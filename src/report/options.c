/* Command-line style options of the report: axes, epoch rule, selection, metrics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"

void rm_report_options_default(rm_report_options *o) {
    memset(o, 0, sizeof *o);
    o->n_rows = -1;
    o->epoch_rule = RM_REPORT_EPOCH_BEST;
}

/* RM_ERR_ARG for an unknown setting name, with rm_config_set's "did you mean". */
static rm_status unknown_setting(const char *name, const char *origin) {
    rm_config tmp;
    rm_config_defaults(&tmp);
    rm_status st = rm_config_set(&tmp, name, "0", origin);
    if (st == RM_OK) return rm_fail(RM_ERR_ARG, "%s: unknown setting '%s'", origin, name);
    return st;
}

rm_status rm_report_parse_axes(const char *text, int *axes, int *n) {
    *n = 0;
    if (!text) return rm_fail(RM_ERR_ARG, "axes: no text given");
    if (!text[0] || strcmp(text, "none") == 0) return RM_OK;
    const char *p = text;
    while (1) {
        size_t len = strcspn(p, ",");
        char name[128];
        if (len == 0 || len >= sizeof name)
            return rm_fail(RM_ERR_ARG, "axes '%s': expected setting names separated by commas", text);
        memcpy(name, p, len);
        name[len] = '\0';
        int idx = rm_config_setting_find(name);
        if (idx < 0) return unknown_setting(name, "axes");
        for (int i = 0; i < *n; i++)
            if (axes[i] == idx) return rm_fail(RM_ERR_ARG, "axes '%s': '%s' appears twice", text, name);
        if (*n == RM_REPORT_MAX_AXES)
            return rm_fail(RM_ERR_ARG, "axes '%s': more than %d axes", text, RM_REPORT_MAX_AXES);
        axes[(*n)++] = idx;
        p += len;
        if (!*p) break;
        p++;
    }
    return RM_OK;
}

rm_status rm_report_parse_epoch(const char *text, rm_report_options *o) {
    if (!text) return rm_fail(RM_ERR_ARG, "--epoch: no value given");
    if (strcmp(text, "best") == 0) {
        o->epoch_rule = RM_REPORT_EPOCH_BEST;
        return RM_OK;
    }
    if (strcmp(text, "last") == 0) {
        o->epoch_rule = RM_REPORT_EPOCH_LAST;
        return RM_OK;
    }
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1)
        return rm_fail(RM_ERR_ARG, "--epoch: expected best, last or an epoch number >= 1, got '%s'", text);
    o->epoch_rule = RM_REPORT_EPOCH_FIXED;
    o->epoch = (int64_t)v;
    return RM_OK;
}

rm_status rm_report_add_select(rm_report_options *o, const char *arg) {
    const char *eq = arg ? strchr(arg, '=') : NULL;
    if (!eq || eq == arg) return rm_fail(RM_ERR_ARG, "--select: expected setting=value, got '%s'", arg ? arg : "");
    char name[128];
    size_t len = (size_t)(eq - arg);
    if (len >= sizeof name) return rm_fail(RM_ERR_ARG, "--select: setting name too long in '%s'", arg);
    memcpy(name, arg, len);
    name[len] = '\0';
    int idx = rm_config_setting_find(name);
    if (idx < 0) return unknown_setting(name, "--select");
    if (o->n_select == RM_REPORT_MAX_SELECT)
        return rm_fail(RM_ERR_ARG, "--select: more than %d selections", RM_REPORT_MAX_SELECT);
    /* read the value the way a run's configuration was read, then compare canonical text */
    rm_config tmp;
    rm_config_defaults(&tmp);
    RM_TRY(rm_config_set(&tmp, name, eq + 1, "--select"));
    rm_report_select *s = &o->select[o->n_select];
    s->setting = idx;
    if (rm_config_setting_text(&tmp, idx, s->value, sizeof s->value) < 0)
        return rm_fail(RM_ERR_ARG, "--select: value of %s too long", name);
    o->n_select++;
    return RM_OK;
}

rm_status rm_report_add_metrics(rm_report_options *o, const char *names) {
    if (!names || !names[0]) return rm_fail(RM_ERR_ARG, "--metric: no metric name given");
    const char *p = names;
    while (1) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= RM_METRIC_NAME_MAX)
            return rm_fail(RM_ERR_ARG, "--metric '%s': expected metric names separated by commas", names);
        if (o->n_metrics == RM_REPORT_MAX_METRICS)
            return rm_fail(RM_ERR_ARG, "--metric: more than %d metrics", RM_REPORT_MAX_METRICS);
        memcpy(o->metrics[o->n_metrics], p, len);
        o->metrics[o->n_metrics][len] = '\0';
        for (int i = 0; i < o->n_metrics; i++)
            if (strcmp(o->metrics[i], o->metrics[o->n_metrics]) == 0)
                return rm_fail(RM_ERR_ARG, "--metric: '%s' given twice", o->metrics[i]);
        o->n_metrics++;
        p += len;
        if (!*p) break;
        p++;
    }
    return RM_OK;
}
