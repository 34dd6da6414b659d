#include "registry/curl_api.h"

#include <dlfcn.h>

#include <mutex>

#include "common/dl_symbol.h"

namespace herd::registry::curl {

namespace {

constexpr const char* kLibrary = "libcurl.so.4";

struct Loaded {
  Api api{};
  bool ok = false;
  std::string error;
};

bool resolve_into(void* lib, const char* name, auto& out, std::string& error) {
  return dl_symbol(lib, kLibrary, name, out, error);
}

Loaded load() {
  Loaded l;
  // Never dlclose'd: curl's global state lives as long as the process.
  void* lib = ::dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = ::dlerror();
    l.error = std::string("cannot load ") + kLibrary +
              " (Debian's libcurl4): " + (why ? why : "unknown error");
    return l;
  }
  Api& a = l.api;
  CURLcode (*global_init)(long) = nullptr;
  bool ok = resolve_into(lib, "curl_global_init", global_init, l.error) &&
            resolve_into(lib, "curl_multi_init", a.multi_init, l.error) &&
            resolve_into(lib, "curl_multi_setopt", a.multi_setopt, l.error) &&
            resolve_into(lib, "curl_multi_socket_action", a.multi_socket_action, l.error) &&
            resolve_into(lib, "curl_multi_cleanup", a.multi_cleanup, l.error) &&
            resolve_into(lib, "curl_multi_add_handle", a.multi_add_handle, l.error) &&
            resolve_into(lib, "curl_multi_remove_handle", a.multi_remove_handle, l.error) &&
            resolve_into(lib, "curl_multi_info_read", a.multi_info_read, l.error) &&
            resolve_into(lib, "curl_easy_init", a.easy_init, l.error) &&
            resolve_into(lib, "curl_easy_setopt", a.easy_setopt, l.error) &&
            resolve_into(lib, "curl_easy_getinfo", a.easy_getinfo, l.error) &&
            resolve_into(lib, "curl_easy_cleanup", a.easy_cleanup, l.error) &&
            resolve_into(lib, "curl_easy_strerror", a.easy_strerror, l.error) &&
            resolve_into(lib, "curl_easy_pause", a.easy_pause, l.error) &&
            resolve_into(lib, "curl_slist_append", a.slist_append, l.error) &&
            resolve_into(lib, "curl_slist_free_all", a.slist_free_all, l.error);
  if (!ok) return l;
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
