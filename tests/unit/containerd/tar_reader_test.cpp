// Unit tests of the tar reader (lib/containerd/tar_reader.h) on archives
// built in memory: what it accepts, and a clear error for each malformed
// or refused entry.
#include <catch2/catch.hpp>

#include <cstring>

#include "containerd/byte_source.h"
#include "containerd/tar_reader.h"
#include "crafted_archives.h"

using namespace herd;
using namespace herd::containerd;
using herd::test::crafted::TarBuilder;

namespace {

Result<TarIndex> scan(const std::string& bytes) {
  MemorySource src(bytes, "test.tar");
  return scan_tar(src);
}

std::string content(const std::string& bytes, const TarEntry& e) {
  return bytes.substr(e.offset, e.size);
}

// Sets the size field of the header at `at` to base-256 `bytes`.
void base256_size(TarBuilder& t, size_t at, const std::vector<unsigned char>& bytes) {
  REQUIRE(bytes.size() == 12);
  std::memcpy(t.bytes().data() + at + 124, bytes.data(), 12);
  t.fix_checksum(at);
}

}  // namespace

TEST_CASE("tar: regular files, directories skipped, names normalised") {
  TarBuilder t;
  t.directory("./blobs/");
  t.file("./blobs//a", "alpha");
  t.file("/b", "");
  t.file("c/../d", "delta");
  const std::string bytes = t.finish();
  auto idx = scan(bytes);
  REQUIRE(idx.ok());
  CHECK(idx->size() == 3);
  CHECK(content(bytes, idx->at("blobs/a")) == "alpha");
  CHECK(idx->at("b").size == 0);
  CHECK(content(bytes, idx->at("d")) == "delta");
}

TEST_CASE("tar: an archive without its end marker, and an empty one, are fine") {
  TarBuilder t;
  t.file("a", "x");
  auto idx = scan(t.bytes());
  REQUIRE(idx.ok());
  CHECK(idx->size() == 1);
  auto empty = scan("");
  REQUIRE(empty.ok());
  CHECK(empty->empty());
}

TEST_CASE("tar: GNU long names and pax path and size records") {
  const std::string long_name = "blobs/sha256/" + std::string(200, 'a');
  TarBuilder t;
  t.gnu_long_name(long_name, "long");
  t.raw_pax(TarBuilder::pax_record("path", "pax/" + std::string(150, 'b')) +
                TarBuilder::pax_record("mtime", "1.5"),
            "short", "pax");
  // pax size overrides the header's (written as 0 here).
  const size_t at = t.bytes().size();
  t.header("PaxHeaders/big", TarBuilder::pax_record("size", "5").size(), 'x');
  t.data(TarBuilder::pax_record("size", "5"));
  t.header("sized", 0, '0');
  t.data("12345");
  (void)at;
  const std::string bytes = t.finish();
  auto idx = scan(bytes);
  INFO(idx.status().to_string());
  REQUIRE(idx.ok());
  CHECK(content(bytes, idx->at(long_name)) == "long");
  CHECK(content(bytes, idx->at("pax/" + std::string(150, 'b'))) == "pax");
  CHECK(content(bytes, idx->at("sized")) == "12345");
}

TEST_CASE("tar: hard links and symlinks resolve to the data of a regular entry") {
  TarBuilder t;
  t.file("dir/real", "data");
  t.hardlink("hard", "./dir/real");
  t.symlink("dir/rel", "real");          // relative to dir/
  t.symlink("other/up", "../dir/real");  // climbs, stays inside
  t.symlink("abs", "/dir/real");         // the archive root
  t.symlink("chain", "other/up");        // link to a link
  const std::string bytes = t.finish();
  auto idx = scan(bytes);
  INFO(idx.status().to_string());
  REQUIRE(idx.ok());
  for (const char* n : {"hard", "dir/rel", "other/up", "abs", "chain"}) {
    INFO(n);
    REQUIRE(idx->count(n) == 1);
    CHECK(content(bytes, idx->at(n)) == "data");
  }
}

TEST_CASE("tar: refused entry types name the entry and its offset") {
  struct Case {
    char type;
    const char* says;
  };
  for (auto c : {Case{'3', "character devices"}, Case{'4', "block devices"}, Case{'6', "FIFOs"},
                 Case{'S', "sparse"}, Case{'V', "unsupported entry type 'V'"}}) {
    TarBuilder t;
    t.file("first", "1");
    t.header("bad\nname", 0, c.type);
    auto idx = scan(t.finish());
    INFO(idx.status().to_string());
    REQUIRE_FALSE(idx.ok());
    CHECK(idx.status().code() == Code::kDataLoss);
    CHECK_THAT(idx.status().message(), Catch::Contains("archive test.tar"));
    CHECK_THAT(idx.status().message(), Catch::Contains("'bad\\x0aname' at offset 1024"));
    CHECK_THAT(idx.status().message(), Catch::Contains(c.says));
  }
}

TEST_CASE("tar: malformed pax records are clear errors") {
  struct Case {
    std::string records;
    const char* says;
  };
  for (const auto& c :
       {Case{"-6 path=x\n", "is not a positive decimal"}, Case{"0 path=x\n", "does not fit"},
        Case{"99 path=x\n", "does not fit"}, Case{"11 path=xy", "does not fit"},
        Case{"10 path=xyz", "newline"}, Case{"9 =value\n", "key=value"},
        Case{"7 path\n\n", "key=value"}, Case{"99999999999999999999999 a=b\n", "positive decimal"},
        Case{TarBuilder::pax_record("size", "12x"), "not a number"},
        Case{TarBuilder::pax_record("GNU.sparse.map", "0,1"), "sparse"}}) {
    TarBuilder t;
    t.raw_pax(c.records, "f", "data");
    auto idx = scan(t.finish());
    INFO(c.records << " -> " << idx.status().to_string());
    REQUIRE_FALSE(idx.ok());
    CHECK(idx.status().code() == Code::kDataLoss);
    CHECK_THAT(idx.status().message(), Catch::Contains("pax header"));
    CHECK_THAT(idx.status().message(), Catch::Contains("offset 0"));
    CHECK_THAT(idx.status().message(), Catch::Contains(c.says));
  }
}

TEST_CASE("tar: sizes that overflow or pass the end of the file are refused") {
  SECTION("base-256 wrapping the next-header offset") {
    TarBuilder t;
    t.file("a", "x");
    base256_size(t, 0, {0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x00});
    auto idx = scan(t.finish());
    REQUIRE_FALSE(idx.ok());
    CHECK_THAT(idx.status().message(), Catch::Contains("runs past the end of the archive"));
  }
  SECTION("base-256 over 64 bits") {
    TarBuilder t;
    t.file("a", "x");
    base256_size(t, 0, {0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    auto idx = scan(t.finish());
    REQUIRE_FALSE(idx.ok());
    CHECK_THAT(idx.status().message(), Catch::Contains("overflows 64 bits"));
  }
  SECTION("negative base-256") {
    TarBuilder t;
    t.file("a", "x");
    base256_size(t, 0, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfa});
    auto idx = scan(t.finish());
    REQUIRE_FALSE(idx.ok());
    CHECK_THAT(idx.status().message(), Catch::Contains("negative"));
  }
  SECTION("a small base-256 size is read") {
    TarBuilder t;
    t.file("a", "xyz");
    base256_size(t, 0, {0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3});
    const std::string bytes = t.finish();
    auto idx = scan(bytes);
    REQUIRE(idx.ok());
    CHECK(content(bytes, idx->at("a")) == "xyz");
  }
  SECTION("octal size past the end") {
    TarBuilder t;
    t.header("a", 4096, '0');
    t.data("short");
    auto idx = scan(t.bytes());
    REQUIRE_FALSE(idx.ok());
    CHECK_THAT(idx.status().message(), Catch::Contains("runs past the end"));
  }
  SECTION("a size field that is not a number") {
    TarBuilder t;
    t.file("a", "x");
    std::memcpy(t.bytes().data() + 124, "0000000009x", 11);
    t.fix_checksum(0);
    auto idx = scan(t.finish());
    REQUIRE_FALSE(idx.ok());
    CHECK_THAT(idx.status().message(), Catch::Contains("size field is not an octal number"));
  }
  SECTION("a pax size past the end") {
    TarBuilder t;
    t.raw_pax(TarBuilder::pax_record("size", "999999999999999999"), "f", "data");
    auto idx = scan(t.finish());
    REQUIRE_FALSE(idx.ok());
    CHECK_THAT(idx.status().message(), Catch::Contains("runs past the end"));
  }
}

TEST_CASE("tar: truncated headers, bad checksums, long names, bad links") {
  SECTION("truncated header") {
    TarBuilder t;
    t.file("a", "x");
    std::string bytes = t.bytes() + std::string(100, 'z');
    auto idx = scan(bytes);
    REQUIRE_FALSE(idx.ok());
    CHECK_THAT(idx.status().message(), Catch::Contains("offset 1024: truncated"));
  }
  SECTION("checksum") {
    TarBuilder t;
    t.file("a", "x");
    t.bytes()[0] = 'b';
    auto idx = scan(t.finish());
    REQUIRE_FALSE(idx.ok());
    CHECK_THAT(idx.status().message(), Catch::Contains("bad header checksum"));
  }
  SECTION("a GNU long name over the bound") {
    TarBuilder t;
    t.gnu_long_name(std::string(kMaxTarName + 10, 'n'), "x");
    auto idx = scan(t.finish());
    REQUIRE_FALSE(idx.ok());
    CHECK_THAT(idx.status().message(), Catch::Contains("extension header of"));
  }
  SECTION("a pax path over the bound") {
    TarBuilder t;
    t.raw_pax(TarBuilder::pax_record("path", std::string(kMaxTarName + 1, 'p')), "f", "x");
    auto idx = scan(t.finish());
    REQUIRE_FALSE(idx.ok());
    CHECK_THAT(idx.status().message(), Catch::Contains("name longer than 4096"));
  }
  SECTION("a name climbing above the root") {
    TarBuilder t;
    t.file("../etc/passwd", "x");
    auto idx = scan(t.finish());
    REQUIRE_FALSE(idx.ok());
    CHECK_THAT(idx.status().message(), Catch::Contains("climbs above the archive root"));
  }
  SECTION("a hard link to nothing earlier") {
    TarBuilder t;
    t.hardlink("h", "later");
    t.file("later", "x");
    auto idx = scan(t.finish());
    REQUIRE_FALSE(idx.ok());
    CHECK_THAT(idx.status().message(), Catch::Contains("no earlier regular file"));
  }
  SECTION("a dangling symlink") {
    TarBuilder t;
    t.symlink("s", "missing");
    auto idx = scan(t.finish());
    REQUIRE_FALSE(idx.ok());
    CHECK_THAT(idx.status().message(), Catch::Contains("no regular file of the archive"));
  }
  SECTION("a symlink out of the archive") {
    TarBuilder t;
    t.symlink("a/s", "../../etc/shadow");
    auto idx = scan(t.finish());
    REQUIRE_FALSE(idx.ok());
    CHECK_THAT(idx.status().message(), Catch::Contains("points outside the archive"));
  }
  SECTION("a symlink loop") {
    TarBuilder t;
    t.symlink("a", "b");
    t.symlink("b", "a");
    auto idx = scan(t.finish());
    REQUIRE_FALSE(idx.ok());
    CHECK_THAT(idx.status().message(), Catch::Contains("symlink hops"));
  }
}

TEST_CASE("tar: at most kMaxTarEntries headers") {
  TarBuilder t;
  std::string& b = t.bytes();
  t.header("x", 0, '0');
  const std::string one = b;
  b.reserve((kMaxTarEntries + 1) * 512);
  for (size_t i = 0; i < kMaxTarEntries; ++i) b += one;
  auto idx = scan(b);
  REQUIRE_FALSE(idx.ok());
  CHECK_THAT(idx.status().message(), Catch::Contains("more than 100000 entries"));
}

TEST_CASE("tar: at most kMaxTarNameBytes of names in all") {
  TarBuilder t;
  // 8400 entries named by 4006-byte pax paths: 33.6 MB of names.
  for (size_t i = 0; i < 8400; ++i) {
    const std::string rec =
        TarBuilder::pax_record("path", std::string(4000, 'n') + std::to_string(100000 + i));
    t.header("PaxHeaders/p", rec.size(), 'x');
    t.data(rec);
    t.header("p", 0, '0');
  }
  auto idx = scan(t.bytes());
  REQUIRE_FALSE(idx.ok());
  CHECK_THAT(idx.status().message(), Catch::Contains("names exceed 33554432 bytes in all"));
}

TEST_CASE("tar: normalize_tar_path") {
  CHECK(normalize_tar_path("./a/./b//c/").value() == "a/b/c");
  CHECK(normalize_tar_path("a/../b").value() == "b");
  CHECK(normalize_tar_path("/").value().empty());
  CHECK_FALSE(normalize_tar_path("a/../../b").ok());
}
