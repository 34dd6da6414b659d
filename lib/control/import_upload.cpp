#include "control/import_upload.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/file_kind.h"
#include "common/log_text.h"
#include "control/limits.h"

namespace herd::control {

namespace {

std::string errno_text(int e) { return std::strerror(e); }

// Creates the missing parents of `dir` (0755, as systemd's StateDirectory=
// would), not `dir` itself.
void make_parents(const std::string& dir) {
  for (size_t slash = dir.find('/', 1); slash != std::string::npos;
       slash = dir.find('/', slash + 1)) {
    std::string parent = dir.substr(0, slash);
    if (::mkdir(parent.c_str(), 0755) == 0) ::chmod(parent.c_str(), 0755);
  }
}

Status prepare_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno == ENOENT) {
    make_parents(dir);
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    int e = errno;
    return Status::FailedPrecondition("cannot create the import directory " + dir + ": " +
                                      errno_text(e));
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    int e = errno;
    return Status::FailedPrecondition("cannot inspect the import directory " + dir + ": " +
                                      errno_text(e));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::FailedPrecondition("the import directory " + dir + " is " +
                                      file_kind(st.st_mode) + ", not a directory");
  }
  if (st.st_uid != ::geteuid()) {
    return Status::FailedPrecondition("the import directory " + dir + " belongs to uid " +
                                      std::to_string(st.st_uid) + ", not herdd's " +
                                      std::to_string(::geteuid()));
  }
  if ((st.st_mode & 07777) != 0700 && ::chmod(dir.c_str(), 0700) != 0) {
    int e = errno;
    return Status::FailedPrecondition("cannot make the import directory " + dir +
                                      " mode 0700: " + errno_text(e));
  }
  return Status::Ok();
}

Result<UniqueFd> unnamed_file(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600));
  if (fd) return fd;
  int e = errno;
  if (e != EOPNOTSUPP && e != EISDIR && e != EINVAL) {
    return Status::FailedPrecondition("cannot create a file in the import directory " + dir + ": " +
                                      errno_text(e));
  }
  std::string tmpl = dir + "/upload-XXXXXX";
  UniqueFd named(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!named) {
    e = errno;
    return Status::FailedPrecondition("cannot create a file in the import directory " + dir + ": " +
                                      errno_text(e));
  }
  ::unlink(tmpl.c_str());
  return named;
}

}  // namespace

Result<ImportUpload> ImportUpload::create(const std::string& dir, uint64_t max_bytes) {
  if (Status s = prepare_dir(dir); !s.ok()) return s;
  Result<UniqueFd> fd = unnamed_file(dir);
  if (!fd.ok()) return fd.status();
  return ImportUpload(std::move(fd).value(), max_bytes);
}

ImportUpload::ImportUpload(UniqueFd file, uint64_t max_bytes)
    : file_(std::move(file)), max_bytes_(max_bytes) {}

Status ImportUpload::feed(const herd::v1::ImportImageRequest& m) {
  if (failed_) return Status::FailedPrecondition("the upload failed already");
  auto fail = [this](Status s) {
    failed_ = true;
    return s;
  };
  switch (m.part_case()) {
    case herd::v1::ImportImageRequest::kHeader: {
      if (named()) return fail(Status::InvalidArgument("the import's header came twice"));
      const std::string& n = m.header().name();
      if (n.empty()) return fail(Status::InvalidArgument("the import's name is empty"));
      if (n.size() > kMaxImportNameBytes) {
        return fail(Status::InvalidArgument(
            "the import's name is " + std::to_string(n.size()) + " bytes, more than the " +
            std::to_string(kMaxImportNameBytes) + " herdd accepts"));
      }
      name_ = printable(n, 1024);
      size_ = m.header().size();
      if (size_ > max_bytes_) {
        return fail(Status(Code::kResourceExhausted,
                           "the archive " + name_ + " has " + std::to_string(size_) +
                               " bytes, more than the " + std::to_string(max_bytes_) +
                               " herdd accepts for an import (import_max_bytes)"));
      }
      return Status::Ok();
    }
    case herd::v1::ImportImageRequest::kData: {
      if (!named()) {
        return fail(Status::InvalidArgument("the first message of an import must be its header"));
      }
      const std::string& d = m.data();
      if (d.size() > size_ - bytes_) {
        return fail(Status::InvalidArgument("the archive " + name_ + " sent more than the " +
                                            std::to_string(size_) + " bytes its header announced"));
      }
      size_t off = 0;
      while (off < d.size()) {
        ssize_t n = ::write(file_.get(), d.data() + off, d.size() - off);
        if (n < 0) {
          if (errno == EINTR) continue;
          int e = errno;
          Code c = (e == ENOSPC || e == EDQUOT || e == EFBIG) ? Code::kResourceExhausted
                                                              : Code::kInternal;
          return fail(Status(c, "writing the upload of " + name_ + ": " + errno_text(e)));
        }
        off += static_cast<size_t>(n);
      }
      bytes_ += d.size();
      return Status::Ok();
    }
    case herd::v1::ImportImageRequest::PART_NOT_SET:
      break;
  }
  return fail(Status::InvalidArgument("an import message carries neither header nor data"));
}

Result<ImportUpload::Archive> ImportUpload::finish() {
  if (failed_) return Status::FailedPrecondition("the upload failed");
  if (!named()) {
    return Status::InvalidArgument("the import stream ended before its header");
  }
  if (bytes_ != size_) {
    return Status::InvalidArgument("the import stream of " + name_ + " ended after " +
                                   std::to_string(bytes_) + " of the " + std::to_string(size_) +
                                   " bytes its header announced");
  }
  if (::lseek(file_.get(), 0, SEEK_SET) != 0) {
    int e = errno;
    return Status::Internal("rewinding the upload of " + name_ + ": " + errno_text(e));
  }
  Archive a;
  a.file = std::move(file_);
  a.name = name_;
  a.bytes = bytes_;
  failed_ = true;  // handed over
  return a;
}

}  // namespace herd::control
