#include "registry/curl_api.h"

#include <mutex>

#include "common/dl_library.h"

namespace herd::registry::curl {

namespace {

constexpr const char* kLibrary = "libcurl.so.4";

struct Loaded {
  Api api{};
  bool ok = false;
  std::string error;
};

Loaded load() {
  Loaded l;
  DlLibrary lib(kLibrary, "libcurl4");
  if (!lib.handle()) {
    l.error = lib.error();
    return l;
  }
  Api& a = l.api;
  CURLcode (*global_init)(long) = nullptr;
  bool ok =
      lib.symbol("curl_global_init", global_init) && lib.symbol("curl_multi_init", a.multi_init) &&
      lib.symbol("curl_multi_setopt", a.multi_setopt) &&
      lib.symbol("curl_multi_socket_action", a.multi_socket_action) &&
      lib.symbol("curl_multi_cleanup", a.multi_cleanup) &&
      lib.symbol("curl_multi_add_handle", a.multi_add_handle) &&
      lib.symbol("curl_multi_remove_handle", a.multi_remove_handle) &&
      lib.symbol("curl_multi_info_read", a.multi_info_read) &&
      lib.symbol("curl_easy_init", a.easy_init) && lib.symbol("curl_easy_setopt", a.easy_setopt) &&
      lib.symbol("curl_easy_getinfo", a.easy_getinfo) &&
      lib.symbol("curl_easy_cleanup", a.easy_cleanup) &&
      lib.symbol("curl_easy_strerror", a.easy_strerror) &&
      lib.symbol("curl_easy_pause", a.easy_pause) &&
      lib.symbol("curl_slist_append", a.slist_append) &&
      lib.symbol("curl_slist_free_all", a.slist_free_all);
  if (!ok) {
    l.error = lib.error();
    return l;
  }
  if (CURLcode c = global_init(CURL_GLOBAL_DEFAULT); c != CURLE_OK) {
    l.error = std::string(kLibrary) + ": curl_global_init failed (" + a.easy_strerror(c) + ")";
    return l;
  }
  l.ok = true;
  return l;
}

}  // namespace

const Api* api(std::string* error) {
  static const Loaded loaded = load();  // thread-safe, once
  if (!loaded.ok) {
    if (error) *error = loaded.error;
    return nullptr;
  }
  return &loaded.api;
}

}  // namespace herd::registry::curl
