/*
 * heap_trim: gives the C heap's free pages back to the kernel (glibc malloc_trim(3)).
 *
 * Loading thousands of zones frees as much native memory as it keeps (SQLite statements and
 * temporary tables, transfer buffers, V8 backing stores), interleaved in glibc's arenas: the
 * freed chunks stay in the arenas, resident, because a live chunk above them pins the arena's
 * top. malloc_trim(0) walks every arena and madvise(MADV_DONTNEED)s whole free pages.
 *
 * exports.trim(): true when memory was released; false when nothing was or the C library has no
 * malloc_trim (musl, other systems).
 */
#include <stdlib.h>
#include <node_api.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static napi_value trim(napi_env env, napi_callback_info info) {
  int released = 0;
#if defined(__GLIBC__)
  released = malloc_trim(0);
#endif
  napi_value v;
  napi_get_boolean(env, released != 0, &v);
  return v;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  return exports;
}
