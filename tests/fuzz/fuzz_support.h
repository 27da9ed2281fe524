/* Shared by the libFuzzer harnesses tests/fuzz/fuzz_*.c. Each harness defines
 * LLVMFuzzerTestOneInput and is built twice: with clang's libFuzzer (REGMIX_FUZZ=ON,
 * ASan + UBSan) to search for crashes, and with the normal compiler plus replay_main.c as
 * a ctest that feeds it every committed regression input and seed. */
#ifndef REGMIX_FUZZ_SUPPORT_H
#define REGMIX_FUZZ_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes data to `name` in this process's scratch directory (made on first use under
 * $TMPDIR or /tmp, removed at exit) and returns the full path (valid until the next call
 * with the same name). Readers that take paths read the fuzz input through it. */
const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size);

/* The path `name` would have in the scratch directory (the file need not exist). */
const char *fuzz_path(const char *name);

/* The input as a NUL-terminated string (a buffer reused by the next call). Embedded NUL
 * bytes stay: C parsers see the text up to the first one. */
char *fuzz_text(const uint8_t *data, size_t size);

/* A property that must hold for every input; abort()s with the message otherwise
 * (libFuzzer and the replay test report it as a crash, with the input). */
void fuzz_require(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
