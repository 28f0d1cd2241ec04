/* SPDX-License-Identifier: LGPL-2.1-or-later
 * The engine's operation table (compute/graph_ops.h) against the other places that list the
 * graph's operations: the "Operations" table of weights/FORMAT.md (same ops, same order, two
 * outputs exactly where the table says so), the Python op layer weights/graph.py (every op is
 * emitted by one of its functions, and it emits nothing else) and the PyTorch interpreter
 * weights/run_graph.py (its run_op handles every op and nothing else). A new op that is missing
 * from any of them fails here.
 */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static char *read_text(const char *root, const char *rel) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "FAIL: cannot open %s\n", path);
    failures++;
    return NULL;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
    free(s);
    s = NULL;
  }
  fclose(f);
  if (s)
    s[n] = 0;
  return s;
}

static int op_index(const char *name, size_t len) {
  for (int i = 0; i < ST_GOP_COUNT; i++)
    if (strlen(st_graph_ops[i].name) == len && strncmp(st_graph_ops[i].name, name, len) == 0)
      return i;
  return -1;
}

/* The rows "| `name` | ... |" of FORMAT.md's "### Operations" table, in order. */
static void check_format_md(const char *text) {
  const char *sec = strstr(text, "### Operations");
  CHECK(sec != NULL, "FORMAT.md has no \"### Operations\" section");
  if (!sec)
    return;
  const char *end = strstr(sec + 1, "\n## ");
  int row = 0;
  for (const char *l = sec; l && (!end || l < end); l = strchr(l, '\n')) {
    l++;
    if (strncmp(l, "| `", 3) != 0)
      continue;
    const char *name = l + 3, *q = strchr(name, '`');
    const char *eol = strchr(l, '\n');
    if (!q || (eol && q > eol))
      continue;
    int i = op_index(name, (size_t)(q - name));
    CHECK(i >= 0, "FORMAT.md op '%.*s' is not in compute/graph_ops.h", (int)(q - name), name);
    CHECK(i == row, "FORMAT.md row %d is '%.*s', graph_ops.h entry %d is '%s'", row,
          (int)(q - name), name, row, row < ST_GOP_COUNT ? st_graph_ops[row].name : "(none)");
    if (i >= 0) {
      size_t len = eol ? (size_t)(eol - l) : strlen(l);
      char *line = strndup(l, len);
      bool two = line && strstr(line, "two outputs") != NULL;
      CHECK(two == (st_graph_ops[i].nout == 2), "%s: FORMAT.md %s two outputs, graph_ops.h has %d",
            st_graph_ops[i].name, two ? "says" : "does not say", st_graph_ops[i].nout);
      free(line);
    }
    row++;
  }
  CHECK(row == ST_GOP_COUNT, "FORMAT.md lists %d ops, graph_ops.h %d", row, ST_GOP_COUNT);
}

/* Every quoted op name after each occurrence of `marker` in text[from, to). */
static void quoted_after(const char *text, const char *to, const char *marker, bool *seen,
                         const char *what) {
  size_t ml = strlen(marker);
  for (const char *p = strstr(text, marker); p && (!to || p < to); p = strstr(p + ml, marker)) {
    const char *name = p + ml, *q = strchr(name, '"');
    if (!q)
      break;
    int i = op_index(name, (size_t)(q - name));
    CHECK(i >= 0, "%s: op '%.*s' is not in compute/graph_ops.h", what, (int)(q - name), name);
    if (i >= 0)
      seen[i] = true;
  }
}

int main(void) {
  const char *root = getenv("ST_SOURCE_ROOT");
  if (!root)
    root = ".";
  /* the table itself: names unique, arities sane */
  for (int i = 0; i < ST_GOP_COUNT; i++) {
    const StGraphOpDef *d = &st_graph_ops[i];
    CHECK(d->name && *d->name, "entry %d has no name", i);
    CHECK(d->min_in >= 1 && d->min_in <= d->max_in && d->max_in <= 64, "%s: inputs %d..%d", d->name,
          d->min_in, d->max_in);
    CHECK(d->nout == 1 || d->nout == 2, "%s: %d outputs", d->name, d->nout);
    CHECK(strcmp(st_graph_op_name((StGraphOpKind)i), d->name) == 0, "name of %d", i);
    for (int j = 0; j < i; j++)
      CHECK(strcmp(d->name, st_graph_ops[j].name) != 0, "'%s' listed twice", d->name);
  }
  CHECK(strcmp(st_graph_op_name(ST_GOP_COUNT), "?") == 0, "name past the table");

  char *fmt = read_text(root, "weights/FORMAT.md");
  if (fmt)
    check_format_md(fmt);
  free(fmt);

  char *py = read_text(root, "weights/graph.py");
  if (py) {
    bool seen[ST_GOP_COUNT] = {false};
    quoted_after(py, NULL, "_emit(\"", seen, "weights/graph.py");
    quoted_after(py, NULL, "{\"op\": \"", seen, "weights/graph.py"); /* op dicts built in place */
    for (int i = 0; i < ST_GOP_COUNT; i++)
      CHECK(seen[i], "weights/graph.py never emits '%s'", st_graph_ops[i].name);
  }
  free(py);

  char *rg = read_text(root, "weights/run_graph.py");
  if (rg) {
    const char *run_op = strstr(rg, "def run_op(");
    CHECK(run_op != NULL, "weights/run_graph.py has no run_op");
    if (run_op) {
      const char *next = strstr(run_op + 1, "\n    def ");
      bool seen[ST_GOP_COUNT] = {false};
      quoted_after(run_op, next, "k == \"", seen, "weights/run_graph.py");
      /* k in ("add", "mul", "div"): the names inside the tuple */
      for (const char *p = strstr(run_op, "k in ("); p && (!next || p < next);
           p = strstr(p + 1, "k in (")) {
        const char *close = strchr(p, ')');
        for (const char *q = strchr(p, '"'); q && close && q < close;) {
          const char *e = strchr(q + 1, '"');
          if (!e)
            break;
          int i = op_index(q + 1, (size_t)(e - q - 1));
          CHECK(i >= 0, "weights/run_graph.py: op '%.*s' is not in compute/graph_ops.h",
                (int)(e - q - 1), q + 1);
          if (i >= 0)
            seen[i] = true;
          q = strchr(e + 1, '"');
        }
      }
      for (int i = 0; i < ST_GOP_COUNT; i++)
        CHECK(seen[i], "weights/run_graph.py's run_op does not handle '%s'", st_graph_ops[i].name);
    }
  }
  free(rg);
  if (failures) {
    fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  printf("ok: %d ops agree with FORMAT.md, graph.py and run_graph.py\n", ST_GOP_COUNT);
  return 0;
}
