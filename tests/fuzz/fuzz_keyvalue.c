/* `key=value` settings (rm_config_set, as on the command line) and the number parser
 * (rm_parse_number: "8/255"). Properties: a setting that is accepted prints
 * (rm_config_setting_text) as text that sets the same value again; a number that parses
 * prints (rm_format_number) as text that parses to the same double; run-id parts
 * (rm_sweep_id_part) hold only [A-Za-z0-9.+-]. */
#include <string.h>

#include "fuzz_support.h"

#include "regmix/config.h"
#include "regmix/sweep.h"

static void number_round_trip(const char *text) {
    double v, back;
    if (rm_number_error(text, &v)) return;
    char buf[64];
    rm_format_number(v, buf, sizeof buf);
    fuzz_require(!rm_number_error(buf, &back) && back == v, "number %s printed as %s", text, buf);
}

static void id_part(const char *text) {
    char buf[RM_SWEEP_ID_MAX];
    if (rm_sweep_id_part(text, buf, sizeof buf) < 0) return;
    for (const char *p = buf; *p; p++)
        fuzz_require(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-", *p) != NULL,
                     "id part of '%s' holds '%c'", text, *p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = fuzz_text(data, size);
    number_round_trip(text);
    id_part(text);
    rm_config c;
    rm_config_defaults(&c);
    if (rm_config_set(&c, text, NULL, "command line") != RM_OK) return 0;
    /* the setting that changed (the key as rm_config_set trims it) */
    int n = rm_config_setting_count();
    rm_config fresh;
    rm_config_defaults(&fresh);
    for (int i = 0; i < n; i++) {
        char now[RM_CFG_YAML_MAX], before[RM_CFG_YAML_MAX];
        fuzz_require(rm_config_setting_text(&c, i, now, sizeof now) >= 0, "setting_text");
        fuzz_require(rm_config_setting_text(&fresh, i, before, sizeof before) >= 0, "setting_text");
        if (!strcmp(now, before)) continue;
        rm_config back;
        rm_config_defaults(&back);
        fuzz_require(rm_config_set(&back, rm_config_setting_name(i), now, "printed") == RM_OK,
                     "%s: printed value '%s' is refused: %s", rm_config_setting_name(i), now, rm_error_message());
        char again[RM_CFG_YAML_MAX];
        fuzz_require(rm_config_setting_text(&back, i, again, sizeof again) >= 0 && !strcmp(now, again),
                     "%s: '%s' printed as '%s' reads back as '%s'", rm_config_setting_name(i), text, now, again);
    }
    return 0;
}
