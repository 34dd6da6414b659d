// Small helpers of herd_bench: arguments, clocks, loopback port polling,
// config text for the in-process Supervisor, and the JSON result line.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace bench {

using SysTime = std::chrono::system_clock::time_point;

// --key value arguments after the subcommand.
class Args {
 public:
  Args(int argc, char** argv, int first);
  std::string str(const std::string& key, const std::string& def = "") const;
  long num(const std::string& key, long def) const;
  bool has(const std::string& key) const { return values_.count(key) > 0; }

 private:
  std::map<std::string, std::string> values_;
};

// Milliseconds between two wall-clock points (b - a).
double ms(SysTime a, SysTime b);

// True when something accepts a TCP connection on 127.0.0.1:port now.
bool port_answers(uint16_t port);

// Polls 127.0.0.1:port every `every` until it answers (want == true) or
// refuses (want == false); returns the wall-clock time of the first attempt
// that showed it, or nothing after `timeout`.
std::optional<SysTime> wait_port(uint16_t port, bool want, std::chrono::milliseconds timeout,
                                 std::chrono::microseconds every = std::chrono::microseconds(500));

// The JSON of one busybox httpd component for a herd config.
std::string httpd_component(const std::string& name, uint16_t port, const std::string& archive,
                            const std::string& restart_json, const std::string& probe_interval);

// A whole herd config.
std::string herd_config(const std::string& address, const std::string& ns,
                        const std::string& data_path, const std::vector<std::string>& components);

// Prints {"bench": name, "samples": {...}, "info": {...}} on one line.
void emit(const std::string& bench, const std::map<std::string, std::vector<double>>& samples,
          const nlohmann::json& info = nlohmann::json::object());

// The proportional set size of process `pid` in kB (smaps_rollup), 0 when
// it cannot be read.
double pss_kb(uint32_t pid);

// Logs to stderr with a timestamp.
void log(const std::string& line);

}  // namespace bench
