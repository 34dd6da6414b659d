// libFuzzer target: the control API's request handling (lib/control's
// requests.h and import_upload.h) without a grpc::Server, against a fake
// Backend that answers at once.
//
// The first byte picks the method; the rest is parsed as its request
// message (List, Get, Start, Stop, Restart, Reload, Watch; 8..11:
// ListImages, RemoveImage, PruneImages, PullImage's check) and dispatched,
// or, for ImportImage (7), split into frames (a 2-byte big-endian length, then
// that many bytes), each parsed as one ImportImageRequest and fed to an
// ImportUpload over an in-memory file (max 1 MiB), then finished.
//
// Checked: every request is answered exactly once; no status message holds
// a control byte (client strings go through printable()); a refused name
// never reaches the Backend; an upload never holds more than its limit, and
// one that finishes holds exactly the bytes it was sent.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/log_text.h"
#include "control/backend.h"
#include "control/import_upload.h"
#include "control/limits.h"
#include "control/requests.h"
#include "herd/v1/control.pb.h"

#include <google/protobuf/stubs/logging.h>

namespace {

using namespace herd;
using namespace herd::control;
namespace v1 = herd::v1;

constexpr uint64_t kMaxUpload = 1 << 20;

[[noreturn]] void fail() { __builtin_trap(); }

void check_printable(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) fail();
  }
}

void check_status(const grpc::Status& s) { check_printable(s.error_message()); }

class FakeBackend final : public Backend {
 public:
  size_t calls = 0;

  void list(std::function<void(StatusList)> done) override {
    ++calls;
    ComponentView a;
    a.name = "etcd";
    a.state = "ready";
    a.pid = 42;
    done(StatusList{a, ComponentView()});
  }
  void get(const std::string& name, std::function<void(Result<ComponentView>)> done) override {
    ++calls;
    check_name_ok(name);
    if (name == "etcd") {
      ComponentView v;
      v.name = name;
      done(v);
      return;
    }
    done(Status::NotFound("no component named '" + printable(name) + "'"));
  }
  void act(Verb, const std::string& name, std::function<void(Status)> done) override {
    ++calls;
    check_name_ok(name);
    done(name == "etcd" ? Status::Ok()
                        : Status::NotFound("no component named '" + printable(name) + "'"));
  }
  void reload(std::function<void(ReloadResult)> done) override {
    ++calls;
    ReloadResult r;
    r.status = Status::InvalidArgument("1 error");
    done(r);
  }
  void import_image(UniqueFd, std::string name,
                    std::function<void(Result<std::vector<std::string>>)> done) override {
    ++calls;
    check_printable(name);
    done(std::vector<std::string>{"x"});
  }
  Cancel pull_image(const std::string& reference, std::function<void(const PullProgress&)> progress,
                    std::function<void(Result<PullSummary>)> done) override {
    ++calls;
    check_reference_ok(reference);
    PullProgress p;
    p.kind = "layer";
    progress(p);
    done(Status::NotFound("pull " + printable(reference) + ": not found"));
    return [] {};
  }
  void list_images(std::function<void(Result<std::vector<ImageView>>)> done) override {
    ++calls;
    ImageView v;
    v.name = "docker.io/library/busybox:1";
    v.used_by = {"web"};
    done(std::vector<ImageView>{v});
  }
  void remove_image(const std::string& reference,
                    std::function<void(Result<std::string>)> done) override {
    ++calls;
    check_reference_ok(reference);
    if (reference == "busybox") {
      done(Status::FailedPrecondition("image busybox is used by component web"));
      return;
    }
    done(Status::NotFound("no image named '" + printable(reference) + "'"));
  }
  void prune_images(std::function<void(Result<std::vector<std::string>>)> done) override {
    ++calls;
    done(std::vector<std::string>{"a", "b"});
  }
  uint64_t watch(std::function<void(const ComponentView&)>) override { return 1; }
  void unwatch(uint64_t) override {}

 private:
  static void check_name_ok(const std::string& name) {
    if (name.empty() || name.size() > kMaxNameBytes) fail();
  }
  static void check_reference_ok(const std::string& reference) {
    if (reference.empty() || reference.size() > kMaxReferenceBytes) fail();
  }
};

template <class Resp>
struct Answer {
  int count = 0;
  Done<Resp> done() {
    return [this](grpc::Status s, Resp) {
      ++count;
      check_status(s);
    };
  }
};

template <class Req>
bool parse(const uint8_t* data, size_t size, Req& req) {
  return req.ParseFromArray(data, static_cast<int>(size));
}

void fuzz_import(const uint8_t* data, size_t size) {
  int fd = ::memfd_create("control-fuzz", MFD_CLOEXEC);
  if (fd < 0) return;
  ImportUpload upload(UniqueFd(fd), kMaxUpload);
  uint64_t sent = 0;
  bool ok = true;
  size_t i = 0;
  while (ok && i + 2 <= size) {
    size_t len = (static_cast<size_t>(data[i]) << 8) | data[i + 1];
    i += 2;
    if (len > size - i) len = size - i;
    v1::ImportImageRequest m;
    if (!m.ParseFromArray(data + i, static_cast<int>(len))) return;
    i += len;
    Status s = upload.feed(m);
    check_printable(s.message());
    if (!s.ok()) {
      ok = false;
      break;
    }
    if (m.part_case() == v1::ImportImageRequest::kData) sent += m.data().size();
    if (upload.bytes() != sent || upload.bytes() > kMaxUpload) fail();
  }
  Result<ImportUpload::Archive> a = upload.finish();
  check_printable(a.status().message());
  if (!a.ok()) return;
  if (!ok) fail();  // a failed upload never finishes
  check_printable(a->name);
  struct stat st {};
  if (::fstat(a->file.get(), &st) != 0) fail();
  if (static_cast<uint64_t>(st.st_size) != a->bytes || a->bytes != sent) fail();
  if (::lseek(a->file.get(), 0, SEEK_CUR) != 0) fail();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  // protobuf logs every string field that is not UTF-8; the parse fails
  // and that is all the target needs to know.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t method = data[0] % 13;
  ++data;
  --size;
  FakeBackend backend;
  switch (method) {
    case 0: {
      v1::ListRequest req;
      if (!parse(data, size, req)) return 0;
      Answer<v1::ListResponse> a;
      handle_list(backend, req, a.done());
      if (a.count != 1) fail();
      break;
    }
    case 1: {
      v1::GetRequest req;
      if (!parse(data, size, req)) return 0;
      Answer<v1::GetResponse> a;
      handle_get(backend, req, a.done());
      if (a.count != 1) fail();
      if (!check_name("name", req.name(), true).ok() && backend.calls != 0) fail();
      break;
    }
    case 2:
    case 3:
    case 4: {
      v1::ActionRequest req;
      if (!parse(data, size, req)) return 0;
      Answer<v1::ActionResponse> a;
      Verb verb = method == 2 ? Verb::kStart : method == 3 ? Verb::kStop : Verb::kRestart;
      handle_act(backend, verb, req, a.done());
      if (a.count != 1) fail();
      if (!check_name("name", req.name(), true).ok() && backend.calls != 0) fail();
      break;
    }
    case 5: {
      v1::ReloadRequest req;
      if (!parse(data, size, req)) return 0;
      Answer<v1::ReloadResponse> a;
      handle_reload(backend, req, a.done());
      if (a.count != 1) fail();
      break;
    }
    case 6: {
      v1::WatchRequest req;
      if (!parse(data, size, req)) return 0;
      check_status(check_watch(req));
      break;
    }
    case 8: {
      v1::ListImagesRequest req;
      if (!parse(data, size, req)) return 0;
      Answer<v1::ListImagesResponse> a;
      handle_list_images(backend, req, a.done());
      if (a.count != 1) fail();
      break;
    }
    case 9: {
      v1::RemoveImageRequest req;
      if (!parse(data, size, req)) return 0;
      Answer<v1::RemoveImageResponse> a;
      handle_remove_image(backend, req, a.done());
      if (a.count != 1) fail();
      if (!check_reference(req.reference()).ok() && backend.calls != 0) fail();
      break;
    }
    case 10: {
      v1::PruneImagesRequest req;
      if (!parse(data, size, req)) return 0;
      Answer<v1::PruneImagesResponse> a;
      handle_prune_images(backend, req, a.done());
      if (a.count != 1) fail();
      break;
    }
    case 11: {
      v1::PullImageRequest req;
      if (!parse(data, size, req)) return 0;
      check_status(check_pull(req));
      break;
    }
    case 12: {
      v1::KillRequest req;
      if (!parse(data, size, req)) return 0;
      Answer<v1::KillResponse> a;
      handle_kill(backend, req, a.done());
      if (a.count != 1) fail();
      break;
    }
    default:
      fuzz_import(data, size);
      break;
  }
  return 0;
}
