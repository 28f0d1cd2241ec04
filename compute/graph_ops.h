/* SPDX-License-Identifier: LGPL-2.1-or-later
 * The graph's operations (weights/FORMAT.md, "Operations"): one entry per operation,
 *   X(ID, name, min_inputs, max_inputs, outputs)
 * from which come the kind ST_GOP_<ID> (model.h), the name and arity the loader checks
 * (st_graph_ops, model.c), and the three per-op tables that must name a function for every
 * entry (the build fails otherwise): attrs_<name> (model.c: the op's attributes), infer_<name>
 * (net_infer.c: its output shapes) and record_<name> (net_record.c: its dispatches). An op's
 * dispatcher is in ops.h/ops.c, its shader in shaders/, its CPU reference in ref.h (st_ref_<name>)
 * and its test in tests/compute/test_ops.c; test_optable checks this list against FORMAT.md,
 * weights/graph.py and weights/run_graph.py.
 * Adding an op: its entry here, the three functions, the dispatcher, shader, reference and test.
 */
#ifndef ST_GRAPH_OPS_H
#define ST_GRAPH_OPS_H

#define ST_GRAPH_OPS(X)                                                                            \
  X(CONV2D, conv2d, 1, 1, 1)                                                                       \
  X(POOL, pool, 1, 1, 1)                                                                           \
  X(RESIZE, resize, 2, 2, 1)                                                                       \
  X(ADD, add, 2, 2, 1)                                                                             \
  X(MUL, mul, 2, 2, 1)                                                                             \
  X(DIV, div, 2, 2, 1)                                                                             \
  X(MOMENTS, moments, 1, 2, 2)                                                                     \
  X(GRAM, gram, 1, 2, 1)                                                                           \
  X(MATMUL, matmul, 2, 2, 1)                                                                       \
  X(LINEAR, linear, 1, 1, 1)                                                                       \
  X(SOFTMAX, softmax, 1, 1, 1)                                                                     \
  X(RESHAPE, reshape, 1, 1, 1)                                                                     \
  X(CONCAT, concat, 1, 64, 1)                                                                      \
  X(ACT, act, 1, 1, 1)

#endif /* ST_GRAPH_OPS_H */
