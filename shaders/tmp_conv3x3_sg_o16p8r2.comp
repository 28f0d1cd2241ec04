#version 450
#define OB 16
#define PX 8
#define RB 2
#include "conv3x3_sg.glsl"
