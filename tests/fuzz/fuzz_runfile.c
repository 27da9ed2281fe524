/* The run-file reader (rm_runfile_read: what `regmix inspect`, `regmix report` and resume
 * read). HDF5 opens files by name, so the input is written to run.h5 first. Properties:
 * a file that reads has consistent counts (rows >= 0, every column with its values), and
 * whatever the file, the reader leaves no HDF5 object open (LeakSanitizer cannot tell a
 * forgotten HDF5 id from HDF5's own allocations, which tests/lsan.supp suppresses). */
#include <hdf5.h>

#include "fuzz_support.h"

#include "regmix/runfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rm_run_summary s;
    rm_status st = rm_runfile_read(fuzz_write_file("run.h5", data, size), &s);
    ssize_t open_objects = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL);
    fuzz_require(open_objects == 0, "%zd HDF5 objects left open (status %d)", open_objects, (int)st);
    if (st != RM_OK) return 0;
    fuzz_require(s.rows >= 0 && s.n_metrics >= 0, "rows %lld, metrics %d", (long long)s.rows, s.n_metrics);
    fuzz_require(s.rows == 0 || s.epoch, "rows without epochs");
    for (int m = 0; m < s.n_metrics; m++)
        fuzz_require(s.rows == 0 || s.columns[m].values, "column %d without values", m);
    (void)rm_run_summary_find(&s, "loss");
    rm_run_summary_free(&s);
    return 0;
}
