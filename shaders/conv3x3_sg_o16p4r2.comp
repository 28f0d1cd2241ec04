// SPDX-License-Identifier: LGPL-2.1-or-later
// 3x3 stride-1 convolution for 8-wide subgroups (see conv3x3_sg.glsl): 16 output channels x 4 pixels x 2 rows per workgroup.
#version 450
#define OB 16
#define PX 4
#define RB 2
#include "conv3x3_sg.glsl"
