// SPDX-License-Identifier: LGPL-2.1-or-later
// 3x3 stride-1 convolution for 8-wide subgroups (see conv3x3_sg.glsl): 32 output channels x 8 pixels x 1 rows per workgroup.
#version 450
#define OB 32
#define PX 8
#define RB 1
#include "conv3x3_sg.glsl"
