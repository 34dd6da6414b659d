#include "containerd/tar_reader.h"

#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

namespace herd::containerd {

namespace {

constexpr uint64_t kBlock = 512;

// A name from the archive, safe to put in a message: control bytes
// escaped, at most 200 characters.
std::string printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && out.size() < 200; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (out.size() >= 200) out += "...";
  return out;
}

std::string field(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

class Scanner {
 public:
  explicit Scanner(const ByteSource& src) : src_(src) {}

  Result<TarIndex> run();

 private:
  struct Symlink {
    std::string target;  // normalised, relative to the archive root
    uint64_t header = 0;
  };
  // Extension records that apply to the next entry.
  struct Pending {
    std::optional<std::string> path;
    std::optional<std::string> linkpath;
    std::optional<uint64_t> size;
  };

  std::string at(uint64_t offset) const {
    return "archive " + src_.name() + ": tar header at offset " + std::to_string(offset);
  }
  std::string entry_at(const std::string& name, uint64_t offset) const {
    return "archive " + src_.name() + ": tar entry '" + printable(name) + "' at offset " +
           std::to_string(offset);
  }

  Status parse_octal(const char* p, size_t n, uint64_t& out, const char* what, uint64_t pos);
  Status parse_number(const char* p, size_t n, uint64_t& out, const char* what, uint64_t pos);
  Status parse_pax(const std::string& data, bool global, uint64_t pos);
  Status read_extension(uint64_t data, uint64_t size, uint64_t limit, uint64_t pos,
                        std::string& out);
  Status resolve_symlinks();

  const ByteSource& src_;
  TarIndex index_;
  std::map<std::string, Symlink> symlinks_;
  Pending pending_;
  size_t name_bytes_ = 0;
};

Status Scanner::parse_octal(const char* p, size_t n, uint64_t& out, const char* what,
                            uint64_t pos) {
  out = 0;
  size_t i = 0;
  while (i < n && p[i] == ' ') ++i;
  size_t digits = 0;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i, ++digits)
    out = out * 8 + static_cast<uint64_t>(p[i] - '0');  // at most 12 digits: no overflow
  for (; i < n; ++i)
    if (p[i] != ' ' && p[i] != '\0')
      return Status::DataLoss(at(pos) + ": " + what + " field is not an octal number");
  (void)digits;  // an empty field is 0
  return Status::Ok();
}

// Octal, or GNU base-256 when the first byte's high bit is set.
Status Scanner::parse_number(const char* p, size_t n, uint64_t& out, const char* what,
                             uint64_t pos) {
  const auto first = static_cast<unsigned char>(p[0]);
  if (!(first & 0x80)) return parse_octal(p, n, out, what, pos);
  if (first & 0x40)
    return Status::DataLoss(at(pos) + ": " + what + " field is a negative base-256 number");
  out = first & 0x3f;
  for (size_t i = 1; i < n; ++i) {
    if (out > (UINT64_MAX >> 8))
      return Status::DataLoss(at(pos) + ": " + what + " field overflows 64 bits (base-256)");
    out = (out << 8) | static_cast<unsigned char>(p[i]);
  }
  return Status::Ok();
}

Status Scanner::read_extension(uint64_t data, uint64_t size, uint64_t limit, uint64_t pos,
                               std::string& out) {
  if (size > limit)
    return Status::DataLoss(at(pos) + ": extension header of " + std::to_string(size) +
                            " bytes (at most " + std::to_string(limit) + ")");
  out.assign(size, '\0');
  return src_.read_at(data, out.data(), size);
}

// Records "<len> <key>=<value>\n", <len> counting the whole record.
Status Scanner::parse_pax(const std::string& data, bool global, uint64_t pos) {
  const std::string where = at(pos) + ": pax header";
  size_t p = 0;
  while (p < data.size()) {
    size_t j = p;
    while (j < data.size() && j - p < 20 && data[j] >= '0' && data[j] <= '9') ++j;
    const size_t digits = j - p;
    if (digits == 0 || digits >= 20 || j >= data.size() || data[j] != ' ')
      return Status::DataLoss(where + ": record at byte " + std::to_string(p) + ": its length '" +
                              printable(data.substr(p, 8)) +
                              "' is not a positive decimal followed by a space");
    uint64_t len = 0;
    for (size_t k = p; k < j; ++k) len = len * 10 + static_cast<uint64_t>(data[k] - '0');
    // The smallest record is "<digits> k=\n".
    if (len < digits + 4 || len > data.size() - p)
      return Status::DataLoss(where + ": record at byte " + std::to_string(p) + " has length " +
                              std::to_string(len) + ", which does not fit the header's " +
                              std::to_string(data.size()) + " bytes");
    const size_t end = p + static_cast<size_t>(len);
    if (data[end - 1] != '\n')
      return Status::DataLoss(where + ": record at byte " + std::to_string(p) +
                              " does not end with a newline");
    std::string_view kv(data.data() + j + 1, end - 1 - (j + 1));
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return Status::DataLoss(where + ": record at byte " + std::to_string(p) +
                              " is not key=value");
    const std::string_view key = kv.substr(0, eq);
    const std::string_view value = kv.substr(eq + 1);
    if (key.substr(0, 10) == "GNU.sparse")
      return Status::DataLoss(where + ": GNU sparse files are not supported");
    if (!global) {
      if (key == "path") {
        pending_.path = std::string(value);
      } else if (key == "linkpath") {
        pending_.linkpath = std::string(value);
      } else if (key == "size") {
        if (value.empty() || value.size() > 19)
          return Status::DataLoss(where + ": size '" + printable(value) + "' is not a number");
        uint64_t v = 0;
        for (char c : value) {
          if (c < '0' || c > '9')
            return Status::DataLoss(where + ": size '" + printable(value) + "' is not a number");
          v = v * 10 + static_cast<uint64_t>(c - '0');
        }
        pending_.size = v;
      }
    }
    p = end;
  }
  return Status::Ok();
}

Result<TarIndex> Scanner::run() {
  const uint64_t file_size = src_.size();
  uint64_t pos = 0;
  size_t headers = 0;
  char hdr[kBlock];
  while (pos < file_size) {
    if (file_size - pos < kBlock)
      return Status::DataLoss(at(pos) + ": truncated (" + std::to_string(file_size - pos) +
                              " bytes left)");
    if (auto s = src_.read_at(pos, hdr, kBlock); !s.ok()) return s;
    bool zero = true;
    for (char c : hdr) {
      if (c != 0) {
        zero = false;
        break;
      }
    }
    if (zero) break;  // end-of-archive marker
    if (++headers > kMaxTarEntries)
      return Status::DataLoss(at(pos) + ": more than " + std::to_string(kMaxTarEntries) +
                              " entries");

    uint64_t checksum = 0;
    if (auto s = parse_octal(hdr + 148, 8, checksum, "checksum", pos); !s.ok()) return s;
    uint64_t usum = 0;
    int64_t ssum = 0;
    for (size_t i = 0; i < kBlock; ++i) {
      const bool in_field = i >= 148 && i < 156;
      usum += in_field ? ' ' : static_cast<unsigned char>(hdr[i]);
      ssum += in_field ? ' ' : static_cast<signed char>(hdr[i]);
    }
    if (checksum != usum && static_cast<int64_t>(checksum) != ssum)
      return Status::DataLoss(at(pos) + ": bad header checksum");

    const char type = hdr[156];
    const bool extension = type == 'L' || type == 'K' || type == 'x' || type == 'g';
    uint64_t size = 0;
    if (auto s = parse_number(hdr + 124, 12, size, "size", pos); !s.ok()) return s;
    if (!extension && pending_.size) size = *pending_.size;
    const uint64_t data = pos + kBlock;
    if (size > file_size - std::min(data, file_size))
      return Status::DataLoss(at(pos) + ": entry of " + std::to_string(size) +
                              " bytes runs past the end of the archive (" +
                              std::to_string(file_size) + " bytes)");
    // size <= file_size: no overflow; next > pos always.
    const uint64_t next = data + (size + kBlock - 1) / kBlock * kBlock;

    if (extension) {
      std::string buf;
      const uint64_t limit = (type == 'L' || type == 'K') ? kMaxTarName + 1 : kMaxPaxHeader;
      if (auto s = read_extension(data, size, limit, pos, buf); !s.ok()) return s;
      if (type == 'L' || type == 'K') {
        std::string name(buf.c_str());  // up to the first NUL
        (type == 'L' ? pending_.path : pending_.linkpath) = std::move(name);
      } else if (auto s = parse_pax(buf, type == 'g', pos); !s.ok()) {
        return s;
      }
      pos = next;
      continue;
    }

    std::string raw_name;
    if (pending_.path) {
      raw_name = *pending_.path;
    } else {
      raw_name = field(hdr, 100);
      // POSIX ustar ("ustar\0") has a prefix; GNU ("ustar  ") does not.
      if (std::memcmp(hdr + 257, "ustar\0", 6) == 0) {
        std::string prefix = field(hdr + 345, 155);
        if (!prefix.empty()) raw_name = prefix + "/" + raw_name;
      }
    }
    std::string raw_link = pending_.linkpath ? *pending_.linkpath : field(hdr + 157, 100);
    pending_ = Pending{};
    if (raw_name.size() > kMaxTarName || raw_link.size() > kMaxTarName)
      return Status::DataLoss(at(pos) + ": name longer than " + std::to_string(kMaxTarName) +
                              " bytes");
    auto name = normalize_tar_path(raw_name);
    if (!name.ok())
      return Status::DataLoss(entry_at(raw_name, pos) + ": " + name.status().message());
    name_bytes_ += name->size() + raw_link.size();
    if (name_bytes_ > kMaxTarNameBytes)
      return Status::DataLoss(at(pos) + ": the entries' names exceed " +
                              std::to_string(kMaxTarNameBytes) + " bytes in all");

    switch (type) {
      case '0':
      case '\0':
      case '7':
        if (name->empty()) return Status::DataLoss(entry_at(raw_name, pos) + ": empty file name");
        symlinks_.erase(*name);
        index_[*name] = TarEntry{data, size, pos};
        break;
      case '5':
        break;  // directories carry no data
      case '1': {
        auto target = normalize_tar_path(raw_link);
        auto it = target.ok() ? index_.find(*target) : index_.end();
        if (it == index_.end())
          return Status::DataLoss(entry_at(raw_name, pos) + ": hard link to '" +
                                  printable(raw_link) +
                                  "', which is no earlier regular file of the archive");
        if (name->empty()) return Status::DataLoss(entry_at(raw_name, pos) + ": empty file name");
        TarEntry e = it->second;
        e.header = pos;
        symlinks_.erase(*name);
        index_[*name] = e;
        break;
      }
      case '2': {
        if (name->empty() || raw_link.empty())
          return Status::DataLoss(entry_at(raw_name, pos) + ": symlink without a name or target");
        // Relative to the link's directory; absolute means the archive root.
        std::string joined = raw_link;
        if (raw_link.front() != '/') {
          const auto slash = name->rfind('/');
          if (slash != std::string::npos) joined = name->substr(0, slash) + "/" + raw_link;
        }
        auto target = normalize_tar_path(joined);
        if (!target.ok())
          return Status::DataLoss(entry_at(raw_name, pos) + ": symlink to '" + printable(raw_link) +
                                  "' points outside the archive");
        index_.erase(*name);
        symlinks_[*name] = Symlink{std::move(*target), pos};
        break;
      }
      case '3':
        return Status::DataLoss(entry_at(raw_name, pos) + ": character devices are not allowed");
      case '4':
        return Status::DataLoss(entry_at(raw_name, pos) + ": block devices are not allowed");
      case '6':
        return Status::DataLoss(entry_at(raw_name, pos) + ": FIFOs are not allowed");
      case 'S':
        return Status::DataLoss(entry_at(raw_name, pos) + ": GNU sparse files are not supported");
      default: {
        char t[8];
        const auto c = static_cast<unsigned char>(type);
        if (c >= 0x21 && c < 0x7f)
          std::snprintf(t, sizeof t, "'%c'", c);
        else
          std::snprintf(t, sizeof t, "0x%02x", c);
        return Status::DataLoss(entry_at(raw_name, pos) + ": unsupported entry type " + t);
      }
    }
    pos = next;
  }
  if (auto s = resolve_symlinks(); !s.ok()) return s;
  return std::move(index_);
}

Status Scanner::resolve_symlinks() {
  for (const auto& [name, link] : symlinks_) {
    const std::string* target = &link.target;
    for (int hop = 0;; ++hop) {
      if (auto it = index_.find(*target); it != index_.end()) {
        TarEntry e = it->second;
        e.header = link.header;
        index_.emplace(name, e);  // a regular entry of that name was erased
        break;
      }
      auto next = symlinks_.find(*target);
      if (next == symlinks_.end())
        return Status::DataLoss(entry_at(name, link.header) + ": symlink to '" +
                                printable(*target) + "', which is no regular file of the archive");
      if (hop >= kMaxSymlinkHops)
        return Status::DataLoss(entry_at(name, link.header) + ": more than " +
                                std::to_string(kMaxSymlinkHops) + " symlink hops (a loop?)");
      target = &next->second.target;
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> normalize_tar_path(std::string_view name) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('/', i);
    if (j == std::string_view::npos) j = name.size();
    std::string_view part = name.substr(i, j - i);
    if (part == "..") {
      if (parts.empty()) return Status::InvalidArgument("path climbs above the archive root");
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += '/';
    out += p;
  }
  return out;
}

Result<TarIndex> scan_tar(const ByteSource& source) { return Scanner(source).run(); }

}  // namespace herd::containerd
