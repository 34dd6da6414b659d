// libFuzzer target: the tar reader and the archive on top of it, over
// in-memory bytes. Every input must end in a table of contents or a
// Status, in time linear in its size; no crash, no sanitizer report.
// Found files are read back, and index.json / manifest.json parsed.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "containerd/byte_source.h"
#include "containerd/oci_archive.h"

using namespace herd::containerd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto src = std::make_shared<const MemorySource>(
      std::string(reinterpret_cast<const char*>(data), size), "fuzz.tar");
  auto archive = OciArchive::open(src);
  if (!archive.ok()) return 0;
  for (const auto& [name, entry] : archive->entries()) {
    // Every entry lies inside the file.
    if (entry.offset > size || entry.size > size - entry.offset) __builtin_trap();
    std::string buf;
    (void)archive->read_range(entry, 0, 4096, buf);
  }
  (void)archive->index();
  (void)archive->docker_manifest();
  return 0;
}
