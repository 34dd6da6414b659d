// Unit tests of the pure parts of lib/containerd: digests and chain ids,
// task-event decoding (bare type_urls), and the OCI archive reader on tar
// files written by the test itself.
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "containerd/client.h"
#include "containerd/events.h"
#include "containerd/images.h"
#include "containerd/oci_archive.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"

using namespace herd;
using namespace herd::containerd;

TEST_CASE("sha256_digest names the digest with its algorithm") {
  CHECK(sha256_digest("a") ==
        "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
  CHECK(sha256_digest("") ==
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("chain ids: the first is the diff id, then sha256(parent + ' ' + diff id)") {
  const std::string a = "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
  const std::string b = "sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";
  auto ids = chain_ids({a, b});
  REQUIRE(ids.size() == 2);
  CHECK(ids[0] == a);
  CHECK(ids[1] == "sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676");
  CHECK(chain_ids({}).empty());
}

TEST_CASE("task events decode from bare and prefixed type_urls") {
  ::containerd::events::TaskExit exit;
  exit.set_container_id("etcd");
  exit.set_id("etcd");
  exit.set_pid(4242);
  exit.set_exit_status(137);
  exit.mutable_exited_at()->set_seconds(1700000000);
  exit.mutable_exited_at()->set_nanos(5000);
  const std::string bytes = exit.SerializeAsString();

  for (const std::string url :
       {"containerd.events.TaskExit", "types.containerd.io/containerd.events.TaskExit"}) {
    auto e = decode_task_event(url, bytes);
    REQUIRE(e.ok());
    CHECK(e->kind == TaskEvent::Kind::kExit);
    CHECK(e->container_id == "etcd");
    CHECK(e->exec_id == "etcd");
    CHECK(e->pid == 4242);
    CHECK(e->exit_status == 137);
    CHECK(e->exited_at.time_since_epoch() ==
          std::chrono::seconds(1700000000) + std::chrono::microseconds(5));
  }

  ::containerd::events::TaskStart start;
  start.set_container_id("vm");
  start.set_pid(7);
  auto s = decode_task_event("containerd.events.TaskStart", start.SerializeAsString());
  REQUIRE(s.ok());
  CHECK(s->kind == TaskEvent::Kind::kStart);
  CHECK(s->pid == 7);

  ::containerd::events::TaskOOM oom;
  oom.set_container_id("vl");
  auto o = decode_task_event("containerd.events.TaskOOM", oom.SerializeAsString());
  REQUIRE(o.ok());
  CHECK(o->kind == TaskEvent::Kind::kOOM);
  CHECK(o->container_id == "vl");

  ::containerd::events::TaskDelete del;
  del.set_container_id("vl");
  del.set_exit_status(1);
  auto d = decode_task_event("containerd.events.TaskDelete", del.SerializeAsString());
  REQUIRE(d.ok());
  CHECK(d->kind == TaskEvent::Kind::kDelete);
  CHECK(d->exit_status == 1);
}

// Go's zero time (year 1) is what containerd sends for "never"; it and any
// other time system_clock cannot hold decode as the epoch, not as an
// overflow (UBSan found this on an exec process's exited_at).
TEST_CASE("task events: an exit time outside system_clock's range decodes as the epoch") {
  for (const int64_t seconds : {int64_t{-62135596800}, std::numeric_limits<int64_t>::max(),
                                std::numeric_limits<int64_t>::min()}) {
    INFO(seconds);
    ::containerd::events::TaskExit exit;
    exit.set_container_id("etcd");
    exit.mutable_exited_at()->set_seconds(seconds);
    exit.mutable_exited_at()->set_nanos(999999999);
    auto e = decode_task_event("containerd.events.TaskExit", exit.SerializeAsString());
    REQUIRE(e.ok());
    CHECK(e->exited_at == std::chrono::system_clock::time_point{});
  }
}

TEST_CASE("task event decoding rejects unknown types and malformed bytes") {
  auto unknown = decode_task_event("containerd.events.ContainerCreate", "");
  CHECK(unknown.status().code() == Code::kNotFound);
  auto bad = decode_task_event("containerd.events.TaskExit", std::string("\xff\xff\xff", 3));
  CHECK(bad.status().code() == Code::kDataLoss);
}

namespace {

// A minimal ustar writer, enough to give the reader real tar files.
struct TarWriter {
  std::string out;
  void header(const std::string& name, size_t size, char type, const std::string& prefix = "") {
    char h[512];
    std::memset(h, 0, sizeof h);
    std::snprintf(h, 100, "%s", name.c_str());
    std::snprintf(h + 100, 8, "%07o", 0644);
    std::snprintf(h + 108, 8, "%07o", 0);
    std::snprintf(h + 116, 8, "%07o", 0);
    std::snprintf(h + 124, 12, "%011zo", size);
    std::snprintf(h + 136, 12, "%011o", 0);
    h[156] = type;
    std::memcpy(h + 257, "ustar", 6);
    std::memcpy(h + 263, "00", 2);
    std::snprintf(h + 345, 155, "%s", prefix.c_str());
    std::memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(h + 148, 8, "%06o", sum);
    out.append(h, sizeof h);
  }
  void data(const std::string& d) {
    out += d;
    out.append((512 - d.size() % 512) % 512, '\0');
  }
  void file(const std::string& name, const std::string& d, const std::string& prefix = "") {
    header(name, d.size(), '0', prefix);
    data(d);
  }
  void gnu_long_name(const std::string& name, const std::string& d) {
    header("././@LongLink", name.size() + 1, 'L');
    data(name + '\0');
    file(name.substr(0, 99), d);
  }
  void pax_path(const std::string& name, const std::string& d) {
    std::string rec = " path=" + name + "\n";
    size_t len = rec.size();
    len += std::to_string(len + std::to_string(len).size()).size();
    header("PaxHeaders/x", std::to_string(len).size() + rec.size(), 'x');
    data(std::to_string(len) + rec);
    file("short", d);
  }
  std::string finish() { return out + std::string(1024, '\0'); }
};

std::filesystem::path write_temp(const std::string& name, const std::string& bytes) {
  auto p = std::filesystem::temp_directory_path() /
           ("herd-unit-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

}  // namespace

TEST_CASE("OciArchive reads an OCI layout: index, manifests and blob ranges") {
  const std::string blob = "layer bytes";
  const std::string digest = sha256_digest(blob);
  const std::string hex = digest.substr(7);
  const std::string index = R"({"schemaVersion":2,"manifests":[
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                            digest + R"(","size":11,
     "annotations":{"io.containerd.image.name":"herd.local/x:1",
                    "org.opencontainers.image.ref.name":"1"}},
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                            digest + R"(","size":11,
     "annotations":{"org.opencontainers.image.ref.name":"herd.local/y:2"}},
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                            digest + R"(","size":11,
     "annotations":{"org.opencontainers.image.ref.name":"latest"}}]})";
  TarWriter t;
  t.file("oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  t.file("./index.json", index);
  t.file(hex, blob, "blobs/sha256");
  auto path = write_temp("layout.tar", t.finish());

  auto a = OciArchive::open(path);
  REQUIRE(a.ok());
  CHECK(a->entries().count("index.json") == 1);  // "./" is dropped
  auto idx = a->index();
  REQUIRE(idx.ok());
  REQUIRE(idx->size() == 3);
  CHECK((*idx)[0].image_name == "herd.local/x:1");  // containerd's annotation wins
  CHECK((*idx)[1].image_name == "herd.local/y:2");  // a full ref.name is a name
  CHECK((*idx)[2].image_name.empty());              // a bare tag is not
  CHECK((*idx)[0].descriptor.size == 11);

  std::string buf;
  REQUIRE(a->read_blob_range(digest, 6, 100, buf).ok());
  CHECK(buf == "bytes");
  CHECK(a->blob(sha256_digest("other")).status().code() == Code::kNotFound);
  CHECK(a->blob("md5:abc").status().code() == Code::kInvalidArgument);
  std::filesystem::remove(path);
}

TEST_CASE("OciArchive follows GNU long names and pax paths") {
  const std::string long_name = "blobs/sha256/" + std::string(120, 'a');
  TarWriter t;
  t.gnu_long_name(long_name, "long");
  t.pax_path("pax/" + std::string(110, 'b'), "pax");
  auto path = write_temp("long.tar", t.finish());
  auto a = OciArchive::open(path);
  REQUIRE(a.ok());
  CHECK(a->read_file(long_name).value() == "long");
  CHECK(a->read_file("pax/" + std::string(110, 'b')).value() == "pax");
  CHECK(a->entries().size() == 2);
  std::filesystem::remove(path);
}

TEST_CASE("OciArchive rejects what is not an OCI tar") {
  CHECK(OciArchive::open("/nonexistent/herd.tar").status().code() == Code::kNotFound);

  TarWriter t;
  t.file("hello", "world");
  std::string bytes = t.finish();
  auto no_layout = write_temp("nolayout.tar", bytes);
  auto a = OciArchive::open(no_layout);
  REQUIRE(a.ok());
  auto idx = a->index();
  CHECK(idx.status().code() == Code::kInvalidArgument);
  CHECK_THAT(idx.status().message(), Catch::Contains("not an OCI layout"));

  bytes[148] ^= 1;  // break the checksum
  auto corrupt = write_temp("corrupt.tar", bytes);
  auto c = OciArchive::open(corrupt);
  CHECK(c.status().code() == Code::kDataLoss);
  CHECK_THAT(c.status().message(), Catch::Contains("checksum"));
  std::filesystem::remove(no_layout);
  std::filesystem::remove(corrupt);
}
