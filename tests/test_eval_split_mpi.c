/* Data-parallel evaluation: a group of K ranks (rm_trainer_set_dp) splits the test
 * batches of rm_trainer_evaluate between its ranks and sums the correct counts; the
 * accuracy must equal the single-rank evaluation of the same weights exactly (counts
 * are integers, every batch draws from its own random stream).
 *
 * The test runs itself under `mpirun -n K` (K = 2, and 3 for an uneven split). Each
 * rank builds the same trainer (fmnist-cnn, 512 training images, batch 64, seed 0,
 * 1 thread) and trains one epoch alone, so that the accuracies are not trivial
 * (identical weights on every rank: no group yet). Then, per evaluation attack (clean,
 * fgsm, pgd3, cw3) on a test subset of 200 images = batches of 64, 64, 64, 8:
 *   1. alone: rm_trainer_evaluate on every rank (the reference);
 *   2. in a group over MPI_COMM_WORLD: the same call.
 * Checked on every rank: 2 == 1 bit for bit, and (from the network's pass counters)
 * that the rank's clean evaluation ran exactly the images of its batches r, r + K, ...
 * so the work was split, not repeated. Skipped when Fashion-MNIST is not installed. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <mpi.h>

#include "proc.h"
#include "regmix/train.h"

static const char *CHILD_ENV = "REGMIX_TEST_EVAL_SPLIT_CHILD";
enum { TEST_SUBSET = 200, BATCH = 64 };

static int child_fail(const char *what) {
    fprintf(stderr, "eval split child: %s: %s\n", what, rm_error_message());
    return 10;
}

/* Images of the batches rank r of K evaluates (batches r, r + K, ... of TEST_SUBSET). */
static int64_t images_of_rank(int rank, int size) {
    int64_t n = 0;
    for (int64_t b = rank; b * BATCH < TEST_SUBSET; b += size)
        n += TEST_SUBSET - b * BATCH < BATCH ? TEST_SUBSET - b * BATCH : BATCH;
    return n;
}

static int child_run(rm_trainer *t, int rank, int size) {
    double *row = calloc((size_t)rm_trainer_metric_count(t), sizeof(double));
    if (!row || rm_trainer_run_epoch(t, row, NULL, NULL) != RM_OK) return child_fail("training epoch");
    free(row);
    rm_eval_attack atk[RM_CFG_MAX_EVAL];
    int n_eval = 0;
    double alone[RM_CFG_MAX_EVAL], split[RM_CFG_MAX_EVAL];
    if (rm_eval_attacks_parse("clean,fgsm,pgd3,cw3", atk, &n_eval, "test") != RM_OK) return child_fail("attacks");
    for (int a = 0; a < n_eval; a++)
        if (rm_trainer_evaluate(t, NULL, &atk[a], &alone[a]) != RM_OK) return child_fail("evaluate alone");
    rm_dp *dp = NULL;
    if (rm_dp_create(MPI_COMM_WORLD, &dp) != RM_OK || rm_trainer_set_dp(t, dp) != RM_OK)
        return child_fail("data-parallel group");
    rm_net *net = rm_trainer_net(t);
    int rc = 0;
    for (int a = 0; a < n_eval; a++) {
        rm_net_pass_count c0, c1;
        rm_net_pass_counts(net, &c0);
        if (rm_trainer_evaluate(t, NULL, &atk[a], &split[a]) != RM_OK) return child_fail("evaluate split");
        rm_net_pass_counts(net, &c1);
        int64_t ran = c1.forward - c0.forward, want = images_of_rank(rank, size);
        int same = memcmp(&alone[a], &split[a], sizeof(double)) == 0;
        printf("  rank %d of %d, %-6s alone %.4f %%, split %.4f %% (%s); forward images %lld%s\n", rank, size,
               atk[a].name, alone[a], split[a], same ? "equal" : "DIFFERENT", (long long)ran,
               a == 0 ? (ran == want ? " = its batches" : " != its batches") : "");
        if (!same) rc = 1;
        if (a == 0 && ran != want) rc = 2;                        /* clean: one pass per image */
        if (a == 0 && (alone[a] < 20 || alone[a] > 99)) rc = 3;   /* trained: not trivial */
    }
    fflush(stdout);
    rm_trainer_set_dp(t, NULL);
    rm_dp_destroy(dp);
    return rc;
}

static int child_main(void) {
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) return 20;
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    rm_config cfg;
    rm_config_defaults(&cfg);
    const char *kv[][2] = {{"train_subset", "512"}, {"batch", "64"}, {"epochs", "1"}, {"threads", "1"},
                           {"test_subset", "200"}, {"eval_attacks", "clean"}};
    int rc = 0;
    for (size_t i = 0; i < sizeof kv / sizeof *kv && rc == 0; i++)
        if (rm_config_set(&cfg, kv[i][0], kv[i][1], "test") != RM_OK) rc = child_fail(kv[i][0]);
    rm_trainer *t = NULL;
    if (rc == 0 && rm_trainer_create(&cfg, &t) != RM_OK) rc = child_fail("trainer");
    if (rc == 0) rc = child_run(t, rank, size);
    rm_trainer_destroy(t);
    /* one verdict for the job: the worst rank's */
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return worst;
}

static int run_group(int ranks) {
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rm_test_mpi_env();
        setenv(CHILD_ENV, "1", 1);
        char n[8], self[4096];
        snprintf(n, sizeof n, "%d", ranks);
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        if (len <= 0) _exit(97);
        self[len] = '\0';
        execlp("mpirun", "mpirun", "-n", n, self, (char *)NULL);
        _exit(98);
    }
    return rm_test_wait_exit(pid);
}

static int have_data(void) {
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", &sb) == 0) return 1;
    printf("SKIPPED: Fashion-MNIST is not installed (/usr/share/datasets/fashion-mnist)\n");
    return 0;
}

static void test_two_ranks_split_equals_one(void **state) {
    (void)state;
    if (!have_data()) skip();
    assert_int_equal(run_group(2), 0);
}

/* 4 batches over 3 ranks: rank 0 takes two, the others one each */
static void test_three_ranks_uneven_split_equals_one(void **state) {
    (void)state;
    if (!have_data()) skip();
    assert_int_equal(run_group(3), 0);
}

int main(void) {
    if (getenv(CHILD_ENV)) return child_main();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_ranks_split_equals_one),
        cmocka_unit_test(test_three_ranks_uneven_split_equals_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
