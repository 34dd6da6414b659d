// The registry settings of a config as the Puller takes them: the auth
// file (`registry.auth_file`, else /root/.docker/config.json when it
// exists, else none: anonymous pulls) and containerd's hosts directory.
// Looks only at whether the default auth file exists; reads nothing.
#pragma once

#include <filesystem>
#include <system_error>

#include "config/config.h"
#include "registry/resolver.h"

namespace herd::daemon {

inline registry::RegistryOptions registry_options(const config::RegistryConfig& c) {
  registry::RegistryOptions o;
  o.hosts_dir = c.hosts_dir;
  if (c.auth_file) {
    o.auth_file = *c.auth_file;
  } else {
    std::error_code ec;
    if (std::filesystem::exists(config::kDefaultAuthFile, ec))
      o.auth_file = config::kDefaultAuthFile;
  }
  return o;
}

}  // namespace herd::daemon
