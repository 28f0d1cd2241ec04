#version 450
// Test-only kernel for the runtime test: y[i] = a * x[i] + b (one buffer in, one out).
layout(local_size_x_id = 0) in;
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { float a; float b; uint n; } p;
void main() {
  uint i = gl_GlobalInvocationID.x;
  if (i < p.n)
    y[i] = p.a * x[i] + p.b;
}
