#include "containerd/oci_archive.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace herd::containerd {

namespace {

constexpr size_t kBlock = 512;

// Parses a tar numeric field: octal, or GNU base-256 when the high bit is set.
bool parse_number(const char* p, size_t n, uint64_t& out) {
  out = 0;
  if (n > 0 && (static_cast<unsigned char>(p[0]) & 0x80)) {
    for (size_t i = 1; i < n; ++i) out = (out << 8) | static_cast<unsigned char>(p[i]);
    return true;
  }
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\0')) ++i;
  bool any = false;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
    out = out * 8 + static_cast<uint64_t>(p[i] - '0');
    any = true;
  }
  return any || i == n;
}

std::string field(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

std::string clean_name(std::string name) {
  while (name.rfind("./", 0) == 0) name.erase(0, 2);
  return name;
}

Status errno_status(const std::string& what) {
  return Status::Unavailable(what + ": " + std::strerror(errno));
}

Status pread_all(int fd, char* buf, uint64_t len, uint64_t offset, const std::string& what) {
  uint64_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, buf + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status(what);
    }
    if (n == 0) return Status::DataLoss(what + ": unexpected end of file");
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// Value of the "path" record of a pax extended header, if any.
std::string pax_path(const std::string& data) {
  size_t pos = 0;
  while (pos < data.size()) {
    size_t sp = data.find(' ', pos);
    if (sp == std::string::npos) break;
    size_t len = std::strtoul(data.c_str() + pos, nullptr, 10);
    if (len == 0 || pos + len > data.size()) break;
    std::string rec = data.substr(sp + 1, pos + len - sp - 2);  // drop trailing '\n'
    if (rec.rfind("path=", 0) == 0) return rec.substr(5);
    pos += len;
  }
  return {};
}

}  // namespace

OciArchive::OciArchive(OciArchive&& o) noexcept
    : path_(std::move(o.path_)), fd_(o.fd_), entries_(std::move(o.entries_)) {
  o.fd_ = -1;
}

OciArchive& OciArchive::operator=(OciArchive&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    fd_ = o.fd_;
    entries_ = std::move(o.entries_);
    o.fd_ = -1;
  }
  return *this;
}

OciArchive::~OciArchive() {
  if (fd_ >= 0) ::close(fd_);
}

Result<OciArchive> OciArchive::open(const std::filesystem::path& path) {
  OciArchive a;
  a.path_ = path;
  const std::string what = "archive " + path.string();
  a.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (a.fd_ < 0) {
    if (errno == ENOENT) return Status::NotFound(what + ": no such file");
    return errno_status(what);
  }
  uint64_t pos = 0;
  std::string long_name;
  char hdr[kBlock];
  for (;;) {
    ssize_t n = ::pread(a.fd_, hdr, kBlock, static_cast<off_t>(pos));
    if (n < 0) return errno_status(what);
    if (n == 0) break;  // tolerate a missing end-of-archive marker
    if (static_cast<size_t>(n) < kBlock) return Status::DataLoss(what + ": truncated tar header");
    bool zero = true;
    for (char c : hdr) {
      if (c != 0) {
        zero = false;
        break;
      }
    }
    if (zero) break;  // end of archive

    uint64_t checksum = 0, sum = 0, size = 0;
    if (!parse_number(hdr + 148, 8, checksum) || !parse_number(hdr + 124, 12, size))
      return Status::DataLoss(what + ": malformed tar header at offset " + std::to_string(pos));
    for (size_t i = 0; i < kBlock; ++i)
      sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(hdr[i]);
    if (sum != checksum)
      return Status::DataLoss(what + ": bad tar header checksum at offset " + std::to_string(pos));

    const char type = hdr[156];
    const uint64_t data = pos + kBlock;
    const uint64_t next = data + (size + kBlock - 1) / kBlock * kBlock;
    std::string name = field(hdr, 100);
    if (std::memcmp(hdr + 257, "ustar", 5) == 0) {
      std::string prefix = field(hdr + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    if (type == 'L' || type == 'x') {  // GNU long name / pax header for the next entry
      if (size > (1 << 20)) return Status::DataLoss(what + ": oversized tar extension header");
      std::string buf(size, '\0');
      if (auto s = pread_all(a.fd_, buf.data(), size, data, what); !s.ok()) return s;
      long_name = type == 'L' ? std::string(buf.c_str()) : pax_path(buf);
    } else {
      if (!long_name.empty()) name = std::move(long_name);
      long_name.clear();
      if (type == '0' || type == '\0') a.entries_[clean_name(name)] = Entry{data, size};
    }
    pos = next;
  }
  return a;
}

Result<OciArchive::Entry> OciArchive::blob(const std::string& digest) const {
  auto p = blob_path(digest);
  if (!p.ok()) return p.status();
  auto it = entries_.find(*p);
  if (it == entries_.end())
    return Status::NotFound("archive " + path_.string() + ": no blob " + digest);
  return it->second;
}

Result<std::string> OciArchive::read_file(const std::string& name, uint64_t max_size) const {
  auto it = entries_.find(name);
  if (it == entries_.end())
    return Status::NotFound("archive " + path_.string() + ": no file " + name);
  if (it->second.size > max_size)
    return Status(Code::kOutOfRange, "archive " + path_.string() + ": " + name + " is larger than " +
                                         std::to_string(max_size) + " bytes");
  std::string buf(it->second.size, '\0');
  if (auto s = pread_all(fd_, buf.data(), it->second.size, it->second.offset,
                         "archive " + path_.string() + ": " + name);
      !s.ok())
    return s;
  return buf;
}

Status OciArchive::read_blob_range(const std::string& digest, uint64_t offset, uint64_t len,
                                   std::string& buf) const {
  auto e = blob(digest);
  if (!e.ok()) return e.status();
  if (offset > e->size) return Status(Code::kOutOfRange, "blob " + digest + ": offset past end");
  len = std::min(len, e->size - offset);
  buf.resize(len);
  return pread_all(fd_, buf.data(), len, e->offset + offset,
                   "archive " + path_.string() + ": blob " + digest);
}

Result<std::vector<OciArchive::IndexEntry>> OciArchive::index() const {
  const std::string what = "archive " + path_.string();
  auto layout = read_file("oci-layout");
  if (!layout.ok()) return Status::InvalidArgument(what + ": not an OCI layout (no oci-layout)");
  auto idx = read_file("index.json");
  if (!idx.ok()) return Status::InvalidArgument(what + ": not an OCI layout (no index.json)");
  auto j = nlohmann::json::parse(*idx, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("manifests") ||
      !j["manifests"].is_array())
    return Status::InvalidArgument(what + ": index.json has no manifests array");
  std::vector<IndexEntry> out;
  for (const auto& m : j["manifests"]) {
    if (!m.is_object() || !m.contains("digest") || !m["digest"].is_string() ||
        !m.contains("mediaType") || !m["mediaType"].is_string() || !m.contains("size") ||
        !m["size"].is_number_integer())
      return Status::InvalidArgument(what + ": index.json: malformed manifest descriptor");
    IndexEntry e;
    e.media_type = m["mediaType"].get<std::string>();
    e.digest = m["digest"].get<std::string>();
    e.size = m["size"].get<int64_t>();
    if (m.contains("annotations") && m["annotations"].is_object()) {
      const auto& a = m["annotations"];
      if (a.contains("io.containerd.image.name") && a["io.containerd.image.name"].is_string()) {
        e.image_name = a["io.containerd.image.name"].get<std::string>();
      } else if (a.contains("org.opencontainers.image.ref.name") &&
                 a["org.opencontainers.image.ref.name"].is_string()) {
        std::string ref = a["org.opencontainers.image.ref.name"].get<std::string>();
        // A bare tag ("latest") names no image; a full reference does.
        if (ref.find('/') != std::string::npos || ref.find(':') != std::string::npos)
          e.image_name = ref;
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::string> blob_path(const std::string& digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (digest.rfind(kPrefix, 0) != 0 || digest.size() != kPrefix.size() + 64)
    return Status::InvalidArgument("malformed digest \"" + digest + "\"");
  for (size_t i = kPrefix.size(); i < digest.size(); ++i) {
    char c = digest[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return Status::InvalidArgument("malformed digest \"" + digest + "\"");
  }
  return "blobs/sha256/" + digest.substr(kPrefix.size());
}

}  // namespace herd::containerd
