// herd::containerd::scan_tar: the table of contents of a tar archive read
// from a ByteSource, for hostile input (herdd is root; the archive is not).
//
// One pass over the headers; no data is read except extension headers.
// What it accepts:
// - ustar / POSIX (name + 155-byte prefix) and GNU headers; octal or GNU
//   base-256 numbers; the header checksum (unsigned or signed sum).
// - GNU long names 'L' and long link names 'K'; pax 'x' records `path`,
//   `linkpath`, `size` (other keys are checked for form and ignored);
//   pax global headers 'g' are checked for form and ignored.
// - regular files ('0', '\0', '7'); directories ('5') are skipped.
// - hard links ('1') to an earlier regular entry: the same data.
// - symlinks ('2'), resolved within the archive after the scan (relative
//   to the link's directory, at most kMaxSymlinkHops hops) to a regular
//   entry: the same data. Dangling or escaping links are refused.
// What it refuses, with an error naming the archive, entry and offset:
// devices, FIFOs, GNU sparse files (type 'S' or pax GNU.sparse.*), any
// other type, pax records whose length is not a positive decimal that
// fits the header, numbers that are not octal or overflow, data running
// past the end of the file, names longer than kMaxTarName bytes or
// climbing above the archive root, more than kMaxTarEntries headers or
// kMaxTarNameBytes of names in all (the table of contents stays small).
// Every header lies strictly after the previous one, so a scan ends after
// at most size()/512 steps whatever the input.
//
// Names are normalised: "./" and empty segments dropped, ".." resolved,
// a leading "/" and a trailing "/" removed. A later entry of the same name
// replaces an earlier one (as tar extraction does).
//
// Pure over the ByteSource; blocking when the source is a file (run it on
// a BlockingPool). Any thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/status.h"
#include "containerd/byte_source.h"

namespace herd::containerd {

inline constexpr std::size_t kMaxTarName = 4096;
inline constexpr std::size_t kMaxTarEntries = 100000;
inline constexpr std::size_t kMaxTarNameBytes = 32 << 20;  // all names together
inline constexpr std::size_t kMaxPaxHeader = 1 << 20;
inline constexpr int kMaxSymlinkHops = 16;

struct TarEntry {
  uint64_t offset = 0;  // of the data in the archive
  uint64_t size = 0;
  uint64_t header = 0;  // offset of the entry's header, for messages
};

using TarIndex = std::map<std::string, TarEntry>;

// The regular files of the archive (links resolved), by normalised name.
Result<TarIndex> scan_tar(const ByteSource& source);

// Normalises a path of an archive as described above; kInvalidArgument
// when it climbs above the root.
Result<std::string> normalize_tar_path(std::string_view name);

}  // namespace herd::containerd
