// SPDX-License-Identifier: LGPL-2.1-or-later
// 3x3 stride-1 convolution for 8-wide subgroups (conv3x3_sg.glsl): workgroup tile of 4 output
// channels x 32 pixels x 4 rows, for layers with at most 4 output channels (RGB output).
#version 450
#define OB 4
#define PX 4
#define RB 4
#include "conv3x3_sg.glsl"
