// SPDX-License-Identifier: LGPL-2.1-or-later
// 1x1 stride-1 convolution for 8-wide subgroups (conv1x1_sg.glsl): workgroup tile of 8 output
// channels x 128 pixels.
#version 450
#define OB 8
#define NP 16
#include "conv1x1_sg.glsl"
