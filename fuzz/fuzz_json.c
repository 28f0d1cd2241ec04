/* SPDX-License-Identifier: LGPL-2.1-or-later
 * libFuzzer target: json_parse (compute/json.c). Besides the sanitizers' checks: a refused input
 * must come with a message; an accepted one must be consistent (strings NUL-terminated at their
 * length, unique object keys) and survive a round trip: written back as JSON (numbers with 17
 * significant digits) it parses again to an equal value.
 */
#include "json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what) {
  fprintf(stderr, "fuzz_json: %s\n", what);
  abort();
}

typedef struct {
  char *s;
  size_t n, cap;
} Out;

static void put(Out *o, const char *s, size_t n) {
  if (o->n + n + 1 > o->cap) {
    while (o->n + n + 1 > o->cap)
      o->cap = o->cap ? o->cap * 2 : 256;
    o->s = realloc(o->s, o->cap);
    if (!o->s)
      fail("out of memory");
  }
  memcpy(o->s + o->n, s, n);
  o->n += n;
  o->s[o->n] = 0;
}

static void put_string(Out *o, const char *s, size_t len) {
  put(o, "\"", 1);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      put(o, esc, 2);
    } else if (c < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      put(o, esc, 6);
    } else {
      put(o, (const char *)&s[i], 1);
    }
  }
  put(o, "\"", 1);
}

static void check_string(const char *s, size_t len) {
  if (!s || strlen(s) != len)
    fail("string not NUL-terminated at its length");
}

static void write_value(Out *o, const JsonValue *v) {
  char num[40];
  switch (v->type) {
  case JSON_NULL:
    put(o, "null", 4);
    break;
  case JSON_BOOL:
    put(o, v->boolean ? "true" : "false", v->boolean ? 4 : 5);
    break;
  case JSON_NUMBER:
    put(o, num, (size_t)snprintf(num, sizeof num, "%.17g", v->number));
    break;
  case JSON_STRING:
    check_string(v->string, v->len);
    put_string(o, v->string, v->len);
    break;
  case JSON_ARRAY:
  case JSON_OBJECT: {
    bool obj = v->type == JSON_OBJECT;
    put(o, obj ? "{" : "[", 1);
    for (size_t i = 0; i < v->len; i++) {
      if (i)
        put(o, ",", 1);
      if (obj) {
        check_string(v->keys[i], strlen(v->keys[i]));
        if (v->len <= 256) { /* quadratic checks: small objects only */
          for (size_t k = 0; k < i; k++)
            if (strcmp(v->keys[k], v->keys[i]) == 0)
              fail("duplicate key accepted");
          if (json_get(v, v->keys[i]) != &v->items[i])
            fail("json_get does not find a key");
        }
        put_string(o, v->keys[i], strlen(v->keys[i]));
        put(o, ":", 1);
      }
      write_value(o, &v->items[i]);
    }
    put(o, obj ? "}" : "]", 1);
    break;
  }
  }
}

static bool equal(const JsonValue *a, const JsonValue *b) {
  if (a->type != b->type)
    return false;
  switch (a->type) {
  case JSON_NULL:
    return true;
  case JSON_BOOL:
    return a->boolean == b->boolean;
  case JSON_NUMBER:
    return a->number == b->number;
  case JSON_STRING:
    return a->len == b->len && memcmp(a->string, b->string, a->len) == 0;
  case JSON_ARRAY:
  case JSON_OBJECT:
    if (a->len != b->len)
      return false;
    for (size_t i = 0; i < a->len; i++) {
      if (a->type == JSON_OBJECT && strcmp(a->keys[i], b->keys[i]) != 0)
        return false;
      if (!equal(&a->items[i], &b->items[i]))
        return false;
    }
    return true;
  }
  return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256] = "";
  JsonValue *v = json_parse((const char *)data, size, err, sizeof err);
  if (!v) {
    if (!err[0])
      fail("refused without a message");
    return 0;
  }
  if (json_type_name(v->type)[0] == '?')
    fail("unknown type");
  Out o = {0};
  write_value(&o, v);
  JsonValue *w = json_parse(o.s, o.n, err, sizeof err);
  if (!w) {
    fprintf(stderr, "fuzz_json: the written value does not parse again: %s\n%s\n", err, o.s);
    abort();
  }
  if (!equal(v, w)) {
    fprintf(stderr, "fuzz_json: the value written and parsed again differs:\n%s\n", o.s);
    abort();
  }
  json_free(w);
  json_free(v);
  free(o.s);
  return 0;
}
