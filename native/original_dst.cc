// SO_ORIGINAL_DST for Weft's transparent capture (issue 10): the destination a connection had
// before an iptables REDIRECT rewrote it to the proxy's capture port, read from conntrack with
// getsockopt(SOL_IP, SO_ORIGINAL_DST) (IPv4) or getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST) (IPv6),
// exactly what Envoy's original_dst listener filter does. Plain N-API (node_api.h): no
// dependency, ABI-stable across Node versions.
//
//   originalDestination(fd: number): { address: string, port: number } | null
//     null when the connection was not redirected (no conntrack NAT entry: ENOENT); throws with
//     the errno text for any other failure.
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

static napi_value Throw(napi_env env, const char* what, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s (errno %d)", what, strerror(err), err);
  napi_throw_error(env, "ERR_WEFT_ORIGINAL_DST", message);
  return nullptr;
}

static napi_value Result(napi_env env, const char* address, unsigned port) {
  napi_value obj, addr, p;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, address, NAPI_AUTO_LENGTH, &addr);
  napi_create_uint32(env, port, &p);
  napi_set_named_property(env, obj, "address", addr);
  napi_set_named_property(env, obj, "port", p);
  return obj;
}

static napi_value OriginalDestination(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "originalDestination(fd): fd must be a non-negative integer");
    return nullptr;
  }
  struct sockaddr_storage local;
  socklen_t len = sizeof local;
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&local), &len) != 0) return Throw(env, "getsockname", errno);

  napi_value null_value;
  napi_get_null(env, &null_value);
  char text[INET6_ADDRSTRLEN];
  if (local.ss_family == AF_INET6) {
    struct sockaddr_in6 dst;
    socklen_t dlen = sizeof dst;
    memset(&dst, 0, sizeof dst);
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &dlen) == 0) {
      // An IPv4-mapped address on a dual-stack socket is reported as the IPv4 address.
      if (IN6_IS_ADDR_V4MAPPED(&dst.sin6_addr)) {
        inet_ntop(AF_INET, &dst.sin6_addr.s6_addr[12], text, sizeof text);
      } else {
        inet_ntop(AF_INET6, &dst.sin6_addr, text, sizeof text);
      }
      return Result(env, text, ntohs(dst.sin6_port));
    }
    int err = errno;
    if (err != ENOENT && err != ENOPROTOOPT) return Throw(env, "getsockopt(IP6T_SO_ORIGINAL_DST)", err);
    // A v4-mapped connection on an IPv6 socket is tracked as IPv4: ask that table too.
    struct sockaddr_in dst4;
    socklen_t dlen4 = sizeof dst4;
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst4, &dlen4) == 0) {
      inet_ntop(AF_INET, &dst4.sin_addr, text, sizeof text);
      return Result(env, text, ntohs(dst4.sin_port));
    }
    return null_value;
  }
  if (local.ss_family != AF_INET) return null_value;
  struct sockaddr_in dst;
  socklen_t dlen = sizeof dst;
  memset(&dst, 0, sizeof dst);
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &dlen) != 0) {
    int err = errno;
    if (err == ENOENT) return null_value;
    return Throw(env, "getsockopt(SO_ORIGINAL_DST)", err);
  }
  inet_ntop(AF_INET, &dst.sin_addr, text, sizeof text);
  return Result(env, text, ntohs(dst.sin_port));
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "originalDestination", NAPI_AUTO_LENGTH, OriginalDestination, nullptr, &fn);
  napi_set_named_property(env, exports, "originalDestination", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
