/* genesis info: what is in a cubes file or a checkpoint (its format, contents and settings). */
#include "cli/cli.h"

#include "genesis/atomic_file.h"
#include "genesis/checkpoint.h"
#include "genesis/cubes.h"
#include "genesis/error.h"
#include "genesis/weights.h"
#include "genesis/world.h"

#include <errno.h>
#include <sys/stat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int describe_cubes(const char *path)
{
    int status = GEN_OK;
    cubes_file f;
    cubes_scan_record *scans = NULL;
    CALL(cubes_open(&f, path, CUBES_THIS_RANK));
    int64_t per_split[3] = {0};
    for (int64_t i = 0; i < f.count; i++)
        if (f.split[i] <= SPLIT_TEST) per_split[f.split[i]]++;
    char version[256] = "", normalize[64] = "", filter[64] = "";
    double range[2] = {0, 0}, window[2] = {0, 0};
    CALL_GOTO(cubes_read_attr_text(&f, "genesis_version", version, sizeof version));
    CALL_GOTO(cubes_read_attr_text(&f, "normalize", normalize, sizeof normalize));
    CALL_GOTO(cubes_read_attr_text(&f, "filter", filter, sizeof filter));
    CALL_GOTO(cubes_read_attr_doubles(&f, "value_range", range, 2));
    CALL_GOTO(cubes_read_attr_doubles(&f, "window", window, 2));
    int64_t scan_count = 0;
    CALL_GOTO(cubes_read_scans(&f, &scans, &scan_count));
    int64_t skipped = 0;
    for (int64_t i = 0; i < scan_count; i++) skipped += scans[i].skipped[0] != '\0';
    printf("%s: genesis cubes file, format version %d, written by genesis %s\n", path, f.format_version, version);
    printf("cubes:      %lld of %dx%dx%d float32 (train %lld, validation %lld, test %lld)\n",
           (long long)f.count, f.rows, f.cols, f.deps, (long long)per_split[0],
           (long long)per_split[1], (long long)per_split[2]);
    printf("values:     [%g, %g]\n", range[0], range[1]);
    if (!strcmp(normalize, "mri_minmax")) {
        double pct[2] = {0, 0};
        if (cubes_read_attr_doubles(&f, "percentiles", pct, 2) != GEN_OK) gen_error_clear(); /* shown as 0..0 */
        printf("settings:   normalize mri_minmax (percentiles %g..%g of each scan), filter %s\n", pct[0],
               pct[1], filter);
    } else {
        printf("settings:   normalize %s, window [%g, %g], filter %s\n", normalize, window[0], window[1], filter);
    }
    printf("scans:      %lld, of which %lld used and %lld skipped\n", (long long)scan_count,
           (long long)(scan_count - skipped), (long long)skipped);
    for (int64_t i = 0; i < scan_count; i++) {
        const cubes_scan_record *s = &scans[i];
        if (s->skipped[0])
            printf("  %4lld  skipped     %-9s  %s\n", (long long)i, s->format, s->skipped);
        else
            printf("  %4lld  %-10s  %-9s  %3d cubes  %lldx%lldx%lld  %.2gx%.2gx%.2g mm  %s\n", (long long)i,
                   cube_split_name(s->split), s->format, s->cubes, (long long)s->dim[0], (long long)s->dim[1],
                   (long long)s->dim[2], s->spacing[0], s->spacing[1], s->spacing[2], s->path);
    }
cleanup:
    free(scans);
    cubes_close(&f);
    return status;
}

static int describe_checkpoint(const char *path)
{
    train_state st;
    CALL(checkpoint_read_state(path, &st));
    printf("%s: genesis checkpoint, format version %d\n", path, CHECKPOINT_FORMAT_VERSION);
    printf("position:   epoch %lld, %lld steps into it, %lld steps in all\n", (long long)st.epoch,
           (long long)st.step_in_epoch, (long long)st.global_step);
    printf("schedule:   learning rate %g, optimizer %s (%lld steps)\n", st.lr,
           optim_kind_name((int)st.optimizer_kind), (long long)st.optimizer_steps);
    if (isfinite(st.best_loss) && isfinite(st.best_identity))
        printf("validation: best loss %.6f (identity %.6f, gain %.3f), %lld epoch(s) since\n", st.best_loss,
               st.best_identity, 1.0 - st.best_loss / st.best_identity, (long long)st.bad_epochs);
    else if (isfinite(st.best_loss))
        printf("validation: best loss %.6f (gain unknown: written before genesis stored the identity baseline), "
               "%lld epoch(s) since\n", st.best_loss, (long long)st.bad_epochs);
    else
        printf("validation: none yet\n");
    printf("config:     hash %016llx (the resolved configuration is the file's 'config' attribute)\n",
           (unsigned long long)st.config_hash);
    return GEN_OK;
}

static int describe_weights(const char *path, int width)
{
    printf("%s: genesis weights file (PyTorch state_dict names, genesis export), U-Net width %d\n", path, width);
    printf("use:        [train] init_from = %s, or python3 scripts/genesis_to_torch.py %s unet3d.pt\n", path, path);
    return GEN_OK;
}

/* Rank 0: a checkpoint (a /state group), a weights file (its format attribute), else a cubes file. */
static int describe(const char *path)
{
    struct stat st;
    CALL(path_check_length(path));
    CHECK(stat(path, &st) == 0, GEN_ERR_IO, "%s: %s", path, strerror(errno));
    CHECK(S_ISREG(st.st_mode), GEN_ERR_USAGE, "%s is %s, not a cubes file or a checkpoint", path,
          S_ISDIR(st.st_mode) ? "a folder" : "not a regular file");
    const char *kind = "";
    if (hdf5_file_kind(path, &kind) != GEN_OK) gen_error_clear(); /* describe_cubes says why */
    if (!strcmp(kind, "a genesis checkpoint")) return describe_checkpoint(path);
    int width;
    if (!strcmp(kind, "a genesis weights file")) {
        CALL(weights_file_width(path, &width));
        return describe_weights(path, width);
    }
    return describe_cubes(path);
}

int cmd_info(int argc, char **argv)
{
    if (argc != 1 || argv[0][0] == '-') FAIL_ALL(GEN_ERR_USAGE, "usage: genesis info FILE");
    if (world_rank() != 0) return GEN_OK;
    return describe(argv[0]);
}
