// SPDX-License-Identifier: LGPL-2.1-or-later
// 3x3 stride-1 convolution for 8-wide subgroups (conv3x3_sg.glsl): workgroup tile of 32 output
// channels x 32 pixels x 4 rows (512 accumulators per invocation).
#version 450
#define OB 32
#define PX 4
#define RB 4
#include "conv3x3_sg.glsl"
