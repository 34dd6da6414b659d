// herdctl kill [-s SIGNAL] NAME: sends a signal to a component's running
// task through herdd (the Kill RPC); herdd does not treat it as a stop.
//
// Thread-safety: plain functions of the calling thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "daemon/herdctl_call.h"

namespace herd::ctl {

// The signal `text` names: a number 1..64, or a name with or without
// "SIG", in any case ("HUP", "SIGHUP", "hup"). nullopt when it names none.
std::optional<int> parse_signal(std::string_view text);

// Exit 0 when herdd sent it; 1 with herdd's message otherwise.
int cmd_kill(const Target& t, const std::string& name, int signal);

}  // namespace herd::ctl
