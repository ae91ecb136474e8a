/* genesis: Models Genesis pretraining on CPU clusters. The entry point and the subcommand table. */
#include "cli/cli.h"

#include "genesis/blas_core.h"
#include "genesis/error.h"
#include "genesis/log.h"
#include "genesis/world.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage; /* full help: synopsis, options, examples */
};

static const struct subcommand subcommands[] = {
    {"bench", cmd_bench, "time training steps of the full model; per-layer GFLOP/s; sgemm ceiling",
     "usage: genesis bench [--batch B] [--steps N] [--warmup N] [--width W] [--size D H W]\n"
     "                     [--threads T] [--no-layers] [--no-sgemm]\n"
     "\n"
     "Times N training steps (forward, backward, SGD) of the U-Net (default width 32, 64x64x32,\n"
     "batch 2) on random data after warm-up steps, on rank 0 with T threads in the layers (default\n"
     "1), and prints per-layer forward/backward time and GFLOP/s, step time, samples/s, GFLOP/s\n"
     "(counting 3x the forward FLOPs per step), OpenBLAS's own sgemm 2048^3 GFLOP/s at T threads in\n"
     "the same run as the ceiling, and peak RSS. scripts/bench_vs_torch runs it beside Debian's\n"
     "PyTorch; scripts/bench_threads compares T = 2 with T = 1.\n"},
    {"config", cmd_config, "show every configuration key, or check a configuration file",
     "usage: genesis config --defaults\n"
     "       genesis config --check FILE [--set section.key=value]...\n"
     "\n"
     "--defaults  print every key: section, type, default, range and meaning\n"
     "--check     validate FILE (and the --set overrides) and print the resolved configuration;\n"
     "            an error names the file, the line and the key, and exits with status 2; then the\n"
     "            estimated peak memory of one rank of genesis train at 1, 2, 4, ... ranks (README:\n"
     "            Memory checked up front)\n"},
    {"export", cmd_export, "a checkpoint's weights as HDF5 named by PyTorch state_dict keys",
     "usage: genesis export CKPT.h5 -o WEIGHTS.h5 [--force]\n"
     "\n"
     "Writes every parameter and batch-norm buffer of the checkpoint's model (width from the\n"
     "checkpoint's own configuration) as a dataset at the root of WEIGHTS.h5, named by its PyTorch\n"
     "state_dict key (e.g. down_tr64.ops.0.conv1.weight), in PyTorch's shape and layout, float32\n"
     "(num_batches_tracked: int64 scalar), with attributes format, format_version, width and\n"
     "genesis_version; written under a temporary name and renamed. An existing WEIGHTS.h5 is replaced\n"
     "only with --force, never when it is the checkpoint itself or not a regular file (README: Outputs).\n"
     "Then:\n"
     "  python3 scripts/genesis_to_torch.py WEIGHTS.h5 unet3d.pt [--form plain|checkpoint]\n"
     "The reverse, scripts/torch_to_genesis.py, writes the same format from a .pt; [train] init_from\n"
     "starts pretraining from such a file.\n"},
    {"forward", cmd_forward, "run a checkpoint's or weights file's model on arrays (PyTorch checks)",
     "usage: genesis forward MODEL.h5 INPUT.h5 -o OUTPUT.h5 [--force] [--bn batch|running]\n"
     "\n"
     "Runs the U-Net of MODEL.h5 (a checkpoint or a weights file) on /input of INPUT.h5, float32\n"
     "[N, 1, D, H, W] with D, H, W multiples of 8, as one batch (batch-norm statistics of that\n"
     "batch, as the reference's ContBatchNorm3d), and writes the sigmoid output as /output\n"
     "[N, 1, D, H, W] to OUTPUT.h5: to compare genesis with a PyTorch model given the same weights.\n"
     "--bn running: batch norm with the model's running estimates instead (PyTorch's eval() mode).\n"
     "An existing OUTPUT.h5 is replaced only with --force, never an input (README: Outputs).\n"},
    {"phantom", cmd_phantom, "write synthetic CT-like scans (Hounsfield units) as NIfTI",
     "usage: [mpirun -np N] genesis phantom --count N --output-dir DIR [--size X,Y,Z] [--seed S]\n"
     "                                     [--first I] [--force]\n"
     "\n"
     "Writes DIR/phantom_NNNN.nii.gz (int16 HU, RAS, 1.5 mm in z): a body with fat and soft tissue,\n"
     "two lungs near -800 HU with vessels, heart, aorta, spine, ribs and sternum near +700, noise.\n"
     "Scan I is a pure function of (seed, I). Default size 256,256,96. The folder is created. Existing\n"
     "scans of the same names are refused before any is written, unless --force (README: Outputs).\n"
     "Example: genesis phantom --count 20 --output-dir scans/ --size 512,512,300\n"},
    {"plot", cmd_plot, "curves.png of a run: loss, baselines and learning rate from metrics.csv",
     "usage: genesis plot RUN_DIR [-o FILE [--force]]\n"
     "\n"
     "Draws the run's metrics.csv (RUN_DIR may also be the metrics.csv file itself) into a PNG,\n"
     "by default RUN_DIR/curves.png (the trainer refreshes that one with every preview.png):\n"
     "the loss panel holds the train loss of every step (light) and its mean per epoch, the\n"
     "validation loss per epoch, and the identity and mean baselines (dashed) when metrics.csv\n"
     "has them, with a legend and the last/best values; the panel below holds the learning rate.\n"
     "Both are drawn against the global step, epochs done are marked along the top. A y axis is\n"
     "logarithmic when its values span more than a factor of 10, else linear (the label says\n"
     "which). Columns are found by header name; missing ones are not drawn. Works while the run\n"
     "is going: a last line still being written is left out. A malformed file is an error naming\n"
     "its line.\n"
     "-o FILE   write FILE instead; an existing FILE is replaced only with --force, and never\n"
     "          when it is not a regular file or is the metrics.csv being read\n"
     "Example: genesis plot quickstart/run && xdg-open quickstart/run/curves.png\n"},
    {"prep", cmd_prep, "scans (NIfTI, MetaImage, DICOM) -> normalised cubes in one HDF5 file (MPI-parallel)",
     "usage: mpirun -np N genesis prep CONFIG [--set section.key=value]...\n"
     "\n"
     "Reads the scans of [prep] inputs, normalises them ([prep] normalize, window_*, percentile_*),\n"
     "cuts cubes as the paper does (borders, attempts, crop sizes, filter lung|foreground|none),\n"
     "splits the scans into train/validation/test, and writes [prep] output: under a temporary\n"
     "name, renamed when complete. Scans that cannot be used (unreadable, wrong dimensionality, NaN\n"
     "or Inf voxels, a header declaring more voxels than the file holds, too small, no cube passing\n"
     "the filter) are skipped with a warning naming the file and counted in a final report, or stop\n"
     "the run when strict = true. A scan with NaN/Inf voxels is skipped whole, never patched: any\n"
     "replacement value would be made-up tissue. The result does not depend on the number of ranks.\n"
     "[prep] inputs: comma-separated items, each a file, a glob, a folder (the scans directly in\n"
     "it: .nii, .nii.gz, .hdr, .mhd, .mha files, and its DICOM series when genesis was built with\n"
     "GDCM), a DICOM series \"DIR#SeriesInstanceUID\", or @LIST: a text file of such items, one a\n"
     "line (# comments; relative paths are relative to LIST's folder). Formats: NIfTI-1/2 and\n"
     "ANALYZE (.nii, .nii.gz, .hdr/.img); MetaImage (.mhd with its .raw/.zraw or LIST of slice\n"
     "files, .mha; zlib-compressed or not; LPS geometry turned into NIfTI's RAS); DICOM series.\n"
     "An existing output is replaced only with [prep] overwrite = true, never a scan or a file that is\n"
     "not a regular file (README: Outputs). OUTPUT.lock refuses a second prep to the same output,\n"
     "naming its PID; a killed prep's lock and partial file are recognised and removed.\n"
     "Example: mpirun -np 8 genesis prep conf/chest_ct.ini --set prep.inputs='/data/luna16/subset*/*.mhd'\n"},
    {"info", cmd_info, "describe a cubes file or a checkpoint",
     "usage: genesis info FILE\n"
     "\n"
     "A cubes file: cubes per split, shape, value range, normalisation and filter, every scan with\n"
     "its split, format (nifti, metaimage, dicom) and cube count or why it was skipped. A\n"
     "checkpoint: epoch and step, learning rate, optimizer, best validation loss with its identity\n"
     "baseline and gain (1 - loss / identity) and the epochs since, configuration hash.\n"},
    {"preview", cmd_preview, "PNG of corrupted inputs beside their targets for cubes of a cubes file",
     "usage: genesis preview CUBES.h5 -o OUT.png [--force] [-n N] [--split train|validation|test] [--first I]\n"
     "                       [--epoch E] [--seed S] [--config FILE] [--set corrupt.key=value]...\n"
     "\n"
     "For N cubes (default 4) of the split from its I-th on, draws the corruptions of SPEC.md as\n"
     "training would at (seed, epoch, sample index), and writes one row per sample: the corrupted\n"
     "input beside the target at depths 2/6, 3/6, 4/6 and 5/6, labelled with the sample index and\n"
     "the corruptions drawn. Corruption settings come from [corrupt] of --config and --set. An existing\n"
     "OUT.png is replaced only with --force, never an input (README: Outputs).\n"},
    {"restore", cmd_restore, "run a trained model over a whole scan (blended windows) -> NIfTI",
     "usage: [mpirun -np N] genesis restore CKPT.h5 SCAN -o RESTORED.nii.gz [--force] [--corrupt]\n"
     "                       [--seed S] [--png SLICES.png] [--batch B] [--bn running|batch]\n"
     "                       [--stride N|X,Y,Z] [--cube X,Y,Z]\n"
     "\n"
     "Normalises the scan as prep did (the checkpoint's [prep] normalize/window/percentiles, in the\n"
     "scan's voxel grid), runs the checkpoint's model over it in overlapping windows of the training\n"
     "cube size (--cube, default [prep] cube_rows x cube_cols x cube_deps) at --stride (default half\n"
     "a window; the last window of an axis is clamped to its end, an axis shorter than a window is\n"
     "padded with its edge voxels), B windows per forward (default 2), blends the outputs with\n"
     "triangular weights, maps them back to input units and writes float32 NIfTI with the input's\n"
     "header (dims, qform/sform). SCAN is any scan prep reads (NIfTI, MetaImage .mhd/.mha, a DICOM\n"
     "series folder or DIR#UID); for a MetaImage or DICOM scan the NIfTI gets the scan's geometry\n"
     "(its LPS axes as RAS). Under MPI the windows are spread over the ranks; rank 0 writes. It\n"
     "prints the plan, then windows done/total, rate and ETA every 10 s, and warns at once when the\n"
     "plan is over 8 times the default stride's windows.\n"
     "--force    replace an existing RESTORED.nii.gz / SLICES.png (never the scan or the checkpoint, never\n"
     "           a file that is not a regular file: README: Outputs)\n"
     "--corrupt  corrupt each window first as in training (the checkpoint's [corrupt] settings, no\n"
     "           flips; keyed by --seed and the window index), to show what the model restores\n"
     "--png      axial slices at 1/4, 1/2, 3/4 depth: input | corrupted | restored\n"
     "--bn       running (default): batch norm with the checkpoint's running estimates, as PyTorch's\n"
     "           eval() mode; batch: each batch's own statistics, as training and the reference's\n"
     "           ContBatchNorm3d do (a batch of empty background windows then comes out grey)\n"
     "Prints mean squared errors in normalised units: restored vs input and, with --corrupt, the\n"
     "corrupted windows vs input; then, as training does, the restored volume's error beside the\n"
     "identity baseline (the corrupted input, with --corrupt), the mean baseline (the scan's mean\n"
     "as a constant) and the gain 1 - restored / corrupted.\n"
     "Example: genesis restore run/ckpt/best.h5 scan.nii.gz -o restored.nii.gz --corrupt --png r.png\n"},
    {"smoke", cmd_smoke, "check that MPI, parallel HDF5 and OpenBLAS work together (all ranks)",
     "usage: mpirun -np N genesis smoke [--dir DIR]\n"
     "\n"
     "Runs collective MPI operations, a collective parallel-HDF5 write and read-back of a small\n"
     "file in DIR (default: $TMPDIR or /tmp; the file is removed), and an OpenBLAS sgemm checked\n"
     "against a direct computation, on every rank. Prints one summary line and exits 0 when all\n"
     "of it works.\n"},
    {"status", cmd_status, "how a training run is doing: running or not, progress, best gain, ETA",
     "usage: genesis status RUN_DIR [--stale-minutes N]\n"
     "\n"
     "From the run folder alone (also of a run under a scheduler, from another node): running,\n"
     "finished, stopped (checkpointed on a signal or deadline), failed (train.log ends with the\n"
     "trainer's error) or not running (killed or lost: no heartbeat for N minutes, default 10, or its\n"
     "process gone on this host); the step and epoch, the best validation loss with its identity\n"
     "and mean baselines and gain (metrics.csv), samples/s of the last step, the ETA to [train]\n"
     "max_epochs or max_steps (config.ini; mean step time of the last 20 steps, validation not\n"
     "counted), the newest checkpoint (ckpt/latest), the last warning or error line of train.log\n"
     "and the resubmissions so far (the trainer's starts in train.log after the first). The\n"
     "heartbeat is RUN_DIR/heartbeat, replaced by rank 0 at every step: time, step, epoch, pid and\n"
     "host.\n"
     "Example: genesis status run --stale-minutes 30\n"},
    {"train", cmd_train, "data-parallel Models Genesis pretraining, resumable",
     "usage: mpirun -np N genesis train CONFIG [--set section.key=value]... [--profile] [--fresh]\n"
     "\n"
     "Trains the 3D U-Net ([model] width) to restore corrupted cubes of [train] data: every epoch a\n"
     "permutation of the training cubes (keyed by seed and epoch); each global batch ([train] batch,\n"
     "a multiple of N) is split over the ranks, gradients are all-reduced in buckets during\n"
     "backward, batch norm uses the global batch's statistics (batchnorm = sync), and every rank\n"
     "takes the same optimizer step. After each epoch: validation loss beside the identity\n"
     "baseline (the corrupted input as the output), the mean baseline (the mean target voxel as\n"
     "the output) and the gain 1 - loss / identity, split by corruption; StepLR, early stopping,\n"
     "best.h5. The run folder ([train] output) gets config.ini, metrics.csv, validation.csv,\n"
     "train.log, heartbeat, ckpt/, preview.png and curves.png (genesis plot; README: The run\n"
     "folder; genesis status). With resume = auto, running the same command again continues from\n"
     "ckpt/latest, at any rank count. [train] init_from = WEIGHTS.h5 starts a fresh run from a\n"
     "weights file (genesis export, scripts/torch_to_genesis.py) instead of random weights.\n"
     "Non-finite numbers (NaN/Inf in a step's loss, gradients or cubes, the starting weights or a\n"
     "validation loss) stop every rank at the same step with one message naming the step and the\n"
     "likely cause and exit status 65; ckpt/latest stays the last good checkpoint. [train]\n"
     "nonfinite = skip drops such a step's update on every rank instead (counted in the epoch line,\n"
     "metrics.csv with an empty train_loss, and the end line; 10 in a row stop the run). A step\n"
     "with a loss but every gradient exactly 0 (a saturated output: the run diverged) stops too (65).\n"
     "Before allocating, the trainer estimates its memory per rank and stops (exit status 2) when\n"
     "it exceeds the node's share (README: Sizing a run); genesis config --check prints it.\n"
     "A checkpoint that does not fit the configuration (another width) is an error saying what differs;\n"
     "resume = never in a folder holding a run is refused.\n"
     "--profile   at the end, a table of time per phase and per layer (GFLOP/s)\n"
     "--fresh     start over in a folder holding a run: its files are first moved to\n"
     "            RUN_DIR/previous-YYYYmmdd-HHMMSS/ (a decision by hand: not in a resubmitted job script)\n"},
    {"version", cmd_version, "print the versions of genesis and of the libraries it runs on",
     "usage: genesis --version   (or: genesis version)\n"},
};
enum { SUBCOMMAND_COUNT = sizeof subcommands / sizeof subcommands[0] };

static const struct subcommand *find_subcommand(const char *name)
{
    for (int i = 0; i < SUBCOMMAND_COUNT; i++)
        if (!strcmp(subcommands[i].name, name)) return &subcommands[i];
    return NULL;
}

static void print_overview(FILE *out)
{
    fprintf(out,
            "genesis: self-supervised Models Genesis pretraining of a 3D U-Net on CPU clusters\n"
            "\n"
            "usage: genesis [-v] COMMAND [ARGS]      (under MPI: mpirun -np N genesis ...)\n"
            "       genesis help [COMMAND]\n"
            "       genesis --version\n"
            "\n"
            "commands:\n");
    for (int i = 0; i < SUBCOMMAND_COUNT; i++)
        fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\n-v, --verbose   debug output (from every rank)\n");
}

static int print_help(const char *name)
{
    if (!name) {
        print_overview(stdout);
        return GEN_OK;
    }
    const struct subcommand *sub = find_subcommand(name);
    CHECK(sub != NULL, GEN_ERR_USAGE, "unknown command '%s' (see 'genesis help')", name);
    printf("genesis %s: %s\n\n%s", sub->name, sub->summary, sub->usage);
    return GEN_OK;
}

static int parse_long(const char *option, const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    CHECK(end != text && *end == '\0' && errno != ERANGE, GEN_ERR_USAGE,
          "%s: expected an integer, got '%s'", option, text);
    CHECK(v >= min && v <= max, GEN_ERR_USAGE, "%s: %ld is out of range [%ld, %ld]", option, v, min, max);
    *out = v;
    return GEN_OK;
}

static int parse_config_args(int argc, char **argv, struct cli_config_args *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        char *value = NULL;
        if (!strcmp(a, "--set")) {
            CHECK(i + 1 < argc, GEN_ERR_USAGE, "--set needs section.key=value");
            value = argv[++i];
        } else if (!strncmp(a, "--set=", 6)) {
            value = argv[i] + 6;
        }
        if (value) {
            CHECK(out->set_count < CLI_MAX_SETS, GEN_ERR_USAGE, "more than %d --set options", CLI_MAX_SETS);
            out->sets[out->set_count++] = value;
        } else if (a[0] == '-' && a[1] != '\0') {
            CHECK(out->rest_count < CLI_MAX_SETS, GEN_ERR_USAGE, "too many arguments");
            out->rest[out->rest_count++] = argv[i];
        } else {
            CHECK(out->config_path == NULL, GEN_ERR_USAGE,
                  "more than one config file given ('%s' and '%s')", out->config_path, a);
            out->config_path = a;
        }
    }
    return GEN_OK;
}

/* Command-line errors are seen identically by every rank (same argv): collective errors. */
static int collective(int status) { return gen_error_collective(status); }

int cli_parse_long(const char *option, const char *text, long min, long max, long *out)
{
    return collective(parse_long(option, text, min, max, out));
}

int cli_parse_bn(const char *option, const char *text, int *running)
{
    if (strcmp(text, "running") && strcmp(text, "batch"))
        return collective(gen_error_set(GEN_ERR_USAGE, __FILE__, __LINE__, "%s must be running or batch, got '%s'",
                                        option, text));
    *running = !strcmp(text, "running");
    return GEN_OK;
}

int cli_parse_config_args(int argc, char **argv, struct cli_config_args *out)
{
    return collective(parse_config_args(argc, argv, out));
}

/* Runs argv[0..] (after the global options) and returns a status. */
static int find_and_run(int argc, char **argv)
{
    if (argc == 0) {
        print_overview(stderr);
        FAIL(GEN_ERR_USAGE, "no command given");
    }
    const char *name = argv[0];
    if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
        const char *topic = argc > 1 ? argv[1] : NULL;
        if (topic && (!strcmp(topic, "--help") || !strcmp(topic, "-h") || !strcmp(topic, "help"))) topic = NULL;
        return world_rank() == 0 ? print_help(topic) : GEN_OK; /* help --help: the overview */
    }
    if (!strcmp(name, "--version")) name = "version";
    const struct subcommand *sub = find_subcommand(name);
    CHECK(sub != NULL, GEN_ERR_USAGE, "unknown command '%s' (see 'genesis help')", name);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return world_rank() == 0 ? print_help(sub->name) : GEN_OK;
    return sub->run(argc - 1, argv + 1);
}

static int dispatch(int argc, char **argv)
{
    if (argc > 0 && (find_subcommand(argv[0]) || !strcmp(argv[0], "--version")))
        return find_and_run(argc, argv); /* the subcommand decides what is collective */
    return collective(find_and_run(argc, argv));
}

int main(int argc, char **argv)
{
    blas_core_ensure(argv); /* may execute genesis again, with OPENBLAS_CORETYPE set */
    int verbose = 0, first = 1;
    while (first < argc && (!strcmp(argv[first], "-v") || !strcmp(argv[first], "--verbose"))) {
        verbose = 1;
        first++;
    }
    int status = world_init(&argc, &argv, verbose);
    if (status != GEN_OK) {
        fprintf(stderr, "genesis: error: %s\n", gen_error_message());
        return 1;
    }
    status = dispatch(argc - first, argv + first);
    return world_finish(status);
}
