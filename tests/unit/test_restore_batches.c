/* restore_batch_windows (restore.h): the windows of each batch of genesis restore. For every window
 * count 1..60 and batch 1..7: each window is a real member of exactly one batch, real members come
 * first and the padding repeats them, and the real members of a batch are G = ceil(windows / batch)
 * apart (spread over the scan, not neighbours; the reason is in restore.h). */
#include "check.h"
#include "genesis/restore.h"

#include <string.h>

enum { WINDOWS_MAX = 60, BATCH_MAX = 7 };

int main(void)
{
    int64_t j[BATCH_MAX];
    for (int64_t windows = 1; windows <= WINDOWS_MAX; windows++)
        for (int batch = 1; batch <= BATCH_MAX; batch++) {
            const int64_t batches = (windows + batch - 1) / batch;
            int seen[WINDOWS_MAX] = {0};
            int bad_range = 0, bad_gap = 0, bad_pad = 0, bad_real = 0;
            for (int64_t g = 0; g < batches; g++) {
                int real = restore_batch_windows(g, windows, batch, j);
                if (real < 1 || real > batch) {
                    bad_real++;
                    continue;
                }
                for (int b = 0; b < batch; b++) {
                    if (j[b] < 0 || j[b] >= windows) {
                        bad_range++;
                        continue;
                    }
                    if (b < real) seen[j[b]]++;
                    else if (j[b] != j[b % real]) bad_pad++;
                    if (b > 0 && b < real && j[b] - j[b - 1] != batches) bad_gap++;
                }
            }
            int once = 1;
            for (int64_t w = 0; w < windows; w++) once &= seen[w] == 1;
            EXPECT(!bad_real && !bad_range && !bad_pad && !bad_gap && once,
                   "windows %lld, batch %d: real-count errors %d, out of range %d, padding %d, gaps %d, "
                   "each window once %d", (long long)windows, batch, bad_real, bad_range, bad_pad, bad_gap,
                   once);
        }
    /* a worked example: 10 windows in batches of 3 -> G = 4: {0,4,8} {1,5,9} {2,6,2} {3,7,3} */
    int real = restore_batch_windows(2, 10, 3, j);
    EXPECT(real == 2 && j[0] == 2 && j[1] == 6 && j[2] == 2, "batch 2 of 10 windows by 3: real %d, %lld %lld %lld",
           real, (long long)j[0], (long long)j[1], (long long)j[2]);
    TEST_MAIN_END();
}
