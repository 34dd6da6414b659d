#include "containerd/oci_archive.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "common/sha256.h"

namespace herd::containerd {

namespace {

constexpr uint64_t kChunk = 1 << 20;

}  // namespace

Result<OciArchive> OciArchive::open(std::shared_ptr<const ByteSource> source) {
  if (!source) return Status::InvalidArgument("archive: no source");
  auto entries = scan_tar(*source);
  if (!entries.ok()) return entries.status();
  OciArchive a;
  a.source_ = std::move(source);
  a.entries_ = std::move(*entries);
  return a;
}

Result<OciArchive> OciArchive::open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("archive " + path.string() + ": no such file");
    return Status::Unavailable("archive " + path.string() + ": " + std::strerror(errno));
  }
  auto src = FdSource::make(std::make_shared<UniqueFd>(fd), path.string());
  if (!src.ok()) return src.status();
  return open(std::shared_ptr<const ByteSource>(std::move(*src)));
}

Result<OciArchive::Entry> OciArchive::file(const std::string& file_name) const {
  auto it = entries_.find(file_name);
  if (it == entries_.end()) return Status::NotFound("archive " + name() + ": no file " + file_name);
  return it->second;
}

Result<OciArchive::Entry> OciArchive::blob(const std::string& digest) const {
  auto p = blob_path(digest);
  if (!p.ok()) return Status::InvalidArgument("archive " + name() + ": " + p.status().message());
  auto it = entries_.find(*p);
  if (it == entries_.end())
    return Status::NotFound("archive " + name() + ": no blob " + short_digest(digest));
  return it->second;
}

Result<std::string> OciArchive::read_file(const std::string& file_name, uint64_t max_size) const {
  auto e = file(file_name);
  if (!e.ok()) return e.status();
  if (e->size > max_size)
    return Status(Code::kOutOfRange, "archive " + name() + ": " + file_name + " has " +
                                         std::to_string(e->size) + " bytes (at most " +
                                         std::to_string(max_size) + ")");
  std::string buf(e->size, '\0');
  if (auto s = source_->read_at(e->offset, buf.data(), e->size); !s.ok()) return s;
  return buf;
}

Status OciArchive::read_range(const Entry& e, uint64_t offset, uint64_t len,
                              std::string& buf) const {
  if (offset > e.size) {
    buf.clear();
    return Status(Code::kOutOfRange, "archive " + name() + ": read at offset " +
                                         std::to_string(offset) + " past an entry of " +
                                         std::to_string(e.size) + " bytes");
  }
  len = std::min(len, e.size - offset);
  buf.resize(len);
  return source_->read_at(e.offset + offset, buf.data(), len);
}

Status OciArchive::read_blob_range(const std::string& digest, uint64_t offset, uint64_t len,
                                   std::string& buf) const {
  auto e = blob(digest);
  if (!e.ok()) return e.status();
  return read_range(*e, offset, len, buf);
}

Result<std::string> OciArchive::read_verified_blob(const std::string& digest, int64_t size,
                                                   uint64_t max_size) const {
  auto e = blob(digest);
  if (!e.ok()) return e.status();
  const std::string what = "archive " + name() + ": blob " + short_digest(digest);
  if (size < 0 || e->size != static_cast<uint64_t>(size))
    return Status::DataLoss(what + " has " + std::to_string(e->size) +
                            " bytes, its descriptor says " + std::to_string(size));
  if (e->size > max_size)
    return Status(Code::kOutOfRange, what + " has " + std::to_string(e->size) + " bytes (at most " +
                                         std::to_string(max_size) + " for a JSON document)");
  std::string buf(e->size, '\0');
  if (auto s = source_->read_at(e->offset, buf.data(), e->size); !s.ok()) return s;
  if ("sha256:" + sha256_hex(buf) != digest)
    return Status::DataLoss(what + ": its bytes do not match the digest");
  return buf;
}

Result<OciArchive::FileDigest> OciArchive::hash_file(const std::string& file_name) const {
  auto e = file(file_name);
  if (!e.ok()) return e.status();
  Sha256 h;
  std::string buf;
  FileDigest out;
  out.size = e->size;
  for (uint64_t off = 0; off < e->size; off += kChunk) {
    if (auto s = read_range(*e, off, kChunk, buf); !s.ok()) return s;
    if (off == 0)
      out.gzip = buf.size() >= 2 && static_cast<unsigned char>(buf[0]) == 0x1f &&
                 static_cast<unsigned char>(buf[1]) == 0x8b;
    h.update(buf);
  }
  out.digest = "sha256:" + to_hex(h.finish());
  return out;
}

Result<std::vector<LayoutEntry>> OciArchive::index() const {
  const std::string what = "archive " + name();
  auto layout = read_file("oci-layout", 4096);
  if (!layout.ok())
    return layout.status().is_not_found()
               ? Status::InvalidArgument(what + ": not an OCI layout (no oci-layout)")
               : layout.status();
  auto idx = read_file("index.json", kMaxJsonDocument);
  if (!idx.ok())
    return idx.status().is_not_found()
               ? Status::InvalidArgument(what + ": not an OCI layout (no index.json)")
               : idx.status();
  return parse_layout_index(*idx, what + ": index.json");
}

Result<std::vector<DockerArchiveImage>> OciArchive::docker_manifest() const {
  const std::string what = "archive " + name();
  auto m = read_file("manifest.json", kMaxJsonDocument);
  if (!m.ok())
    return m.status().is_not_found()
               ? Status::InvalidArgument(what + ": not a docker-save archive (no manifest.json)")
               : m.status();
  return parse_docker_manifest(*m, what + ": manifest.json");
}

}  // namespace herd::containerd
