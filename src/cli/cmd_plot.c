/* genesis plot: curves.png of a run from its metrics.csv (include/genesis/plot.h). */
#include "cli/cli.h"

#include "genesis/atomic_file.h"
#include "genesis/error.h"
#include "genesis/log.h"
#include "genesis/plot.h"
#include "genesis/world.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct plot_paths {
    char metrics[PATH_MAX], output[PATH_MAX], title[256];
};

/* From RUN (a run folder or a metrics.csv file) and -o: the metrics file, the picture (default
 * RUN_DIR/curves.png) and the title (the run's name). */
static int resolve_paths(const char *run, const char *output, struct plot_paths *p)
{
    struct stat st;
    CHECK(stat(run, &st) == 0, GEN_ERR_IO, "plot: cannot open %s: %s", run, strerror(errno));
    CHECK(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode), GEN_ERR_USAGE,
          "plot: %s is neither a run folder nor a metrics.csv file", run);
    char folder[PATH_MAX], copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", run);
    snprintf(folder, sizeof folder, "%s", S_ISDIR(st.st_mode) ? run : dirname(copy));
    int n = S_ISDIR(st.st_mode) ? snprintf(p->metrics, sizeof p->metrics, "%s/metrics.csv", folder)
                                : snprintf(p->metrics, sizeof p->metrics, "%s", run);
    CHECK(n < (int)sizeof p->metrics, GEN_ERR_USAGE, "plot: path too long: %s", run);
    n = output ? snprintf(p->output, sizeof p->output, "%s", output)
               : snprintf(p->output, sizeof p->output, "%s/curves.png", folder);
    CHECK(n < (int)sizeof p->output, GEN_ERR_USAGE, "plot: path too long: %s", output ? output : folder);
    curves_run_name(folder, p->title, sizeof p->title);
    return GEN_OK;
}

static int plot(const char *run, const char *output, int force)
{
    struct plot_paths p;
    CALL(resolve_paths(run, output, &p));
    const char *inputs[] = {p.metrics};
    /* the default RUN_DIR/curves.png is the trainer's picture, always replaced */
    CALL(output_check(p.output, output ? force : 1, "--force", inputs, 1));
    struct curves_layout L;
    CALL(curves_write_png(p.metrics, p.output, p.title, &L));
    log_info("plot: %s: loss (%s y) and learning rate (%s y) of %s against steps 0..%.0f", p.output,
             L.loss.y.log ? "log" : "linear", L.lr.y.log ? "log" : "linear", p.metrics, L.loss.x.max);
    return GEN_OK;
}

int cmd_plot(int argc, char **argv)
{
    const char *run = NULL, *output = NULL;
    int force = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-o") && i + 1 < argc)
            output = argv[++i];
        else if (!strcmp(a, "--force"))
            force = 1;
        else if (a[0] == '-' || run)
            FAIL_ALL(GEN_ERR_USAGE, "plot: unexpected argument '%s' (see genesis help plot)", a);
        else
            run = a;
    }
    if (!run) FAIL_ALL(GEN_ERR_USAGE, "usage: genesis plot RUN_DIR [-o FILE [--force]]");
    return world_agree_shared(world_rank() == 0 ? plot(run, output, force) : GEN_OK);
}
