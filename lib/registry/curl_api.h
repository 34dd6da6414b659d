// herd::registry::curl::api(): libcurl, loaded the first time a registry
// request is made (dlopen of libcurl.so.4), not when herdd starts.
//
// Why: libcurl's shared-library closure (gnutls, krb5, ldap, ssh2, p11-kit,
// nettle, rtmp, ...; herd uses none of them) is mapped and relocated by
// every process that links it: about 4.5 MB of herdd's idle RSS on Debian
// 12, on every node, while most nodes never pull. Loaded on demand, a node
// that pulls pays it from its first pull on; the others never do.
//
// Contract: api() loads and initialises (curl_global_init) libcurl once,
// thread-safe; later calls return the same table. nullptr when it cannot
// be loaded (the package depends on libcurl4, so only a broken install),
// with the reason in *error. The table's functions are libcurl's own, with
// their documented signatures (the variadic setopt/getinfo included).
#pragma once

#include <curl/curl.h>

#include <string>

namespace herd::registry::curl {

struct Api {
  CURLM* (*multi_init)();
  CURLMcode (*multi_setopt)(CURLM*, CURLMoption, ...);
  CURLMcode (*multi_socket_action)(CURLM*, curl_socket_t, int, int*);
  CURLMcode (*multi_cleanup)(CURLM*);
  CURLMcode (*multi_add_handle)(CURLM*, CURL*);
  CURLMcode (*multi_remove_handle)(CURLM*, CURL*);
  CURLMsg* (*multi_info_read)(CURLM*, int*);
  CURL* (*easy_init)();
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  void (*easy_cleanup)(CURL*);
  const char* (*easy_strerror)(CURLcode);
  CURLcode (*easy_pause)(CURL*, int);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
};

// The loaded library's table, or nullptr (and *error, when given).
const Api* api(std::string* error = nullptr);

}  // namespace herd::registry::curl
