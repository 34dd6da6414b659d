// dl_symbol(): one symbol of a library herd loads on demand with dlopen
// (libcurl for registry pulls, libssl for https probes), as a typed
// function pointer. Pure helper, any thread.
//
// Contract: on success `out` is the symbol and true is returned; on
// failure `out` is untouched, *error says "<library>: no symbol <name>"
// and false is returned. The caller keeps the library handle open for as
// long as it uses the pointer (herd never dlcloses these libraries).
#pragma once

#include <dlfcn.h>

#include <string>

namespace herd {

template <class Fn>
bool dl_symbol(void* lib, const char* library, const char* name, Fn& out, std::string& error) {
  void* sym = ::dlsym(lib, name);
  if (sym == nullptr) {
    error = std::string(library) + ": no symbol " + name;
    return false;
  }
  out = reinterpret_cast<Fn>(sym);
  return true;
}

}  // namespace herd
