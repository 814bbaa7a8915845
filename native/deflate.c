/*
 * kiln_deflate: one gzip member per call, compressed by libdeflate on libuv's thread pool.
 *
 *   gzipMember(data: Buffer, level: 0..12): Promise<Buffer>
 *   version: string   (libdeflate's version this addon was built against, statically linked)
 *
 * libdeflate compresses a whole buffer at once (no streaming state), which is what independent
 * gzip members need; its gzip header has mtime 0, no name and OS byte 255, which we set again
 * here so the rule does not depend on the library's choice. The output depends only on the
 * input, the level and libdeflate's version (the version is in the layer format string).
 */
#include <libdeflate.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                                      \
  do {                                                                                   \
    if ((call) != napi_ok) {                                                             \
      napi_throw_error(env, NULL, "kiln_deflate: " #call " failed");                     \
      return NULL;                                                                       \
    }                                                                                    \
  } while (0)

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref input_ref;
  const unsigned char *in;
  size_t in_len;
  int level;
  unsigned char *out;
  size_t out_len;
  const char *error;
} job_t;

/* One compressor per pool thread and level, kept for the life of the process (a compressor is
 * a few hundred KB; allocating one per member would cost more than compressing a small one). */
static __thread struct libdeflate_compressor *compressors[13];

static void execute(napi_env env, void *data) {
  (void)env;
  job_t *job = data;
  struct libdeflate_compressor *c = compressors[job->level];
  if (c == NULL) c = compressors[job->level] = libdeflate_alloc_compressor(job->level);
  if (c == NULL) {
    job->error = "cannot allocate a libdeflate compressor";
    return;
  }
  size_t bound = libdeflate_gzip_compress_bound(c, job->in_len);
  job->out = malloc(bound);
  if (job->out == NULL) {
    job->error = "out of memory for a gzip member";
    return;
  }
  job->out_len = libdeflate_gzip_compress(c, job->in, job->in_len, job->out, bound);
  if (job->out_len == 0) {
    job->error = "libdeflate_gzip_compress failed";
    return;
  }
  job->out[9] = 0xff; /* OS byte: unknown (what Go's compress/gzip writes) */
  unsigned char *shrunk = realloc(job->out, job->out_len);
  if (shrunk != NULL) job->out = shrunk;
}

static void free_output(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *job = data;
  napi_value result;
  if (status == napi_ok && job->error == NULL) {
    if (napi_create_external_buffer(env, job->out_len, job->out, free_output, NULL, &result) == napi_ok) {
      job->out = NULL;
      napi_resolve_deferred(env, job->deferred, result);
    } else {
      job->error = "cannot hand the gzip member to JavaScript";
    }
  }
  if (job->out != NULL || job->error != NULL || status != napi_ok) {
    napi_value msg, err;
    const char *text = job->error != NULL ? job->error : "the gzip job was cancelled";
    if (job->out != NULL) free(job->out);
    if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg) == napi_ok && napi_create_error(env, NULL, msg, &err) == napi_ok)
      napi_reject_deferred(env, job->deferred, err);
  }
  napi_delete_reference(env, job->input_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value gzip_member(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_buffer = false;
  if (argc < 2 || napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer) {
    napi_throw_type_error(env, NULL, "gzipMember(data, level): data must be a Buffer");
    return NULL;
  }
  int32_t level;
  if (napi_get_value_int32(env, argv[1], &level) != napi_ok || level < 0 || level > 12) {
    napi_throw_range_error(env, NULL, "gzipMember(data, level): level must be an integer 0..12");
    return NULL;
  }
  job_t *job = calloc(1, sizeof(job_t));
  if (job == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  void *in;
  CHECK(napi_get_buffer_info(env, argv[0], &in, &job->in_len));
  job->in = in;
  job->level = level;
  /* The input stays alive (and unmoved: Buffers are off-heap) until the job completes. */
  CHECK(napi_create_reference(env, argv[0], 1, &job->input_ref));
  napi_value promise, name;
  CHECK(napi_create_promise(env, &job->deferred, &promise));
  CHECK(napi_create_string_utf8(env, "kiln_deflate.gzipMember", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_async_work(env, NULL, name, execute, complete, job, &job->work));
  CHECK(napi_queue_async_work(env, job->work));
  return promise;
}

NAPI_MODULE_INIT() {
  napi_value fn, version;
  CHECK(napi_create_function(env, "gzipMember", NAPI_AUTO_LENGTH, gzip_member, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "gzipMember", fn));
  CHECK(napi_create_string_utf8(env, LIBDEFLATE_VERSION_STRING, NAPI_AUTO_LENGTH, &version));
  CHECK(napi_set_named_property(env, exports, "version", version));
  return exports;
}
