// udp_batch: a UDP socket drained with recvmmsg and answered with sendmmsg, one JavaScript call per
// batch. Nothing here knows DNS. src/net/datagram.ts is the only caller; see it for the contract.
//
// JavaScript API (all arguments checked by the TypeScript wrapper, only types re-checked here):
//   open(family 4|6, address, port, reusePort, receiveBuffer, batchSize, slotSize, onBatch(count))
//     -> { handle, port, receiveBuffer, data, reply, length, replyLength, peer }
//        data/reply: ArrayBuffer(batchSize * slotSize); length/replyLength: ArrayBuffer(batchSize * 4)
//        peer: ArrayBuffer(batchSize * PEER_STRIDE), slot i holds the raw sockaddr_in / sockaddr_in6
//   start(handle)                      begin watching the socket (uv_poll on this thread's loop)
//   send(handle, bytes, port, address) -> 0 or errno (non-blocking sendto; EAGAIN counts as an error)
//   stats(handle)                      -> [received, sent, truncated, sendErrors]
//   close(handle)                      idempotent; also done on environment teardown (worker exit)
//
// Memory: the five arenas are ArrayBuffers allocated by V8 (zero-filled lazily by the OS, so a page
// is only resident once written) and held by strong references until close, so their data
// pointers stay valid for recvmmsg/sendmmsg without copies.
#ifdef __linux__
#define _GNU_SOURCE 1 /* recvmmsg, sendmmsg */
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <node_api.h>

#define PEER_STRIDE 32 /* >= sizeof(struct sockaddr_in6) (28), 8-byte aligned */

#ifdef __linux__
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define MAX_BATCHES_PER_WAKEUP 16 /* then yield to the loop so timers and TCP are not starved */

typedef struct sock {
  napi_env env;
  int fd;
  int family;
  uint32_t batch;
  uint32_t slot;
  uint8_t *data;
  uint8_t *reply;
  uint32_t *length;
  uint32_t *reply_length;
  uint8_t *peer;
  struct mmsghdr *rmsgs;
  struct iovec *riov;
  struct mmsghdr *smsgs;
  struct iovec *siov;
  napi_ref arena_refs[5];
  napi_ref callback_ref;
  napi_ref resource_ref;
  napi_async_context async_ctx;
  napi_async_cleanup_hook_handle cleanup;
  uv_poll_t poll;
  int polling;     /* uv_poll_start done */
  int closed;      /* close() or teardown ran: fd closed, JS references dropped */
  int handle_open; /* poll handle initialised and not yet closed by libuv */
  int finalized;   /* the JS handle object is gone */
  double received, sent, truncated, send_errors;
} sock;

static void maybe_free(sock *s) {
  if (s->finalized && !s->handle_open && s->closed) {
    free(s->rmsgs);
    free(s->riov);
    free(s->smsgs);
    free(s->siov);
    free(s);
  }
}

static void on_poll_closed(uv_handle_t *h) {
  sock *s = (sock *)h->data;
  s->handle_open = 0;
  if (s->cleanup != NULL) {
    napi_remove_async_cleanup_hook(s->cleanup);
    s->cleanup = NULL;
  }
  maybe_free(s);
}

// Stops watching, closes the fd, drops the JS references. Safe to call twice; runs no JavaScript,
// so it is also safe during environment teardown.
static void do_close(sock *s) {
  if (s->closed) return;
  s->closed = 1;
  napi_env env = s->env;
  if (s->handle_open) {
    if (s->polling) uv_poll_stop(&s->poll);
    s->polling = 0;
    uv_close((uv_handle_t *)&s->poll, on_poll_closed);
  }
  if (s->fd >= 0) {
    close(s->fd);
    s->fd = -1;
  }
  for (int i = 0; i < 5; i++) {
    if (s->arena_refs[i] != NULL) napi_delete_reference(env, s->arena_refs[i]);
    s->arena_refs[i] = NULL;
  }
  if (s->callback_ref != NULL) napi_delete_reference(env, s->callback_ref);
  s->callback_ref = NULL;
  if (s->resource_ref != NULL) napi_delete_reference(env, s->resource_ref);
  s->resource_ref = NULL;
  if (s->async_ctx != NULL) napi_async_destroy(env, s->async_ctx);
  s->async_ctx = NULL;
  if (!s->handle_open && s->cleanup != NULL) {
    napi_remove_async_cleanup_hook(s->cleanup);
    s->cleanup = NULL;
  }
}

// Environment teardown (a worker thread exiting, or the main thread at exit): close and let libuv
// finish the handle before the loop is closed; on_poll_closed removes this hook, which tells Node
// that our part of the teardown is done.
static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  sock *s = (sock *)arg;
  s->cleanup = handle;
  do_close(s);
}

static void on_handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  sock *s = (sock *)data;
  s->finalized = 1;
  // The resource object, strongly referenced until close, holds this handle: so this runs after
  // close() or at teardown (after on_env_cleanup); the do_close here is only a safety net.
  if (!s->closed) do_close(s);
  maybe_free(s);
}

// Sends every slot with a reply; partial sendmmsg continues where it stopped; EAGAIN/ENOBUFS
// drops the rest (never block: the next batch matters more than this one); any other error skips
// the one message that caused it.
static void send_replies(sock *s, uint32_t count) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < count; i++) {
    uint32_t len = s->reply_length[i];
    if (len == 0) continue;
    if (len > s->slot) {
      s->send_errors++;
      continue;
    }
    s->siov[n].iov_base = s->reply + (size_t)i * s->slot;
    s->siov[n].iov_len = len;
    memset(&s->smsgs[n].msg_hdr, 0, sizeof(struct msghdr));
    s->smsgs[n].msg_hdr.msg_name = s->peer + (size_t)i * PEER_STRIDE;
    s->smsgs[n].msg_hdr.msg_namelen =
        s->family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    s->smsgs[n].msg_hdr.msg_iov = &s->siov[n];
    s->smsgs[n].msg_hdr.msg_iovlen = 1;
    n++;
  }
  uint32_t off = 0;
  while (off < n) {
    int r = sendmmsg(s->fd, s->smsgs + off, n - off, MSG_DONTWAIT);
    if (r > 0) {
      off += (uint32_t)r;
      s->sent += r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      s->send_errors += n - off;
      return;
    }
    s->send_errors++;
    off++;
  }
}

static void call_js(sock *s, uint32_t count) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[1], result;
  if (napi_get_reference_value(env, s->callback_ref, &cb) == napi_ok && cb != NULL &&
      napi_get_reference_value(env, s->resource_ref, &recv) == napi_ok && recv != NULL &&
      napi_create_uint32(env, count, &argv[0]) == napi_ok) {
    napi_make_callback(env, s->async_ctx, recv, cb, 1, argv, &result);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      // The wrapper catches handler errors itself; anything here is a bug there: report it as an
      // uncaught exception, as Node does for its own callbacks.
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  sock *s = (sock *)h->data;
  if (status < 0 || s->closed) return;
  for (int b = 0; b < MAX_BATCHES_PER_WAKEUP && !s->closed; b++) {
    for (uint32_t i = 0; i < s->batch; i++) {
      s->rmsgs[i].msg_hdr.msg_namelen = PEER_STRIDE;
      s->rmsgs[i].msg_hdr.msg_flags = 0;
    }
    int r = recvmmsg(s->fd, s->rmsgs, s->batch, MSG_DONTWAIT, NULL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return; /* EAGAIN: drained; other errors (e.g. ICMP-reported): wait for next wake */
    uint32_t count = 0;
    for (uint32_t i = 0; i < (uint32_t)r; i++) {
      if (s->rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        s->truncated++;
        continue;
      }
      uint32_t len = s->rmsgs[i].msg_len;
      if (count != i) { /* compact past a truncated one (rare: only with small slots) */
        memcpy(s->data + (size_t)count * s->slot, s->data + (size_t)i * s->slot, len);
        memcpy(s->peer + (size_t)count * PEER_STRIDE, s->peer + (size_t)i * PEER_STRIDE, PEER_STRIDE);
      }
      s->length[count] = len;
      count++;
    }
    s->received += count;
    if (count > 0) {
      memset(s->reply_length, 0, (size_t)count * sizeof(uint32_t));
      call_js(s, count);
      if (s->closed) return; /* the handler closed the socket */
      send_replies(s, count);
    }
    if ((uint32_t)r < s->batch) return; /* a short batch means the queue is empty */
  }
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value code, message, error;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  const char *name = uv_err_name(-err); /* libuv's codes are -errno on Unix: "EADDRINUSE", … */
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, message, &error);
  napi_value errno_v;
  napi_create_int32(env, -err, &errno_v);
  napi_set_named_property(env, error, "errno", errno_v);
  napi_throw(env, error);
  return NULL;
}

static int parse_address(int family, const char *text, uint16_t port, struct sockaddr_storage *ss,
                         socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    if (inet_pton(AF_INET, text, &a->sin_addr) != 1) return -1;
    *len = sizeof *a;
    return 0;
  }
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  strncpy(buf, text, sizeof buf - 1);
  buf[sizeof buf - 1] = 0;
  char *zone = strchr(buf, '%');
  if (zone != NULL) {
    *zone++ = 0;
    char *end;
    unsigned long idx = strtoul(zone, &end, 10);
    a->sin6_scope_id = (*end == 0 && end != zone) ? (uint32_t)idx : if_nametoindex(zone);
  }
  if (inet_pton(AF_INET6, buf, &a->sin6_addr) != 1) return -1;
  *len = sizeof *a;
  return 0;
}

#define GET_ARGS(n)                                                                                \
  size_t argc = n;                                                                                 \
  napi_value argv[n];                                                                              \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;

static sock *get_sock(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "udp_batch: not a socket handle");
    return NULL;
  }
  return (sock *)p;
}

static napi_value make_arena(napi_env env, size_t size, void **data, napi_ref *ref) {
  napi_value ab;
  if (napi_create_arraybuffer(env, size, data, &ab) != napi_ok) return NULL;
  if (napi_create_reference(env, ab, 1, ref) != napi_ok) return NULL;
  return ab;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  GET_ARGS(8);
  if (argc < 8) {
    napi_throw_type_error(env, NULL, "udp_batch.open: 8 arguments expected");
    return NULL;
  }
  int32_t family_num, port, batch, slot;
  double rcvbuf;
  bool reuse_port;
  char address[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t address_len;
  if (napi_get_value_int32(env, argv[0], &family_num) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], address, sizeof address, &address_len) != napi_ok ||
      napi_get_value_int32(env, argv[2], &port) != napi_ok ||
      napi_get_value_bool(env, argv[3], &reuse_port) != napi_ok ||
      napi_get_value_double(env, argv[4], &rcvbuf) != napi_ok ||
      napi_get_value_int32(env, argv[5], &batch) != napi_ok ||
      napi_get_value_int32(env, argv[6], &slot) != napi_ok) {
    napi_throw_type_error(env, NULL, "udp_batch.open: bad argument types");
    return NULL;
  }
  napi_valuetype cbtype;
  napi_typeof(env, argv[7], &cbtype);
  if (cbtype != napi_function || (family_num != 4 && family_num != 6) || port < 0 || port > 65535 ||
      batch < 1 || batch > 1024 || slot < 1 || slot > 65536) {
    napi_throw_range_error(env, NULL, "udp_batch.open: argument out of range");
    return NULL;
  }
  int family = family_num == 6 ? AF_INET6 : AF_INET;
  struct sockaddr_storage ss;
  socklen_t sslen;
  if (parse_address(family, address, (uint16_t)port, &ss, &sslen) != 0) {
    napi_throw_type_error(env, NULL, "udp_batch.open: invalid address");
    return NULL;
  }

  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int one = 1;
  if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "setsockopt(IPV6_V6ONLY)", e);
  }
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "setsockopt(SO_REUSEPORT)", e);
  }
  if (rcvbuf > 0) {
    int want = rcvbuf > 0x3fffffff ? 0x3fffffff : (int)rcvbuf;
    // As root, SO_RCVBUFFORCE passes net.core.rmem_max; otherwise the kernel caps SO_RCVBUF there.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
  }
  if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind", e);
  }
  struct sockaddr_storage bound;
  socklen_t boundlen = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &boundlen);
  int bound_port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                            : ((struct sockaddr_in *)&bound)->sin_port);
  int got_rcvbuf = 0;
  socklen_t optlen = sizeof got_rcvbuf;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got_rcvbuf, &optlen);

  sock *s = calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  s->env = env;
  s->fd = fd;
  s->family = family;
  s->batch = (uint32_t)batch;
  s->slot = (uint32_t)slot;
  s->rmsgs = calloc((size_t)batch, sizeof(struct mmsghdr));
  s->riov = calloc((size_t)batch, sizeof(struct iovec));
  s->smsgs = calloc((size_t)batch, sizeof(struct mmsghdr));
  s->siov = calloc((size_t)batch, sizeof(struct iovec));
  s->finalized = 0;

  napi_value result, handle, v, abs[5];
  void *ptrs[5];
  size_t sizes[5] = {(size_t)batch * slot, (size_t)batch * slot, (size_t)batch * 4, (size_t)batch * 4,
                     (size_t)batch * PEER_STRIDE};
  int ok = s->rmsgs && s->riov && s->smsgs && s->siov;
  for (int i = 0; ok && i < 5; i++) {
    abs[i] = make_arena(env, sizes[i], &ptrs[i], &s->arena_refs[i]);
    ok = abs[i] != NULL;
  }
  if (ok) {
    s->data = ptrs[0];
    s->reply = ptrs[1];
    s->length = ptrs[2];
    s->reply_length = ptrs[3];
    s->peer = ptrs[4];
    ok = napi_create_external(env, s, on_handle_finalize, NULL, &handle) == napi_ok;
  }
  if (!ok) {
    s->finalized = 1;
    do_close(s);
    maybe_free(s);
    return throw_errno(env, "udp_batch.open: allocation", ENOMEM);
  }
  for (uint32_t i = 0; i < s->batch; i++) {
    s->riov[i].iov_base = s->data + (size_t)i * s->slot;
    s->riov[i].iov_len = s->slot;
    s->rmsgs[i].msg_hdr.msg_name = s->peer + (size_t)i * PEER_STRIDE;
    s->rmsgs[i].msg_hdr.msg_iov = &s->riov[i];
    s->rmsgs[i].msg_hdr.msg_iovlen = 1;
  }

  napi_create_object(env, &result);
  napi_create_reference(env, argv[7], 1, &s->callback_ref);
  napi_create_reference(env, result, 1, &s->resource_ref);
  napi_value name;
  napi_create_string_utf8(env, "UDPBATCH", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, result, name, &s->async_ctx);
  napi_add_async_cleanup_hook(env, on_env_cleanup, s, &s->cleanup);

  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &s->poll, fd) != 0) {
    do_close(s);
    napi_throw_error(env, NULL, "udp_batch.open: uv_poll_init failed");
    return NULL;
  }
  s->poll.data = s;
  s->handle_open = 1;

  napi_set_named_property(env, result, "handle", handle);
  napi_create_int32(env, bound_port, &v);
  napi_set_named_property(env, result, "port", v);
  napi_create_int32(env, got_rcvbuf, &v);
  napi_set_named_property(env, result, "receiveBuffer", v);
  const char *names[5] = {"data", "reply", "length", "replyLength", "peer"};
  for (int i = 0; i < 5; i++) napi_set_named_property(env, result, names[i], abs[i]);
  return result;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  sock *s = get_sock(env, argv[0]);
  if (s == NULL) return NULL;
  if (!s->closed && !s->polling) {
    int r = uv_poll_start(&s->poll, UV_READABLE, on_readable);
    if (r != 0) {
      napi_throw_error(env, NULL, uv_strerror(r));
      return NULL;
    }
    s->polling = 1;
  }
  return NULL;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  sock *s = get_sock(env, argv[0]);
  if (s == NULL) return NULL;
  void *data;
  size_t len;
  napi_typedarray_type type;
  int32_t port;
  char address[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t address_len;
  bool is_ta = false;
  napi_is_typedarray(env, argv[1], &is_ta);
  if (!is_ta || napi_get_typedarray_info(env, argv[1], &type, &len, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array || napi_get_value_int32(env, argv[2], &port) != napi_ok ||
      napi_get_value_string_utf8(env, argv[3], address, sizeof address, &address_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "udp_batch.send: (handle, Uint8Array, port, address) expected");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t sslen;
  if (port < 0 || port > 65535 || parse_address(s->family, address, (uint16_t)port, &ss, &sslen) != 0) {
    napi_throw_type_error(env, NULL, "udp_batch.send: invalid address or port for this socket");
    return NULL;
  }
  int err = 0;
  if (s->closed) {
    err = EBADF;
  } else {
    ssize_t r;
    do r = sendto(s->fd, data, len, MSG_DONTWAIT, (struct sockaddr *)&ss, sslen);
    while (r < 0 && errno == EINTR);
    if (r < 0) err = errno;
  }
  if (err == 0) s->sent++;
  else s->send_errors++;
  napi_value v;
  napi_create_int32(env, err, &v);
  return v;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  sock *s = get_sock(env, argv[0]);
  if (s == NULL) return NULL;
  napi_value arr, v;
  napi_create_array_with_length(env, 4, &arr);
  double vals[4] = {s->received, s->sent, s->truncated, s->send_errors};
  for (uint32_t i = 0; i < 4; i++) {
    napi_create_double(env, vals[i], &v);
    napi_set_element(env, arr, i, v);
  }
  return arr;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  sock *s = get_sock(env, argv[0]);
  if (s == NULL) return NULL;
  do_close(s);
  return NULL;
}

#define SUPPORTED 1
#else /* !__linux__: the wrapper sees supported === false and falls back to dgram */
#define SUPPORTED 0
static napi_value js_unsupported(napi_env env, napi_callback_info info) {
  (void)info;
  napi_throw_error(env, NULL, "udp_batch: only built for Linux");
  return NULL;
}
#define js_open js_unsupported
#define js_start js_unsupported
#define js_send js_unsupported
#define js_stats js_unsupported
#define js_close js_unsupported
#endif

NAPI_MODULE_INIT() {
  napi_value v;
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_get_boolean(env, SUPPORTED, &v);
  napi_set_named_property(env, exports, "supported", v);
  napi_create_uint32(env, PEER_STRIDE, &v);
  napi_set_named_property(env, exports, "peerStride", v);
  return exports;
}
