#include "daemon/herdctl_kill.h"

#include <signal.h>

#include <cctype>
#include <cstring>
#include <iostream>

#include "herd/v1/control.grpc.pb.h"

namespace herd::ctl {

std::optional<int> parse_signal(std::string_view text) {
  if (text.empty() || text.size() > 16) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(text.front()))) {
    int n = 0;
    for (char c : text) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
      n = n * 10 + (c - '0');
      if (n > 64) return std::nullopt;
    }
    if (n < 1) return std::nullopt;
    return n;
  }
  std::string upper;
  for (char c : text) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper.rfind("SIG", 0) == 0) upper.erase(0, 3);
  for (int n = 1; n < SIGRTMIN; ++n) {
    const char* abbrev = sigabbrev_np(n);
    if (abbrev != nullptr && upper == abbrev) return n;
  }
  return std::nullopt;
}

int cmd_kill(const Target& t, const std::string& name, int signal) {
  auto stub = herd::v1::Control::NewStub(channel_to(t));
  grpc::ClientContext ctx;
  set_deadline(ctx, t);
  herd::v1::KillRequest req;
  req.set_name(name);
  req.set_signal(static_cast<uint32_t>(signal));
  herd::v1::KillResponse resp;
  grpc::Status s = stub->Kill(&ctx, req, &resp);
  if (!s.ok()) return report(s, ctx, t, &name);
  return kExitOk;
}

}  // namespace herd::ctl
