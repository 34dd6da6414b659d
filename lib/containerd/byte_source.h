// herd::containerd::ByteSource: random read access to the bytes of an
// archive, by offset. FdSource reads a regular file with pread (its size
// fixed by fstat when it is made); MemorySource holds bytes in memory (the
// fuzzers and unit tests).
//
// Every read is checked against size(): a read past the end is an error,
// never a short buffer. Errors name the archive (`name`), never a path the
// source was not given.
//
// Thread-safety: immutable after construction; read_at may be called from
// any thread at once (pread has no file position). FdSource blocks on disk
// I/O: call it from a BlockingPool thread, never from the event loop.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "common/unique_fd.h"

namespace herd::containerd {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Name for messages ("archive <name>: ...").
  virtual const std::string& name() const = 0;
  virtual uint64_t size() const = 0;
  // Fills buf[0, len) from `offset`. kOutOfRange when offset + len passes
  // size(); kDataLoss when the file is shorter than it was; kUnavailable
  // for an I/O error.
  virtual Status read_at(uint64_t offset, char* buf, uint64_t len) const = 0;
};

class FdSource final : public ByteSource {
 public:
  // fstat()s `fd`: anything but a regular file is kInvalidArgument.
  static Result<std::shared_ptr<const FdSource>> make(std::shared_ptr<UniqueFd> fd,
                                                      std::string name);
  const std::string& name() const override { return name_; }
  uint64_t size() const override { return size_; }
  Status read_at(uint64_t offset, char* buf, uint64_t len) const override;

  FdSource(std::shared_ptr<UniqueFd> fd, std::string name, uint64_t size)
      : fd_(std::move(fd)), name_(std::move(name)), size_(size) {}

 private:
  std::shared_ptr<UniqueFd> fd_;
  std::string name_;
  uint64_t size_;
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(std::string bytes, std::string name)
      : bytes_(std::move(bytes)), name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  uint64_t size() const override { return bytes_.size(); }
  Status read_at(uint64_t offset, char* buf, uint64_t len) const override;

 private:
  std::string bytes_;
  std::string name_;
};

}  // namespace herd::containerd
