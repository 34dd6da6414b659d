// DlLibrary: a library herd loads on demand with dlopen (libcurl for
// registry pulls, libssl for https probes) and its symbols as typed
// function pointers. Pure helper, any thread.
//
// Contract: the constructor opens `soname` (RTLD_NOW | RTLD_LOCAL, never
// closed: the libraries keep global state for the life of the process).
// When it cannot, handle() is null and error() says "cannot load <soname>
// (Debian's <package>): <why>". symbol() sets `out` and returns true, or
// leaves `out` untouched, sets error() to "<soname>: no symbol <name>" and
// returns false, so a chain of symbol() calls joined by && stops at the
// first missing one with its name.
#pragma once

#include <dlfcn.h>

#include <string>

namespace herd {

class DlLibrary {
 public:
  DlLibrary(const char* soname, const char* package) : soname_(soname) {
    handle_ = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) {
      const char* why = ::dlerror();
      error_ = std::string("cannot load ") + soname + " (Debian's " + package +
               "): " + (why ? why : "unknown error");
    }
  }

  void* handle() const { return handle_; }
  const std::string& error() const { return error_; }

  template <class Fn>
  bool symbol(const char* name, Fn& out) {
    void* sym = handle_ ? ::dlsym(handle_, name) : nullptr;
    if (sym == nullptr) {
      error_ = std::string(soname_) + ": no symbol " + name;
      return false;
    }
    out = reinterpret_cast<Fn>(sym);
    return true;
  }

 private:
  const char* soname_;
  void* handle_ = nullptr;
  std::string error_;
};

}  // namespace herd
