/* The run configuration's YAML reader (rm_config_load_yaml_text, the same code as
 * rm_config_load_yaml), then rm_config_validate. Property: a configuration that loads
 * prints (rm_config_to_yaml) as YAML that loads back to the same configuration (the same
 * text again, the same hash): run files store this text and resume by it. */
#include <string.h>

#include "fuzz_support.h"

#include "regmix/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rm_config c;
    rm_config_defaults(&c);
    if (rm_config_load_yaml_text(&c, fuzz_text(data, size), "fuzz.yaml") != RM_OK) return 0;
    (void)rm_config_validate(&c);
    static char text[RM_CFG_YAML_MAX], again[RM_CFG_YAML_MAX];
    int n = rm_config_to_yaml(&c, text, sizeof text);
    fuzz_require(n > 0, "rm_config_to_yaml: %d", n);
    rm_config back;
    rm_config_defaults(&back);
    fuzz_require(rm_config_load_yaml_text(&back, text, "printed") == RM_OK, "printed YAML does not load: %s\n%s",
                 rm_error_message(), text);
    fuzz_require(rm_config_to_yaml(&back, again, sizeof again) == n && !strcmp(text, again),
                 "YAML round trip changed the configuration:\n%s\n---\n%s", text, again);
    char h1[17], h2[17];
    rm_config_hash(&c, h1);
    rm_config_hash(&back, h2);
    fuzz_require(!strcmp(h1, h2), "hash %s became %s", h1, h2);
    return 0;
}
