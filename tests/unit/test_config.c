/* The configuration schema and reader: good files, and every kind of bad file with its exact
 * message (file, line, key, suggestion) and status GEN_ERR_USAGE (exit status 2). */
#include "check.h"

#include "genesis/config.h"
#include "genesis/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/genesis-test-config-XXXXXX";

/* Writes `text` to dir/name and returns the path (static buffer). */
static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads `text` as a file and expects failure with exactly "<path>:<message>". */
static void expect_bad(const char *text, const char *message)
{
    genesis_config cfg;
    config_defaults(&cfg);
    const char *path = write_file("bad.ini", text);
    int status = config_load_file(&cfg, path);
    char expected[1024];
    snprintf(expected, sizeof expected, "%s:%s", path, message);
    EXPECT(status == GEN_ERR_USAGE, "status %d for %s", status, message);
    EXPECT(!strcmp(gen_error_message(), expected), "\n  got      '%s'\n  expected '%s'",
           gen_error_message(), expected);
    EXPECT(gen_exit_code(status) == 2, "exit code %d", gen_exit_code(status));
}

static void expect_bad_set(const char *assignment, const char *message)
{
    genesis_config cfg;
    config_defaults(&cfg);
    int status = config_set(&cfg, assignment);
    EXPECT(status == GEN_ERR_USAGE, "status %d for --set %s", status, assignment);
    EXPECT(!strcmp(gen_error_message(), message), "\n  got      '%s'\n  expected '%s'",
           gen_error_message(), message);
}

static void test_bad_files(void)
{
    expect_bad("[train]\nlearning_rat = 1.0\n",
               "2: unknown key 'learning_rat' in section [train] (did you mean 'learning_rate'?)");
    expect_bad("[train]\nzzz = 1\n", "2: unknown key 'zzz' in section [train]");
    expect_bad("[trian]\nbatch = 6\n", "1: unknown section [trian] (did you mean [train]?)");
    expect_bad("[nothing_like_it]\nbatch = 6\n", "1: unknown section [nothing_like_it]");
    expect_bad("[prep]\nbatch = 6\n",
               "2: unknown key 'batch' in section [prep] (did you mean 'batch' in section [train]?)");
    expect_bad("[train]\nbatch = 6x\n", "2: [train] batch: expected an integer, got '6x'");
    expect_bad("[train]\nbatch = 6.5\n", "2: [train] batch: expected an integer, got '6.5'");
    expect_bad("[train]\nbatch = 99999999999999999999999\n",
               "2: [train] batch: expected an integer, got '99999999999999999999999'");
    expect_bad("[train]\nlearning_rate = 1.0.0\n",
               "2: [train] learning_rate: expected a number, got '1.0.0'");
    expect_bad("[train]\nlearning_rate = nan\n", "2: [train] learning_rate: expected a number, got 'nan'");
    expect_bad("[train]\nlearning_rate =\n", "2: [train] learning_rate: expected a number, got ''");
    expect_bad("# comment\n[train]\nbatch = 0\n", "3: [train] batch: 0 is out of range [1, 65536]");
    expect_bad("[train]\nmomentum = 1.5\n", "2: [train] momentum: 1.5 is out of range [0, 0.999999]");
    expect_bad("[prep]\noverwrite = maybe\n", "2: [prep] overwrite: expected true or false, got 'maybe'");
    expect_bad("[train]\noptimizer = adagrad\n",
               "2: [train] optimizer: expected one of sgd|adam|lars, got 'adagrad'");
    expect_bad("[train]\nlr_scaling = cubic\n",
               "2: [train] lr_scaling: expected one of none|linear|sqrt, got 'cubic'");
    expect_bad("[train]\ntrust_coefficient = -0.001\n",
               "2: [train] trust_coefficient: -0.001 is out of range [0, 1000]");
    expect_bad("[train]\nreference_batch = 0\n", "2: [train] reference_batch: 0 is out of range [1, 65536]");
    expect_bad("[train]\nwarmup_steps = -1\n",
               "2: [train] warmup_steps: -1 is out of range [0, 1000000000000]");
    expect_bad("[train]\nbatch = 6\n\n[model]\nwidth = 8\n[train]\nbatch = 4\n",
               "7: duplicate key 'batch' in section [train] (first set on line 2)");
    expect_bad("batch = 6\n[train]\n", "1: key 'batch' appears before any [section]");
    expect_bad("[train]\nbatch 6\n", "2: syntax error (expected '[section]' or 'key = value')");
    expect_bad("[train\nbatch = 6\n", "1: syntax error (expected '[section]' or 'key = value')");
    char longline[5000];
    snprintf(longline, sizeof longline, "[train]\ndata = %04800d\n", 7);
    expect_bad(longline, "2: line longer than 4352 characters");
    snprintf(longline, sizeof longline, "[train]\n%0300d\n", 7);
    expect_bad(longline, "2: syntax error (expected '[section]' or 'key = value')");
    /* only the first error is reported */
    expect_bad("[train]\nbatch = x\nzzz = 1\n", "2: [train] batch: expected an integer, got 'x'");

    genesis_config cfg;
    config_defaults(&cfg);
    int status = config_load_file(&cfg, "/nonexistent/genesis.ini");
    EXPECT(status == GEN_ERR_USAGE, "missing file status %d", status);
    EXPECT(!strcmp(gen_error_message(),
                   "cannot open config file '/nonexistent/genesis.ini': No such file or directory"),
           "got '%s'", gen_error_message());
}

static void test_bad_sets(void)
{
    expect_bad_set("train.batch=abc", "--set train.batch=abc: [train] batch: expected an integer, got 'abc'");
    expect_bad_set("batch=6", "--set 'batch=6': expected section.key=value (e.g. --set train.batch=6)");
    expect_bad_set("train.batchh=6",
                   "--set train.batchh=6: unknown key 'batchh' in section [train] (did you mean 'batch'?)");
    expect_bad_set("trainn.batch=6", "--set trainn.batch=6: unknown section [trainn] (did you mean [train]?)");
    expect_bad_set("train.resume=sometimes",
                   "--set train.resume=sometimes: [train] resume: expected one of auto|never, got 'sometimes'");
}

static void test_good_paths(void)
{
    genesis_config cfg;
    EXPECT_OK(config_defaults(&cfg));
    EXPECT(cfg.train.batch == 6 && cfg.train.learning_rate == 1.0 && cfg.train.momentum == 0.9,
           "paper defaults: batch %ld lr %g momentum %g", cfg.train.batch, cfg.train.learning_rate,
           cfg.train.momentum);
    EXPECT(cfg.train.lr_step_epochs == 40 && cfg.train.patience == 50 && cfg.model.width == 32,
           "paper defaults: step %ld patience %ld width %ld", cfg.train.lr_step_epochs,
           cfg.train.patience, cfg.model.width);
    EXPECT(cfg.corrupt.flip_rate == 0.4 && cfg.corrupt.local_rate == 0.5 &&
               cfg.corrupt.nonlinear_rate == 0.9 && cfg.corrupt.paint_rate == 0.9 &&
               cfg.corrupt.inpaint_rate == 0.2 && cfg.corrupt.local_blocks == 10000,
           "paper corruption defaults");

    const char *path = write_file("good.ini",
                                  "; a comment\n"
                                  "# another\n"
                                  "[model]\n"
                                  "width = 8   ; inline comment\n"
                                  "\n"
                                  "[train]\n"
                                  "  batch=12\n"
                                  "data = \"/data/my cubes.h5\"\n"
                                  "optimizer = adam\n"
                                  "batchnorm = per_rank\n"
                                  "learning_rate = 1e-3\n"
                                  "[prep]\n"
                                  "overwrite = yes\n");
    EXPECT_OK(config_load_file(&cfg, path));
    EXPECT(cfg.model.width == 8, "width %ld", cfg.model.width);
    EXPECT(cfg.train.batch == 12, "batch %ld", cfg.train.batch);
    EXPECT(!strcmp(cfg.train.data, "/data/my cubes.h5"), "data '%s'", cfg.train.data);
    EXPECT(cfg.train.optimizer == OPTIMIZER_ADAM, "optimizer %d", cfg.train.optimizer);
    EXPECT(cfg.train.batchnorm == BATCHNORM_PER_RANK, "batchnorm %d", cfg.train.batchnorm);
    EXPECT(cfg.train.learning_rate == 1e-3, "lr %g", cfg.train.learning_rate);
    EXPECT(cfg.prep.overwrite == 1, "overwrite %d", cfg.prep.overwrite);
    EXPECT(cfg.train.momentum == 0.9, "untouched key keeps its default");

    EXPECT_OK(config_set(&cfg, "train.batch=24"));
    EXPECT_OK(config_set(&cfg, "prep.inputs=/scans/*.nii.gz,/more/*.nii"));
    EXPECT(cfg.train.batch == 24, "--set overrides the file: %ld", cfg.train.batch);
    EXPECT(!strcmp(cfg.prep.inputs, "/scans/*.nii.gz,/more/*.nii"), "inputs '%s'", cfg.prep.inputs);

    /* The printed configuration reads back to the same values. */
    char printed[512];
    snprintf(printed, sizeof printed, "%s/printed.ini", dir);
    FILE *f = fopen(printed, "w");
    config_print(&cfg, f);
    fclose(f);
    genesis_config again;
    config_defaults(&again);
    EXPECT_OK(config_load_file(&again, printed));
    EXPECT(config_hash(&again) == config_hash(&cfg), "printed config reads back differently");
    genesis_config other = cfg;
    EXPECT_OK(config_set(&other, "train.seed=2"));
    EXPECT(config_hash(&other) != config_hash(&cfg), "hash ignores a changed value");
    EXPECT(config_key_count() > 20, "schema has %d keys", config_key_count());
}

/* config_corrupt_check judges a struct built in code by the schema's [corrupt] rows: the bounds
 * that config_set enforces on text, and those the corruption records rely on. */
static void test_corrupt_check(void)
{
    genesis_config cfg;
    EXPECT_OK(config_defaults(&cfg));
    EXPECT_OK(config_corrupt_check(&cfg.corrupt));
    EXPECT_OK(config_set(&cfg, "corrupt.inpaint_max_blocks=16"));
    EXPECT_OK(config_set(&cfg, "corrupt.outpaint_extra_blocks=15"));
    EXPECT(cfg.corrupt.inpaint_max_blocks == CONFIG_CORRUPT_MAX_INPAINT_BLOCKS &&
               cfg.corrupt.outpaint_extra_blocks == CONFIG_CORRUPT_MAX_OUTPAINT_EXTRA,
           "the schema's block bounds are config.h's");
    EXPECT_OK(config_corrupt_check(&cfg.corrupt));
    EXPECT(config_set(&cfg, "corrupt.inpaint_max_blocks=17") == GEN_ERR_USAGE, "17 blocks read");
    cfg.corrupt.inpaint_max_blocks = 17;
    EXPECT(config_corrupt_check(&cfg.corrupt) == GEN_ERR_USAGE, "17 in-painting blocks accepted");
    EXPECT(strstr(gen_error_message(), "corrupt.inpaint_max_blocks = 17 is out of range [0, 16]"),
           "message: %s", gen_error_message());
    EXPECT_OK(config_defaults(&cfg));
    cfg.corrupt.local_rate = -0.25;
    EXPECT(config_corrupt_check(&cfg.corrupt) == GEN_ERR_USAGE, "local_rate -0.25 accepted");
    cfg.corrupt.local_rate = NAN;
    EXPECT(config_corrupt_check(&cfg.corrupt) == GEN_ERR_USAGE, "local_rate NaN accepted");
    EXPECT_OK(config_defaults(&cfg));
    cfg.corrupt.bezier_samples = 1;
    EXPECT(config_corrupt_check(&cfg.corrupt) == GEN_ERR_USAGE, "1 curve sample accepted");
}

/* Loads `text` as a file (it must read) and expects config_train_check to fail with exactly
 * `message`, "PATH" standing for the file's path; message NULL: expects it to pass. */
static void expect_train_check(const char *text, const char *set, const char *message)
{
    genesis_config cfg;
    config_defaults(&cfg);
    const char *path = write_file("train.ini", text);
    EXPECT_OK(config_load_file(&cfg, path));
    if (set) EXPECT_OK(config_set(&cfg, set));
    int status = config_train_check(&cfg);
    if (!message) {
        EXPECT(status == GEN_OK, "config_train_check refused '%s': %s", text, gen_error_message());
        return;
    }
    char expected[1024] = "";
    for (const char *m = message; *m;) { /* every PATH replaced by the path */
        const char *mark = strstr(m, "PATH");
        size_t len = mark ? (size_t)(mark - m) : strlen(m), used = strlen(expected);
        snprintf(expected + used, sizeof expected - used, "%.*s%s", (int)len, m, mark ? path : "");
        m = mark ? mark + 4 : m + len;
    }
    EXPECT(status == GEN_ERR_USAGE, "status %d for '%s'", status, text);
    EXPECT(!strcmp(gen_error_message(), expected), "\n  got      '%s'\n  expected '%s'", gen_error_message(),
           expected);
}

/* The large-batch keys: defaults, good values, and the combinations config_train_check refuses. */
static void test_large_batch_keys(void)
{
    genesis_config cfg;
    EXPECT_OK(config_defaults(&cfg));
    EXPECT(cfg.train.lr_scaling == LR_SCALE_NONE && cfg.train.reference_batch == 6 &&
               cfg.train.warmup_steps == 0 && cfg.train.trust_coefficient == 0.001 &&
               cfg.train.optimizer == OPTIMIZER_SGD,
           "large-batch defaults: scaling %d reference %ld warm-up %ld eta %g", cfg.train.lr_scaling,
           cfg.train.reference_batch, cfg.train.warmup_steps, cfg.train.trust_coefficient);
    EXPECT_OK(config_train_check(&cfg));
    EXPECT_OK(config_set(&cfg, "train.optimizer=lars"));
    EXPECT_OK(config_set(&cfg, "train.lr_scaling=sqrt"));
    EXPECT(cfg.train.optimizer == OPTIMIZER_LARS && cfg.train.lr_scaling == LR_SCALE_SQRT, "lars, sqrt");
    char where[256];
    CONFIG_ORIGIN(&cfg, train.optimizer, where, sizeof where);
    EXPECT(!strcmp(where, "--set train.optimizer"), "origin of a --set key: %s", where);
    CONFIG_ORIGIN(&cfg, train.warmup_steps, where, sizeof where);
    EXPECT(!strcmp(where, "default"), "origin of a default key: %s", where);

    expect_train_check("[train]\noptimizer = lars\nlr_scaling = linear\nreference_batch = 6\nbatch = 48\n"
                       "warmup_steps = 100\ntrust_coefficient = 0.002\n", NULL, NULL);
    /* reference_batch larger than the batch with lr_scaling = none: harmless, unused */
    expect_train_check("[train]\nbatch = 2\nreference_batch = 64\n", NULL, NULL);
    /* trust_coefficient with sgd: unused, allowed (a LARS file switched to sgd by --set) */
    expect_train_check("[train]\noptimizer = lars\ntrust_coefficient = 0.01\n", "train.optimizer=sgd", NULL);
    expect_train_check("[train]\noptimizer = lars\n\ntrust_coefficient = 0\n", NULL,
                       "PATH:4: [train] trust_coefficient: 0 must be > 0 (LARS's eta; You et al. use 0.001)");
    expect_train_check("[train]\noptimizer = lars\n", "train.trust_coefficient=0",
                       "--set train.trust_coefficient: [train] trust_coefficient: 0 must be > 0 (LARS's eta; You et al. use 0.001)");
    expect_train_check("[train]\noptimizer = adam\ntrust_coefficient = 0.001\n", NULL,
                       "PATH:3: [train] trust_coefficient is LARS's and optimizer = adam (PATH:2): LARS's "
                       "trust ratio does not apply to Adam; use optimizer = lars (SGD momentum) or remove "
                       "trust_coefficient");
}


/* Prints cfg as train stores it (config.ini, checkpoints) and expects it to read back to the same
 * values. */
static void expect_round_trip(const genesis_config *cfg, const char *what)
{
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    config_print(cfg, mem);
    fclose(mem);
    genesis_config again;
    config_defaults(&again);
    int status = config_load_text(&again, text, "printed");
    EXPECT(status == GEN_OK, "%s: the printed configuration does not read back: %s", what, gen_error_message());
    EXPECT(config_hash(&again) == config_hash(cfg), "%s: reads back with other values", what);
    free(text);
}

/* Issue 17: inputs that were accepted or hung: a directory, an endless device, NUL bytes, --set
 * values that make a stored configuration that cannot be read back. */
static void test_hostile_inputs(void)
{
    genesis_config cfg;
    char expected[1200];
    config_defaults(&cfg);
    EXPECT(config_load_file(&cfg, dir) == GEN_ERR_USAGE, "a directory as config file is refused");
    snprintf(expected, sizeof expected, "config file '%s' is a directory", dir);
    EXPECT(!strcmp(gen_error_message(), expected), "got '%s'", gen_error_message());

    alarm(20); /* /dev/zero hung the reader: fail instead of hanging the suite */
    EXPECT(config_load_file(&cfg, "/dev/zero") == GEN_ERR_USAGE, "/dev/zero is refused");
    EXPECT(!strcmp(gen_error_message(), "/dev/zero:1: a NUL byte: not a text file"), "got '%s'",
           gen_error_message());
    alarm(0);

    const char with_nul[] = "[train]\nbatch = 4\0garbage\nmax_steps = 3\n";
    char path[600];
    snprintf(path, sizeof path, "%s/nul.ini", dir);
    FILE *f = fopen(path, "wb");
    fwrite(with_nul, 1, sizeof with_nul - 1, f);
    fclose(f);
    EXPECT(config_load_file(&cfg, path) == GEN_ERR_USAGE, "a NUL byte is refused");
    snprintf(expected, sizeof expected, "%s:2: a NUL byte: not a text file", path);
    EXPECT(!strcmp(gen_error_message(), expected), "got '%s'", gen_error_message());

    /* an endless text file (a device such as /dev/urandom) stops at 1 MiB */
    snprintf(path, sizeof path, "%s/huge.ini", dir);
    f = fopen(path, "w");
    for (int i = 0; i < 40000; i++) fputs("; a comment line that is read and ignored\n", f);
    fclose(f);
    EXPECT(config_load_file(&cfg, path) == GEN_ERR_USAGE, "a file over 1 MiB is refused");
    EXPECT(strstr(gen_error_message(), ": more than 1048576 bytes: not a configuration file") != NULL,
           "got '%s'", gen_error_message());

    expect_bad_set("train.data=a\nb", "--set train.data=a\nb: [train] data: a newline at character 2: a value "
                   "is one line of text without ';' (it starts a comment in the stored configuration)");
    expect_bad_set("train.data=a ;b", "--set train.data=a ;b: [train] data: ';' at character 3: a value is "
                   "one line of text without ';' (it starts a comment in the stored configuration)");
    expect_bad_set("train.output=a\tb", "--set train.output=a\tb: [train] output: a control character at "
                   "character 2: a value is one line of text without ';' (it starts a comment in the stored "
                   "configuration)");
    char long_set[4200];
    snprintf(long_set, sizeof long_set, "train.data=%04100d", 1);
    EXPECT(config_set(&cfg, long_set) == GEN_ERR_USAGE, "a value longer than the field is refused");

    /* what is accepted reads back: blanks around --set values are dropped (as in a file), quotes and
     * inner blanks kept, the origin comment of a long config path shortened to fit a line */
    config_defaults(&cfg);
    EXPECT_OK(config_set(&cfg, "train.data=  spaced name.h5  "));
    EXPECT(!strcmp(cfg.train.data, "spaced name.h5"), "got '%s'", cfg.train.data);
    EXPECT_OK(config_set(&cfg, "train.output=\"\"quoted\"\""));
    EXPECT(!strcmp(cfg.train.output, "\"quoted\""), "got '%s'", cfg.train.output);
    EXPECT_OK(config_set(&cfg, "prep.output=\" lead\""));
    char long_name[300];
    snprintf(long_name, sizeof long_name, "%0230d.ini", 7);
    /* a long path (more than inih's 200-character lines) in a file, with an inline comment */
    char long_value[4300];
    snprintf(long_value, sizeof long_value, "[train]\nbatch = 4\ndata = /%04000d.h5    ; long\n", 7);
    const char *long_path = write_file(long_name, long_value);
    EXPECT_OK(config_load_file(&cfg, long_path));
    EXPECT(strlen(cfg.train.data) == 4004 && cfg.train.batch == 4, "long value: %zu",
           strlen(cfg.train.data));
    EXPECT_OK(config_set(&cfg, "prep.output=/a/path/of/more/than/200/characters/to/be/stored/"
                               "0000000000000000000000000000000000000000000000000000000000000000000000"
                               "0000000000000000000000000000000000000000000000000000000000000000000000"));
    expect_round_trip(&cfg, "quotes, blanks, long values and a long config path");
}

int main(void)
{
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_bad_files();
    test_bad_sets();
    test_good_paths();
    test_corrupt_check();
    test_large_batch_keys();
    test_hostile_inputs();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_MAIN_END();
}
