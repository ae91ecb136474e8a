/* genesis restore: a trained model over a whole scan (NIfTI, MetaImage or DICOM), in blended windows;
 * NIfTI out. */
#include "cli/cli.h"

#include "genesis/atomic_file.h"
#include "genesis/error.h"
#include "genesis/log.h"
#include "genesis/restore.h"
#include "genesis/world.h"

#include <stdio.h>
#include <string.h>

/* "N" (all three axes) or "X,Y,Z". */
static int parse_triple(const char *option, const char *text, int out[3])
{
    long v[3];
    char extra;
    int n = sscanf(text, "%ld,%ld,%ld%c", &v[0], &v[1], &v[2], &extra);
    if (n == 1) v[1] = v[2] = v[0];
    else if (n != 3) FAIL_ALL(GEN_ERR_USAGE, "%s: expected N or X,Y,Z, got '%s'", option, text);
    for (int a = 0; a < 3; a++) {
        if (v[a] < 1 || v[a] > 4096) FAIL_ALL(GEN_ERR_USAGE, "%s: %ld is out of range [1, 4096]", option, v[a]);
        out[a] = (int)v[a];
    }
    return GEN_OK;
}

/* Rank 0: the output policy (atomic_file.h) for -o and --png; the checkpoint and the scan are the
 * inputs. */
static int check_outputs(const struct restore_options *o, int force)
{
    const char *inputs[] = {o->checkpoint, o->input};
    CALL(output_check(o->output, force, "--force", inputs, 2));
    if (!o->png) return GEN_OK;
    CHECK(strcmp(o->png, o->output), GEN_ERR_USAGE, "restore: -o and --png name the same file %s", o->png);
    return output_check(o->png, force, "--force", inputs, 2);
}

int cmd_restore(int argc, char **argv)
{
    struct restore_options o = {.seed = 1, .batch = 2, .bn_running = 1};
    const char *paths[2] = {NULL, NULL};
    int count = 0, force = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--corrupt")) {
            o.corrupt = 1;
            continue;
        }
        if (!strcmp(a, "--force")) {
            force = 1;
            continue;
        }
        if (a[0] != '-') {
            if (count == 2) FAIL_ALL(GEN_ERR_USAGE, "restore: too many arguments ('%s')", a);
            paths[count++] = a;
            continue;
        }
        if (i + 1 >= argc) FAIL_ALL(GEN_ERR_USAGE, "restore: unknown or incomplete option '%s'", a);
        const char *v = argv[++i];
        long n;
        if (!strcmp(a, "-o")) o.output = v;
        else if (!strcmp(a, "--png")) o.png = v;
        else if (!strcmp(a, "--seed")) {
            CALL(cli_parse_long(a, v, 0, 2147483647, &n));
            o.seed = (uint64_t)n;
        } else if (!strcmp(a, "--batch")) {
            CALL(cli_parse_long(a, v, 1, 256, &n));
            o.batch = (int)n;
        }
        else if (!strcmp(a, "--bn")) CALL(cli_parse_bn("restore: --bn", v, &o.bn_running));
        else if (!strcmp(a, "--stride")) CALL(parse_triple(a, v, o.stride));
        else if (!strcmp(a, "--cube")) CALL(parse_triple(a, v, o.cube));
        else FAIL_ALL(GEN_ERR_USAGE, "restore: unknown option '%s' (see genesis help restore)", a);
    }
    if (count != 2 || !o.output)
        FAIL_ALL(GEN_ERR_USAGE, "usage: genesis restore CKPT.h5 SCAN -o RESTORED.nii.gz [--force] [--corrupt] "
                                "[--seed S] [--png SLICES.png] [--batch B] [--bn running|batch] "
                                "[--stride N|X,Y,Z] [--cube X,Y,Z]");
    o.checkpoint = paths[0], o.input = paths[1];
    CALL(world_agree_shared(world_rank() == 0 ? check_outputs(&o, force) : GEN_OK));
    struct restore_report r;
    CALL(restore_run(&o, &r));
    log_info("restore: %s: %lld windows on %d rank(s), %.1f s", o.output, (long long)r.windows, world_size(),
             r.seconds);
    if (o.corrupt) {
        log_info("restore: mse_window_corrupted: %.6f   (corrupted windows vs the scan, normalised units)",
                 r.mse_corrupt_window);
        log_info("restore: mse_window_restored:  %.6f   (model outputs vs the scan)", r.mse_window);
        log_info("restore: mse_volume_corrupted: %.6f   (blended corrupted windows vs the scan)", r.mse_corrupt_volume);
    }
    log_info("restore: mse_volume_restored:  %.6f   (restored volume vs the scan)", r.mse_volume);
    log_info("restore: mse_volume_mean:      %.6f   (the scan's mean voxel as a constant output vs the scan)",
             r.mse_mean_volume);
    if (o.corrupt) {
        log_info("restore: gain_window: %.3f   (1 - restored / corrupted over the windows)", r.gain_window);
        log_info("restore: volume: restored %.6f (identity %.6f, mean %.6f, gain %.3f): the model removes %.0f%% "
                 "of the corruption's error", r.mse_volume, r.mse_corrupt_volume, r.mse_mean_volume, r.gain_volume,
                 100 * r.gain_volume);
    } else {
        log_info("restore: volume: restored %.6f (mean %.6f; identity and gain need --corrupt)", r.mse_volume,
                 r.mse_mean_volume);
    }
    if (o.png) log_info("restore: %s: axial slices at 1/4, 1/2, 3/4 depth: %s", o.png,
                        o.corrupt ? "input | corrupted | restored" : "input | restored");
    return GEN_OK;
}
