/* Leaving the process after a file could not be written (include/regmix/common.h). */
#include "regmix/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile int unwritable;

void rm_note_unwritable_file(void) { unwritable = 1; }

_Noreturn void rm_exit(int rc) {
    if (!unwritable) exit(rc);
    fflush(NULL);
    _exit(rc);
}
