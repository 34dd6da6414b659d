// `herdctl image import` and the ImportImage stream: herdctl refuses what
// is not a regular file at once; herdd keeps uploads in unnamed files in
// its import directory, bounded, and hands the Backend exactly the bytes
// sent; a cancelled, short or oversized stream never reaches the Backend
// and leaves nothing behind.
#include <dirent.h>
#include <sys/types.h>

#include <random>

#include "harness.h"

namespace {

using herd::v1::ImportImageRequest;
using herd::v1::ImportImageResponse;

std::vector<std::string> entries_of(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    names.push_back(e.path().filename().string());
  }
  return names;
}

// Open fds of this process whose target lies in `dir` (unnamed files show
// as "<dir>/#<ino> (deleted)").
size_t fds_into(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    char link[4096] = {};
    ssize_t r = ::readlink(e.path().c_str(), link, sizeof link - 1);
    if (r > 0 && std::string(link, static_cast<size_t>(r)).rfind(dir + "/", 0) == 0) ++n;
  }
  return n;
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

ImportImageRequest header(const std::string& name, uint64_t size) {
  ImportImageRequest m;
  m.mutable_header()->set_name(name);
  m.mutable_header()->set_size(size);
  return m;
}

ImportImageRequest data(const std::string& bytes) {
  ImportImageRequest m;
  m.set_data(bytes);
  return m;
}

// One raw ImportImage stream.
struct Upload {
  explicit Upload(const std::string& sock) : stub(stub_for(sock)) {
    ctx.set_deadline(SysClock::now() + 30s);
    writer = stub->ImportImage(&ctx, &resp);
  }
  std::unique_ptr<herd::v1::Control::Stub> stub;
  grpc::ClientContext ctx;
  ImportImageResponse resp;
  std::unique_ptr<grpc::ClientWriter<ImportImageRequest>> writer;
};

}  // namespace

TEST_CASE("import: herdctl refuses a FIFO, /dev/zero and a directory at once") {
  Env env;
  std::string fifo = env.dir() + "/image.fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  struct Case {
    std::string path, what;
  };
  for (const Case& c : {Case{fifo, "a FIFO"}, Case{"/dev/zero", "a character device"},
                        Case{env.dir(), "a directory"}}) {
    auto t0 = std::chrono::steady_clock::now();
    Run r = herdctl({"--socket", env.sock(), "image", "import", c.path});
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(r.code == 1);
    CHECK(r.err == "herdctl: " + c.path + " is " + c.what +
                       ", not a regular file; an image archive must be one\n");
    CHECK(took < 5s);  // promptly: nothing waits for a writer or reads forever
  }
  Run missing = herdctl({"--socket", env.sock(), "image", "import", env.dir() + "/nope.tar"});
  CHECK(missing.code == 1);
  CHECK(missing.err ==
        "herdctl: cannot open " + env.dir() + "/nope.tar: No such file or directory\n");
  CHECK(env.backend().imports().empty());
  CHECK(env.server()->stats().imports == 0);
}

TEST_CASE("import: herdctl streams the file and the backend gets it byte for byte") {
  Env env;
  env.backend().set_images({"herd/busybox:1"});
  // Three full chunks and a partial one.
  const std::string content = random_bytes(3 * herd::control::kImportChunkBytes + 12345, 7);
  {
    std::ofstream out(env.dir() + "/busybox.tar", std::ios::binary);
    out << content;
  }
  Run r = herdctl({"--socket", env.sock(), "image", "import", "./busybox.tar"}, std::nullopt,
                  env.dir());
  CHECK(r.code == 0);
  // Not a terminal: a progress line per 10% of the upload (here per 1 MiB
  // chunk), then the result.
  CHECK_THAT(r.out, Catch::StartsWith("uploading ./busybox.tar: 1.00 MiB / 3.01 MiB (30%)\n") &&
                        Catch::Contains("uploading ./busybox.tar: 3.01 MiB / 3.01 MiB (100%)\n") &&
                        Catch::EndsWith("importing ./busybox.tar in herdd ...\n"
                                        "imported herd/busybox:1\n"));
  auto imports = env.backend().imports();
  REQUIRE(imports.size() == 1);
  CHECK(imports[0].name == "./busybox.tar");  // the path as given, only a name
  CHECK(imports[0].bytes.size() == content.size());
  CHECK(imports[0].bytes == content);
  CHECK(imports[0].links == 0);  // an unnamed file
  CHECK(imports[0].dir_of.rfind(env.import_dir() + "/", 0) == 0);
  struct stat st {};
  REQUIRE(::stat(env.import_dir().c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  CHECK(entries_of(env.import_dir()).empty());
  CHECK(eventually([&] { return env.server()->stats().imports == 0; }));

  // An empty file is a valid upload too (the backend decides it is no archive).
  std::ofstream(env.dir() + "/empty.tar").close();
  CHECK(herdctl({"--socket", env.sock(), "image", "import", env.dir() + "/empty.tar"}).code == 0);
  REQUIRE(env.backend().imports().size() == 2);
  CHECK(env.backend().imports()[1].bytes.empty());
}

TEST_CASE("import: a client that cancels mid-stream leaves no file and reaches no backend") {
  Env env;
  SECTION("cancel") {
    Upload up(env.sock());
    REQUIRE(up.writer->Write(header("big.tar", 10 * herd::control::kMiB)));
    REQUIRE(up.writer->Write(data(random_bytes(herd::control::kMiB, 1))));
    REQUIRE(eventually([&] { return env.server()->stats().imports == 1; }));
    // The upload's file is open in herdd, and has no name in the directory.
    REQUIRE(eventually([&] { return fds_into(env.import_dir()) == 1; }));
    CHECK(entries_of(env.import_dir()).empty());
    up.ctx.TryCancel();
    CHECK(up.writer->Finish().error_code() == grpc::StatusCode::CANCELLED);
  }
  SECTION("disconnect: the client's channel goes away") {
    auto up = std::make_unique<Upload>(env.sock());
    REQUIRE(up->writer->Write(header("big.tar", 10 * herd::control::kMiB)));
    REQUIRE(up->writer->Write(data(random_bytes(herd::control::kMiB, 2))));
    REQUIRE(eventually([&] { return fds_into(env.import_dir()) == 1; }));
    up->ctx.TryCancel();
    up.reset();
  }
  SECTION("half-close before all bytes the header announced") {
    Upload up(env.sock());
    REQUIRE(up.writer->Write(header("short.tar", 3000)));
    REQUIRE(up.writer->Write(data(std::string(1000, 'x'))));
    up.writer->WritesDone();
    grpc::Status s = up.writer->Finish();
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(contains(s.error_message(), "ended after 1000 of the 3000 bytes"));
  }
  CHECK(eventually([&] { return env.server()->stats().imports == 0; }));
  CHECK(eventually([&] { return fds_into(env.import_dir()) == 0; }));
  CHECK(entries_of(env.import_dir()).empty());
  CHECK(env.backend().imports().empty());
}

TEST_CASE("import: a stream out of order is INVALID_ARGUMENT") {
  Env env;
  SECTION("data first") {
    Upload up(env.sock());
    up.writer->Write(data("abc"));
    up.writer->WritesDone();
    grpc::Status s = up.writer->Finish();
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(contains(s.error_message(), "first message of an import must be its header"));
  }
  SECTION("no message at all") {
    Upload up(env.sock());
    up.writer->WritesDone();
    CHECK(up.writer->Finish().error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  SECTION("more bytes than announced") {
    Upload up(env.sock());
    up.writer->Write(header("a.tar", 2));
    up.writer->Write(data("abc"));
    up.writer->WritesDone();
    CHECK(up.writer->Finish().error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  SECTION("a second header, an empty name") {
    Upload up(env.sock());
    up.writer->Write(header("a.tar", 2));
    up.writer->Write(header("b.tar", 2));
    up.writer->WritesDone();
    CHECK(up.writer->Finish().error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    Upload empty(env.sock());
    empty.writer->Write(header("", 0));
    empty.writer->WritesDone();
    CHECK(empty.writer->Finish().error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  CHECK(env.backend().imports().empty());
}

TEST_CASE("import: an archive above import_max_bytes is RESOURCE_EXHAUSTED naming the limit") {
  Env env([](ControlServer::Options& o) { o.import_max_bytes = 1000; });
  {
    std::ofstream out(env.dir() + "/big.tar", std::ios::binary);
    out << std::string(1001, 'x');
  }
  Run r = herdctl({"--socket", env.sock(), "image", "import", env.dir() + "/big.tar"});
  CHECK(r.code == 1);
  CHECK(contains(r.err,
                 "has 1001 bytes, more than the 1000 herdd accepts for an import "
                 "(import_max_bytes)"));
  // A client that announces less and sends more is cut off as well.
  Upload up(env.sock());
  up.writer->Write(header("liar.tar", 10));
  up.writer->Write(data(std::string(2000, 'y')));
  up.writer->WritesDone();
  CHECK(up.writer->Finish().error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(env.backend().imports().empty());
  CHECK(eventually([&] { return fds_into(env.import_dir()) == 0; }));
}

TEST_CASE("import: at most max_imports at once, the next one RESOURCE_EXHAUSTED at once") {
  Env env;  // the default, 2
  env.backend().hold_imports(true);
  std::vector<std::unique_ptr<Upload>> running;
  for (int i = 0; i < 2; ++i) {
    auto up = std::make_unique<Upload>(env.sock());
    REQUIRE(up->writer->Write(header("a.tar", 3)));
    REQUIRE(up->writer->Write(data("abc")));
    up->writer->WritesDone();
    running.push_back(std::move(up));
  }
  REQUIRE(eventually([&] { return env.backend().held() == 2; }));
  CHECK(env.server()->stats().imports == 2);
  {
    auto t0 = std::chrono::steady_clock::now();
    Upload third(env.sock());
    third.writer->Write(header("c.tar", 3));
    third.writer->Write(data("abc"));
    third.writer->WritesDone();
    grpc::Status s = third.writer->Finish();
    CHECK(s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK(contains(s.error_message(), "herdd runs at most 2 imports at once"));
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  }
  // The slots are held until the backend has finished, not only the upload.
  CHECK(env.server()->stats().imports == 2);
  env.backend().release_held();
  for (auto& up : running) CHECK(up->writer->Finish().ok());
  CHECK(eventually([&] { return env.server()->stats().imports == 0; }));
  env.backend().hold_imports(false);
  Upload again(env.sock());
  again.writer->Write(header("d.tar", 1));
  again.writer->Write(data("z"));
  again.writer->WritesDone();
  CHECK(again.writer->Finish().ok());
  CHECK(env.backend().imports().size() == 3);
}

TEST_CASE("import: the server's own deadline covers the upload") {
  Env env([](ControlServer::Options& o) { o.import_deadline = 300ms; });
  Upload stalled(env.sock());
  REQUIRE(stalled.writer->Write(header("slow.tar", 100)));
  // ... and nothing more: herdd ends it by itself.
  auto t0 = std::chrono::steady_clock::now();
  grpc::Status s = stalled.writer->Finish();
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  CHECK(s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK(contains(s.error_message(), "herdd did not complete the import within 300 ms"));
  CHECK(eventually([&] { return env.server()->stats().imports == 0; }));
  CHECK(eventually([&] { return fds_into(env.import_dir()) == 0; }));
  CHECK(env.backend().imports().empty());
}

TEST_CASE("import: an import directory that is not a directory of herdd's is refused") {
  Env env([](ControlServer::Options& o) { o.import_dir += "-file"; });
  std::ofstream(env.import_dir() + "-file") << "not a dir";
  {
    std::ofstream out(env.dir() + "/a.tar", std::ios::binary);
    out << "abc";
  }
  Run r = herdctl({"--socket", env.sock(), "image", "import", env.dir() + "/a.tar"});
  CHECK(r.code == 1);
  CHECK(contains(r.err, "the import directory " + env.import_dir() +
                            "-file is a regular file, not a directory"));
  CHECK(env.backend().imports().empty());
}
