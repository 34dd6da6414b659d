#include "util.h"

#include <fstream>
#include <sstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iostream>
#include <stdexcept>
#include <thread>

namespace bench {

Args::Args(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) throw std::runtime_error("unexpected argument " + k);
    k = k.substr(2);
    if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      values_[k] = argv[++i];
    } else {
      values_[k] = "1";
    }
  }
}

std::string Args::str(const std::string& key, const std::string& def) const {
  auto it = values_.find(key);
  return it == values_.end() ? def : it->second;
}

long Args::num(const std::string& key, long def) const {
  auto it = values_.find(key);
  return it == values_.end() ? def : std::stol(it->second);
}

double ms(SysTime a, SysTime b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

bool port_answers(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

std::optional<SysTime> wait_port(uint16_t port, bool want, std::chrono::milliseconds timeout,
                                 std::chrono::microseconds every) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto at = std::chrono::system_clock::now();
    if (port_answers(port) == want) return at;
    if (std::chrono::steady_clock::now() > until) return std::nullopt;
    std::this_thread::sleep_for(every);
  }
}

double pss_kb(uint32_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Pss:", 0) != 0) continue;
    double kb = 0;
    std::istringstream(line.substr(4)) >> kb;
    return kb;
  }
  return 0;
}

std::string httpd_component(const std::string& name, uint16_t port, const std::string& archive,
                            const std::string& restart_json, const std::string& probe_interval) {
  const std::string p = std::to_string(port);
  return R"({"name": ")" + name + R"(", "image": "herd.local/busybox:latest", "image_archive": ")" +
         archive + R"(", "args": ["httpd", "-f", "-p", "127.0.0.1:)" + p +
         R"(", "-h", "/var/www"], "ready": {"tcp": {"port": )" + p + R"(}, "interval": ")" +
         probe_interval + R"("}, "restart": )" + restart_json + R"(, "stop_grace": "0"})";
}

std::string herd_config(const std::string& address, const std::string& ns,
                        const std::string& data_path, const std::vector<std::string>& components) {
  std::string text = R"({"containerd": {"address": ")" + address + R"(", "namespace": ")" + ns +
                     R"("}, "data_path": ")" + data_path +
                     R"(", "stop_budget": "120s", "components": [)";
  for (size_t i = 0; i < components.size(); ++i) text += (i ? ",\n" : "\n") + components[i];
  return text + "]}\n";
}

void emit(const std::string& bench, const std::map<std::string, std::vector<double>>& samples,
          const nlohmann::json& info) {
  nlohmann::json j;
  j["bench"] = bench;
  j["samples"] = samples;
  j["info"] = info;
  std::cout << j.dump() << std::endl;
}

void log(const std::string& line) {
  const auto t =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", t);
  std::cerr << "[herd_bench " << buf << "] " << line << std::endl;
}

}  // namespace bench
