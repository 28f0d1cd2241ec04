/* SPDX-License-Identifier: LGPL-2.1-or-later
 * libFuzzer target: a model file from memory (compute/model.c: the safetensors header length,
 * the JSON header, the tensor table, the __metadata__ and the graph), then, for a file the
 * loader accepts, the graph check st_net_load runs before it uploads anything (names, shapes,
 * the arena layout; compute/net.c) without a device. A refused file must come with a message.
 * fp16 or fp32 feature maps: chosen by the input's size, so that both layouts are planned.
 * ST_FUZZ_VERBOSE=1 prints each input's result (to check what a seed reaches).
 */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void need_message(const StError *err, const char *what) {
  if (err->code == ST_OK || !err->message[0]) {
    fprintf(stderr, "fuzz_model: %s refused the input without a message (code %d)\n", what,
            (int)err->code);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int verbose = -1;
  if (verbose < 0)
    verbose = getenv("ST_FUZZ_VERBOSE") != NULL;
  StError err = {0};
  StModel *m = st_model_parse("fuzz", data, size, &err);
  if (!m) {
    need_message(&err, "st_model_parse");
  } else {
    if (!st_model_check_graph(m, size % 2 == 1, &err))
      need_message(&err, "st_model_check_graph");
    st_model_free(m);
  }
  if (verbose)
    fprintf(stderr, "fuzz_model: %zu bytes: %s\n", size, err.message[0] ? err.message : "accepted");
  return 0;
}
