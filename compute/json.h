/* SPDX-License-Identifier: LGPL-2.1-or-later
 * A small strict JSON parser (RFC 8259): no comments, no trailing commas, no duplicate keys,
 * nesting depth limited, strings must be valid UTF-8 after \u unescaping.
 */
#ifndef ST_JSON_H
#define ST_JSON_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
  JSON_NULL = 0,
  JSON_BOOL,
  JSON_NUMBER,
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT,
} JsonType;

typedef struct JsonValue {
  JsonType type;
  bool boolean;
  double number;
  char *string; /* NUL-terminated (strings containing \u0000 are refused) */
  size_t len;   /* string length / number of items */
  struct JsonValue *items;
  char **keys; /* objects: keys[i] names items[i] */
} JsonValue;

/* Parses `len` bytes. Returns NULL and writes a message (with the byte offset) on error. */
JsonValue *json_parse(const char *text, size_t len, char *errbuf, size_t errlen);
void json_free(JsonValue *v);
/* Object member or NULL. */
const JsonValue *json_get(const JsonValue *obj, const char *key);
const char *json_type_name(JsonType t);

#endif /* ST_JSON_H */
