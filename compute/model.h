/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Model file loading (safetensors container + styletransfer-graph, weights/FORMAT.md).
 * Everything a user can get wrong in a file is refused with ST_ERROR_MODEL and a message naming
 * the file and the problem.
 */
#ifndef ST_MODEL_H
#define ST_MODEL_H

#include "graph_ops.h"
#include "ops.h"

typedef struct {
  char *name;
  StDType dtype;
  int rank;
  int shape[4];
  size_t numel;
  size_t offset; /* into StModel.data */
  size_t nbytes;
} StModelTensor;

#define ST_GOP_ENUM(id, name, min_in, max_in, nout) ST_GOP_##id,
typedef enum { ST_GRAPH_OPS(ST_GOP_ENUM) ST_GOP_COUNT } StGraphOpKind;
#undef ST_GOP_ENUM

/* An operation's name in the file and its arity (graph_ops.h). */
typedef struct {
  const char *name;
  int min_in, max_in, nout;
} StGraphOpDef;
extern const StGraphOpDef st_graph_ops[ST_GOP_COUNT];

typedef enum {
  ST_SCALAR_CONST = 0,
  ST_SCALAR_STRENGTH,
  ST_SCALAR_NEG,
  ST_SCALAR_ONE_MINUS,
  ST_SCALAR_STATE_VALID /* 1 when the temporal state holds the previous frame's value */
} StScalarKind;
typedef struct {
  StScalarKind kind;
  float value;
} StScalar;

typedef struct {
  StGraphOpKind kind;
  char **in;
  int nin;
  char *out[2];
  int nout;
  int weight;         /* file tensor index, or -1 */
  char *weight_value; /* conv2d: run-time [O,I] matrix name, or NULL */
  int bias;           /* file tensor index, or -1 */
  int k, stride;
  StPad pad;
  StAct act;
  float alpha;
  int mode; /* StPoolMode / StResizeMode */
  StScalar ka, kb, scale;
  float eps;
  bool center, sqrt_, ta, tb;
  int shape[3];
  int shape_rank;
} StGraphOp;

typedef struct {
  char *name;
  char **inputs;
  int ninputs;
  char **outputs;
  int noutputs;
  StGraphOp *ops;
  int nops;
} StSubgraph;

typedef struct {
  char *path;
  uint8_t *file; /* whole file; NULL after st_model_drop_data */
  size_t file_size;
  const uint8_t *data; /* tensor data area */
  size_t data_size;
  StModelTensor *tensors;
  int ntensors;
  int *by_name; /* tensor indices sorted by name (st_model_find_tensor) */
  int style_size;
  StSubgraph style, initial;
  StSubgraph *refine;
  int nrefine;
  char *state_name; /* NULL: no temporal state */
  char *state_from;
  /* Two styles by a mask (FORMAT.md): NULL mask_input when the model has no masked subgraphs. */
  char *mask_input;    /* the masked subgraphs' [1,H,W] mask input */
  char *style2_prefix; /* the second style's values: this prefix in place of "s_" */
  StSubgraph masked_initial;
  StSubgraph *masked_refine;
  int nmasked_refine;
} StModel;

StModel *st_model_load(const char *path, StError *err);
/* Parses a model from memory (the buffer is copied). `path` names it in messages. */
StModel *st_model_parse(const char *path, const uint8_t *bytes, size_t size, StError *err);
void st_model_free(StModel *m);
/* Frees the file bytes (after the weights were uploaded). */
void st_model_drop_data(StModel *m);
/* (net.c) Plans the model's graph as st_net_load does before it uploads anything (names, shapes,
 * the arena layout), without a device: values stored as fp16 with `fp16`, 16-byte alignment. False
 * with the message st_net_load would give for a graph it refuses (fuzz/fuzz_model.c). */
bool st_model_check_graph(StModel *m, bool fp16, StError *err);
int st_model_find_tensor(const StModel *m, const char *name);
const char *st_graph_op_name(StGraphOpKind k);

float st_half_to_float(uint16_t h);

#endif /* ST_MODEL_H */
