/* SPDX-License-Identifier: LGPL-2.1-or-later
 * A main() for the fuzz targets without libFuzzer (gcc builds, the normal test suite): runs
 * LLVMFuzzerTestOneInput once on every file named on the command line, or in a directory named
 * there (not recursively). Exits 1 if a file cannot be read; a target aborts on what it finds.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return 1;
  }
  uint8_t *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n == cap) {
      cap = cap ? cap * 2 : 65536;
      uint8_t *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        fprintf(stderr, "replay: out of memory reading %s\n", path);
        return 1;
      }
      buf = nb;
    }
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (r == 0)
      break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    fprintf(stderr, "replay: cannot read %s\n", path);
    return 1;
  }
  /* An exact-size copy, so that AddressSanitizer sees a read past the input's end. */
  uint8_t *exact = malloc(n ? n : 1);
  if (!exact) {
    free(buf);
    return 1;
  }
  memcpy(exact, buf, n);
  free(buf);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

int main(int argc, char **argv) {
  int failed = 0, files = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      DIR *d = opendir(argv[i]);
      if (!d) {
        fprintf(stderr, "replay: cannot open %s\n", argv[i]);
        failed = 1;
        continue;
      }
      struct dirent *e;
      while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
          continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
        failed |= run_file(path);
        files++;
      }
      closedir(d);
    } else {
      failed |= run_file(argv[i]);
      files++;
    }
  }
  printf("replay: %d inputs%s\n", files, failed ? ", some unreadable" : "");
  return failed;
}
