// herdctl's image verbs (herdctl.cpp parses the command line):
//
//   image import FILE [--json]  FILE (read by herdctl, its caller's
//                            permissions) streamed to herdd, which imports
//                            it; the upload's progress is shown as the
//                            pull's (below): a bar on a terminal, a line
//                            per 10% otherwise, {"event":"upload",...}
//                            lines then {"event":"result","images":[...]}
//                            with --json
//   image pull REF [--json]  pull REF from its registry through herdd,
//                            showing progress while it runs
//   image ls [--json]        herd's images: NAME, DIGEST, SIZE, USED BY
//   image rm REF             delete one image no component uses
//   image prune              delete every image no component uses
//
// Pull progress: on a terminal one bar line per blob, redrawn in place;
// otherwise plain lines, one per blob as it finishes and one summary of
// the bytes so far at most every second; with --json one JSON object per
// event ({"event":"progress",...}, then {"event":"result",...} or
// {"event":"error",...}). A successful pull ends with "pulled NAME
// (DIGEST): ..." and exit 0; a failed one with "herdctl: pull REF: ..." on
// stderr and exit 1. A pull (as an import) waits 30 min for herdd unless
// --timeout is given; herdd ends a pull after 30 min itself.
//
// Each returns the exit code (herdctl_call.h).
#pragma once

#include <string>

#include "daemon/herdctl_call.h"

namespace herd::ctl {

int cmd_import(const Target& t, const std::string& file, bool as_json);
int cmd_pull(const Target& t, const std::string& reference, bool as_json);
int cmd_images(const Target& t, bool as_json);
int cmd_image_rm(const Target& t, const std::string& reference);
int cmd_image_prune(const Target& t);

// "0 B", "512 B", "1.5 KiB", "12.3 MiB", "1.02 GiB" (binary units).
std::string human_bytes(uint64_t n);
// The first 12 hex digits of "sha256:<hex>" (the digest itself when it has
// no algorithm prefix, or is shorter).
std::string short_digest(const std::string& digest);

}  // namespace herd::ctl
