// LineSplitter: turns a byte stream into log records, one per line.
//
// A record is a line without its '\n'. A line longer than `max_line`
// bytes becomes several records of `max_line` bytes and a shorter last one
// (a line of exactly `max_line` bytes is one record). Bytes after the last
// '\n' wait for more input; flush() emits them (at EOF). Bytes are passed
// through untouched ('\r', NUL and invalid UTF-8 included); an empty line
// is an empty record.
//
// Complete lines inside one feed() are emitted straight from the input
// without copying; only a line split across feed() calls is buffered (at
// most `max_line` bytes).
//
// Thread-safety: a plain value; one stream per splitter.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace herd::systemd {

inline constexpr std::size_t kMaxLogLine = 64 * 1024;

class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line = kMaxLogLine) : max_(max_line ? max_line : 1) {}

  // Calls emit(std::string_view record) for every record completed by
  // `data`, in order.
  template <class Emit>
  void feed(std::string_view data, Emit&& emit) {
    while (!data.empty()) {
      std::size_t nl = data.find('\n');
      bool complete = nl != std::string_view::npos;
      std::string_view rest = data.substr(0, complete ? nl : data.size());
      data.remove_prefix(complete ? nl + 1 : data.size());
      bool emitted = false;
      while (!rest.empty()) {
        if (partial_.size() == max_) {  // full, and the line goes on
          emit(std::string_view(partial_));
          partial_.clear();
        }
        std::size_t take = std::min(rest.size(), max_ - partial_.size());
        if (complete && partial_.empty() && take == rest.size()) {
          emit(rest);  // the whole (rest of the) line at once, no copy
          emitted = true;
          break;
        }
        partial_.append(rest.substr(0, take));
        rest.remove_prefix(take);
      }
      if (complete && !emitted) {
        emit(std::string_view(partial_));
        partial_.clear();
      }
    }
  }

  // Emits the unterminated rest, if any.
  template <class Emit>
  void flush(Emit&& emit) {
    if (partial_.empty()) return;
    emit(std::string_view(partial_));
    partial_.clear();
  }

  std::size_t pending() const { return partial_.size(); }

 private:
  std::size_t max_;
  std::string partial_;
};

}  // namespace herd::systemd
