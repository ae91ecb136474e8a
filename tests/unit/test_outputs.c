/* The output policy, temporary names and output locks (src/util/atomic_file.c), and the marked cut
 * of over-long messages (gen_vformat, src/util/error.c). */
#include "check.h"

#include "genesis/atomic_file.h"
#include "genesis/error.h"

#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/genesis_outputs_XXXXXX";

static const char *in_dir(const char *name)
{
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

static int message_has(const char *text) { return strstr(gen_error_message(), text) != NULL; }

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f) fputs("x\n", f), fclose(f);
}

static void format(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gen_vformat(out, size, fmt, ap);
    va_end(ap);
}

static void test_output_check(void)
{
    const char *input = in_dir("input.h5"), *out = in_dir("out.h5");
    touch(input);
    const char *inputs[] = {input};
    EXPECT_OK(output_check(out, 0, "--force", inputs, 1)); /* absent */
    touch(out);
    EXPECT(output_check(out, 0, "--force", inputs, 1) == GEN_ERR_USAGE &&
               message_has("exists (replace it with --force)"),
           "existing: %s", gen_error_message());
    EXPECT_OK(output_check(out, 1, "--force", inputs, 1));
    EXPECT(output_check(input, 1, "--force", inputs, 1) == GEN_ERR_USAGE && message_has("is the input"),
           "input itself: %s", gen_error_message());
    const char *sym = in_dir("sym.h5"), *hard = in_dir("hard.h5");
    EXPECT(symlink(input, sym) == 0 && link(input, hard) == 0, "links");
    EXPECT(output_check(sym, 1, "--force", inputs, 1) == GEN_ERR_USAGE && message_has("is the input"),
           "symbolic link to the input: %s", gen_error_message());
    EXPECT(output_check(hard, 1, "--force", inputs, 1) == GEN_ERR_USAGE && message_has("is the input"),
           "hard link to the input: %s", gen_error_message());
    const char *fifo = in_dir("fifo");
    EXPECT(mkfifo(fifo, 0600) == 0, "mkfifo");
    EXPECT(output_check(fifo, 1, "--force", NULL, 0) == GEN_ERR_USAGE && message_has("is a fifo: never replaced"),
           "fifo: %s", gen_error_message());
    EXPECT(output_check(dir, 1, "--force", NULL, 0) == GEN_ERR_USAGE && message_has("is a folder"),
           "folder: %s", gen_error_message());
    EXPECT(output_check(in_dir("missing/out.h5"), 1, "--force", NULL, 0) == GEN_ERR_IO &&
               message_has("missing: No such file"),
           "missing folder: %s", gen_error_message());
}

static void test_tmp_name_ext(void)
{
    char tmp[256];
    EXPECT_OK(atomic_file_tmp_name_ext(tmp, sizeof tmp, "a/scan.nii.gz", ".nii.gz"));
    char want[256];
    snprintf(want, sizeof want, "a/scan.tmp-%ld.nii.gz", (long)getpid());
    EXPECT(!strcmp(tmp, want), "%s vs %s", tmp, want);
    EXPECT(atomic_file_tmp_name_ext(tmp, 8, "a/scan.nii.gz", ".nii.gz") == GEN_ERR_USAGE, "too long");
}

static void test_lock(void)
{
    const char *out = in_dir("cubes.h5");
    char lock[512], other[512];
    EXPECT_OK(output_lock(out, lock, sizeof lock));
    EXPECT(output_lock(out, other, sizeof other) == GEN_ERR_USAGE &&
               message_has("being written by another process"),
           "second lock: %s", gen_error_message());
    EXPECT(other[0] == '\0', "a refused lock is not ours to remove");
    output_unlock(other);
    struct stat st;
    EXPECT(stat(lock, &st) == 0, "the held lock stays");
    output_unlock(lock);
    EXPECT(stat(lock, &st) != 0, "unlocked");
    /* a dead writer's lock (PID beyond pid_max) and partial file */
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    FILE *f = fopen(lock, "w");
    if (f) fprintf(f, "%ld %s\n", 2147483646L, host), fclose(f);
    touch(in_dir("cubes.h5.partial-2147483646"));
    EXPECT_OK(output_lock(out, lock, sizeof lock));
    EXPECT(stat(in_dir("cubes.h5.partial-2147483646"), &st) != 0, "the dead writer's partial file removed");
    output_unlock(lock);
}

static void test_marked_cut(void)
{
    char out[64], long_text[200];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    format(out, sizeof out, "path %s", long_text);
    EXPECT(strlen(out) == sizeof out - 1 && strstr(out, " ... [cut: 204 characters in all]"), "%s", out);
    format(out, sizeof out, "short %d", 7);
    EXPECT(!strcmp(out, "short 7"), "%s", out);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_output_check();
    test_tmp_name_ext();
    test_lock();
    test_marked_cut();
    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    if (system(command) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    TEST_MAIN_END();
}
