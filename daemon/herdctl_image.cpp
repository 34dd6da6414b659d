#include "daemon/herdctl_image.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/file_kind.h"
#include "common/log_text.h"
#include "common/unique_fd.h"
#include "control/limits.h"
#include "herd/v1/control.grpc.pb.h"

namespace herd::ctl {

namespace {

namespace v1 = herd::v1;
using json = nlohmann::json;
using SysClock = std::chrono::system_clock;
using Steady = std::chrono::steady_clock;

// Opens FILE for an import; exit code and message when it is unusable.
std::optional<int> open_archive(const std::string& file, herd::UniqueFd& fd, uint64_t& size) {
  fd.reset(::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    int e = errno;
    std::cerr << "herdctl: cannot open " << herd::printable(file, 1024) << ": " << std::strerror(e)
              << "\n";
    return kExitError;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    int e = errno;
    std::cerr << "herdctl: cannot inspect " << herd::printable(file, 1024) << ": "
              << std::strerror(e) << "\n";
    return kExitError;
  }
  if (!S_ISREG(st.st_mode)) {
    std::cerr << "herdctl: " << herd::printable(file, 1024) << " is " << herd::file_kind(st.st_mode)
              << ", not a regular file; an image archive must be one\n";
    return kExitError;
  }
  size = static_cast<uint64_t>(st.st_size);
  return std::nullopt;
}

}  // namespace

namespace {

// What herdctl shows of an import's upload: a bar redrawn in place on a
// terminal, a line per 10% otherwise, JSON lines with --json. herdd's
// import itself (after the upload) reports no progress of its own.
class UploadView {
 public:
  enum class Mode { kTerminal, kPlain, kJson };
  UploadView(Mode mode, std::string name, uint64_t total)
      : mode_(mode), name_(std::move(name)), total_(total) {}

  void sent(uint64_t done) {
    const auto now = std::chrono::steady_clock::now();
    const bool last = done >= total_;
    if (mode_ == Mode::kJson) {
      if (!last && now - last_ < std::chrono::milliseconds(250)) return;
      last_ = now;
      json j = {{"event", "upload"}, {"done", done}, {"total", total_}};
      std::cout << j.dump() << std::endl;
      return;
    }
    if (mode_ == Mode::kTerminal) {
      if (!last && now - last_ < std::chrono::milliseconds(100)) return;
      last_ = now;
      constexpr uint64_t kWidth = 30;
      const uint64_t filled = total_ > 0 ? done * kWidth / total_ : kWidth;
      std::string bar = "[" + std::string(filled, '=');
      if (filled < kWidth) bar += ">" + std::string(kWidth - filled - 1, ' ');
      bar += "]";
      std::cout << "\r\x1b[2Kuploading " << name_ << "  " << bar << "  " << human_bytes(done)
                << " / " << human_bytes(total_) << (last ? "\n" : "") << std::flush;
      return;
    }
    const uint64_t tenth = total_ > 0 ? done * 10 / total_ : 10;
    if (tenth == shown_tenth_ && !last) return;
    if (last && shown_tenth_ == 10) return;
    shown_tenth_ = tenth;
    std::cout << "uploading " << name_ << ": " << human_bytes(done) << " / " << human_bytes(total_)
              << " (" << tenth * 10 << "%)" << std::endl;
  }

  void importing() {
    if (mode_ != Mode::kJson) std::cout << "importing " << name_ << " in herdd ..." << std::endl;
  }

  void result(const v1::ImportImageResponse& r, const std::string& file) {
    if (mode_ == Mode::kJson) {
      json names = json::array();
      for (const std::string& n : r.images()) names.push_back(n);
      json j = {{"event", "result"}, {"images", names}};
      std::cout << j.dump() << std::endl;
      return;
    }
    for (const std::string& n : r.images()) std::cout << "imported " << n << "\n";
    if (r.images_size() == 0) std::cout << "imported no named image from " << file << "\n";
  }

 private:
  Mode mode_;
  std::string name_;
  uint64_t total_;
  std::chrono::steady_clock::time_point last_{};
  uint64_t shown_tenth_ = 0;
};

}  // namespace

int cmd_import(const Target& t, const std::string& file, bool as_json) {
  herd::UniqueFd fd;
  uint64_t size = 0;
  if (std::optional<int> rc = open_archive(file, fd, size)) return *rc;
  // A SIGPIPE must not end herdctl when herdd goes away mid-stream.
  ::signal(SIGPIPE, SIG_IGN);

  auto stub = v1::Control::NewStub(channel_to(t));
  grpc::ClientContext ctx;
  set_long_deadline(ctx, t, herd::control::kDefaultImportDeadline);
  v1::ImportImageResponse resp;
  std::unique_ptr<grpc::ClientWriter<v1::ImportImageRequest>> writer =
      stub->ImportImage(&ctx, &resp);
  v1::ImportImageRequest msg;
  msg.mutable_header()->set_name(herd::printable(file, herd::control::kMaxImportNameBytes / 2));
  msg.mutable_header()->set_size(size);
  bool open = writer->Write(msg);
  UploadView view(as_json                   ? UploadView::Mode::kJson
                  : ::isatty(STDOUT_FILENO) ? UploadView::Mode::kTerminal
                                            : UploadView::Mode::kPlain,
                  herd::printable(file, 200), size);
  std::string chunk(herd::control::kImportChunkBytes, '\0');
  uint64_t sent = 0;
  std::optional<std::string> local_error;
  while (open && sent < size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), size - sent));
    ssize_t n = ::read(fd.get(), chunk.data(), want);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      local_error = n == 0 ? "it shrank while being read (" + std::to_string(sent) + " of " +
                                 std::to_string(size) + " bytes)"
                           : std::string(std::strerror(e));
      break;
    }
    v1::ImportImageRequest data;
    data.set_data(chunk.data(), static_cast<size_t>(n));
    open = writer->Write(data);
    sent += static_cast<uint64_t>(n);
    view.sent(sent);
  }
  if (local_error) {
    ctx.TryCancel();
    writer->Finish();
    std::cerr << "herdctl: reading " << herd::printable(file, 1024) << ": " << *local_error << "\n";
    return kExitError;
  }
  if (open) writer->WritesDone();
  if (open) view.importing();
  grpc::Status s = writer->Finish();
  if (!s.ok()) return report(s, ctx, t);
  view.result(resp, file);
  return kExitOk;
}

std::string human_bytes(uint64_t n) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (n < 1024) return std::to_string(n) + " B";
  double v = static_cast<double>(n);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kUnits)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf,
                v < 10    ? "%.2f %s"
                : v < 100 ? "%.1f %s"
                          : "%.0f %s",
                v, kUnits[u]);
  return buf;
}

std::string short_digest(const std::string& digest) {
  size_t colon = digest.find(':');
  std::string hex = colon == std::string::npos ? digest : digest.substr(colon + 1);
  return hex.size() > 12 ? hex.substr(0, 12) : hex;
}

namespace {

json progress_json(const v1::BlobProgress& p) {
  return {{"event", "progress"},     {"kind", p.kind()}, {"digest", p.digest()},
          {"total", p.total()},      {"done", p.done()}, {"present", p.present()},
          {"finished", p.finished()}};
}

json result_json(const v1::PullResult& r) {
  return {{"event", "result"},
          {"name", r.name()},
          {"digest", r.target_digest()},
          {"media_type", r.target_media_type()},
          {"blobs_fetched", r.blobs_fetched()},
          {"blobs_present", r.blobs_present()},
          {"bytes_fetched", r.bytes_fetched()}};
}

const char* code_name(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    default:
      return "UNKNOWN";
  }
}

// What herdctl shows of one pull: the blobs in the order they appeared.
class PullView {
 public:
  enum class Mode { kTerminal, kPlain, kJson };
  PullView(Mode mode, std::string reference) : mode_(mode), reference_(std::move(reference)) {}

  void progress(const v1::BlobProgress& p) {
    if (mode_ == Mode::kJson) {
      std::cout << progress_json(p).dump() << std::endl;
      return;
    }
    const std::string key = p.kind() + " " + p.digest();
    auto [it, added] = index_.emplace(key, rows_.size());
    if (added) rows_.push_back(p);
    v1::BlobProgress& row = rows_[it->second];
    const bool newly_finished = p.finished() && (added || !row.finished());
    row = p;
    if (mode_ == Mode::kTerminal) {
      auto now = Steady::now();
      if (added || newly_finished || now - last_draw_ >= std::chrono::milliseconds(100)) {
        draw();
        last_draw_ = now;
      }
      return;
    }
    if (newly_finished) std::cout << finished_line(row) << std::endl;
    auto now = Steady::now();
    if (now - last_line_ >= std::chrono::seconds(1)) {
      std::cout << totals_line() << std::endl;
      last_line_ = now;
    }
  }

  void result(const v1::PullResult& r) {
    if (mode_ == Mode::kJson) {
      std::cout << result_json(r).dump() << std::endl;
      return;
    }
    if (mode_ == Mode::kTerminal) draw();
    std::cout << "pulled " << r.name() << " (" << r.target_digest() << "): " << r.blobs_fetched()
              << " blob(s) fetched (" << human_bytes(r.bytes_fetched()) << "), "
              << r.blobs_present() << " already present" << std::endl;
  }

  void error(const grpc::Status& s) {
    if (mode_ == Mode::kJson) {
      json j = {
          {"event", "error"}, {"code", code_name(s.error_code())}, {"message", s.error_message()}};
      std::cout << j.dump() << std::endl;
    } else if (mode_ == Mode::kTerminal && !rows_.empty()) {
      draw();
    }
  }

 private:
  static std::string label(const v1::BlobProgress& p) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%-8s %s", p.kind().c_str(), short_digest(p.digest()).c_str());
    return buf;
  }

  static std::string finished_line(const v1::BlobProgress& p) {
    if (p.present()) return label(p) + "  already present";
    return label(p) + "  done (" +
           human_bytes(static_cast<uint64_t>(std::max<int64_t>(0, p.total()))) + ")";
  }

  static std::string bar_line(const v1::BlobProgress& p) {
    if (p.finished()) return finished_line(p);
    constexpr int kWidth = 30;
    const int64_t total = std::max<int64_t>(p.total(), 0);
    const int64_t done = std::clamp<int64_t>(p.done(), 0, total);
    const int filled = total > 0 ? static_cast<int>(done * kWidth / total) : 0;
    std::string bar = "[" + std::string(static_cast<size_t>(filled), '=');
    if (filled < kWidth) bar += ">" + std::string(static_cast<size_t>(kWidth - filled - 1), ' ');
    bar += "]";
    return label(p) + "  " + bar + "  " + human_bytes(static_cast<uint64_t>(done)) + " / " +
           human_bytes(static_cast<uint64_t>(total));
  }

  std::string totals_line() const {
    size_t finished = 0;
    uint64_t done = 0, total = 0;
    for (const auto& r : rows_) {
      if (r.finished()) ++finished;
      done += static_cast<uint64_t>(std::max<int64_t>(0, r.done()));
      total += static_cast<uint64_t>(std::max<int64_t>(0, r.total()));
    }
    return "pulling " + reference_ + ": " + std::to_string(finished) + "/" +
           std::to_string(rows_.size()) + " blob(s) done, " + human_bytes(done) + " / " +
           human_bytes(total);
  }

  // Every row again, in place: up over the lines drawn before, each line
  // cleared and rewritten (cut to the terminal's width: a wrapped line
  // would break the count of lines to go up).
  void draw() {
    winsize ws{};
    size_t width = 0;
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1) width = ws.ws_col - 1;
    std::string out;
    if (drawn_ > 0) out += "\x1b[" + std::to_string(drawn_) + "A";
    for (const auto& r : rows_) {
      std::string line = bar_line(r);
      if (width > 0 && line.size() > width) line.resize(width);
      out += "\r\x1b[2K" + line + "\n";
    }
    drawn_ = rows_.size();
    std::cout << out << std::flush;
  }

  Mode mode_;
  std::string reference_;
  std::vector<v1::BlobProgress> rows_;
  std::map<std::string, size_t> index_;
  size_t drawn_ = 0;
  Steady::time_point last_draw_{};
  Steady::time_point last_line_ = Steady::now();
};

}  // namespace

int cmd_pull(const Target& t, const std::string& reference, bool as_json) {
  PullView::Mode mode = as_json                   ? PullView::Mode::kJson
                        : ::isatty(STDOUT_FILENO) ? PullView::Mode::kTerminal
                                                  : PullView::Mode::kPlain;
  PullView view(mode, herd::printable(reference, 1024));
  auto stub = v1::Control::NewStub(channel_to(t));
  grpc::ClientContext ctx;
  set_long_deadline(ctx, t, herd::control::kDefaultPullDeadline);
  v1::PullImageRequest req;
  req.set_reference(reference);
  std::unique_ptr<grpc::ClientReader<v1::PullImageEvent>> reader = stub->PullImage(&ctx, req);
  v1::PullImageEvent ev;
  std::optional<v1::PullResult> result;
  while (reader->Read(&ev)) {
    if (ev.has_progress()) {
      view.progress(ev.progress());
    } else if (ev.has_result()) {
      result = ev.result();
    }
  }
  grpc::Status s = reader->Finish();
  if (s.ok() && !result) {
    s = grpc::Status(grpc::StatusCode::INTERNAL,
                     "pull " + herd::printable(reference, 1024) + ": herdd sent no result");
  }
  if (!s.ok()) {
    view.error(s);
    return report(s, ctx, t);
  }
  view.result(*result);
  return kExitOk;
}

int cmd_images(const Target& t, bool as_json) {
  auto stub = v1::Control::NewStub(channel_to(t));
  grpc::ClientContext ctx;
  set_deadline(ctx, t);
  v1::ListImagesResponse resp;
  grpc::Status s = stub->ListImages(&ctx, v1::ListImagesRequest(), &resp);
  if (!s.ok()) return report(s, ctx, t);
  if (as_json) {
    json arr = json::array();
    for (const v1::ImageInfo& i : resp.images()) {
      json users = json::array();
      for (const std::string& u : i.used_by()) users.push_back(u);
      arr.push_back({{"name", i.name()},
                     {"digest", i.target_digest()},
                     {"media_type", i.target_media_type()},
                     {"size", i.has_size() ? json(i.size()) : json(nullptr)},
                     {"used_by", users}});
    }
    json out;
    out["images"] = arr;
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  if (resp.images_size() == 0) {
    std::cout << "no images\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"NAME", "DIGEST", "SIZE", "USED BY"});
  for (const v1::ImageInfo& i : resp.images()) {
    std::string users;
    for (const std::string& u : i.used_by()) users += (users.empty() ? "" : ",") + u;
    rows.push_back({i.name(), short_digest(i.target_digest()),
                    i.has_size() ? human_bytes(i.size()) : "-", users.empty() ? "-" : users});
  }
  std::vector<size_t> width(rows.front().size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
  return kExitOk;
}

int cmd_image_rm(const Target& t, const std::string& reference) {
  auto stub = v1::Control::NewStub(channel_to(t));
  grpc::ClientContext ctx;
  set_deadline(ctx, t);
  v1::RemoveImageRequest req;
  req.set_reference(reference);
  v1::RemoveImageResponse resp;
  grpc::Status s = stub->RemoveImage(&ctx, req, &resp);
  if (!s.ok()) return report(s, ctx, t);
  std::cout << "removed " << resp.name() << "\n";
  return kExitOk;
}

int cmd_image_prune(const Target& t) {
  auto stub = v1::Control::NewStub(channel_to(t));
  grpc::ClientContext ctx;
  set_deadline(ctx, t);
  v1::PruneImagesResponse resp;
  grpc::Status s = stub->PruneImages(&ctx, v1::PruneImagesRequest(), &resp);
  if (!s.ok()) return report(s, ctx, t);
  for (const std::string& n : resp.removed()) std::cout << "removed " << n << "\n";
  if (resp.removed_size() == 0) {
    std::cout << "no unused images\n";
  } else {
    std::cout << "pruned " << resp.removed_size() << " image(s)\n";
  }
  return kExitOk;
}

}  // namespace herd::ctl
