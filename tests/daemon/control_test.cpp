// Process-level tests of the control API: the real herdd and herdctl
// binaries against the fixture's containerd. herdctl's output and exit
// codes are what an operator sees, so they are what is checked.
#include <grp.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "daemon_harness.h"

using namespace herd;
using namespace herd::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// A busybox component serving HTTP on 127.0.0.1:port, exiting 0 on SIGTERM.
json httpd(const std::string& name, uint16_t port, const std::string& root = "/var/www") {
  return {{"name", name},
          {"image", "herd.local/busybox:latest"},
          {"image_archive", env().image("busybox.tar").string()},
          {"args",
           {"sh", "-c",
            "trap 'exit 0' TERM; httpd -f -p 127.0.0.1:" + std::to_string(port) + " -h " + root +
                " & wait"}},
          {"ready", {{"tcp", {{"port", port}}}, {"interval", "100ms"}}},
          {"restart", {{"base", "0s"}}},
          {"stop_grace", "5s"}};
}

uint32_t pid_of(const std::map<std::string, json>& st, const std::string& name) {
  auto it = st.find(name);
  return it == st.end() ? 0 : it->second.value("pid", 0u);
}

bool ready(const std::map<std::string, json>& st, const std::string& name) {
  auto it = st.find(name);
  return it != st.end() && it->second.value("state", "") == "ready";
}

bool container_exists(TestNamespace& ns, const std::string& id) {
  bool exists = false;
  run_coro([&]() -> asio::awaitable<void> {
    auto c = co_await ns.client().containers_get(id);
    exists = c.ok();
  });
  return exists;
}

// herdctl as uid/gid 65534 ("nobody"), with `groups` as its only
// supplementary groups (none when empty).
std::pair<int, std::string> herdctl_as_nobody(const std::filesystem::path& socket,
                                              const std::string& args,
                                              const std::string& groups = "") {
  std::string cmd = "setpriv --reuid=65534 --regid=65534 ";
  cmd += groups.empty() ? "--clear-groups " : "--groups=" + groups + " ";
  return run(cmd + HERDCTL_BINARY + " --socket " + socket.string() + " " + args);
}

}  // namespace

TEST_CASE("herdctl shows status and starts stops and restarts one component", "[e2e]") {
  TestNamespace ns("ctl-ops");
  auto data = temp_path("data-ops");
  auto cfg = temp_path("ops.json");
  auto sock = socket_of(data);
  json c = base_config(ns, data);
  c["control_group"] = "4242";
  c["components"].push_back(httpd("web", free_tcp_port()));
  json worker = sleeper("worker");
  worker["depends_on"] = {"web"};
  c["components"].push_back(worker);
  write_file(cfg, c.dump(2));

  NotifySocket notify;
  Herdd herdd(cfg, notify);
  REQUIRE_FALSE(notify.wait_for("READY=1").empty());

  // The table an operator reads.
  auto [code, table] = herdctl(sock, "status");
  INFO(table);
  CHECK(code == 0);
  CHECK_THAT(table, Catch::Contains("web"));
  CHECK_THAT(table, Catch::Contains("worker"));
  CHECK_THAT(table, Catch::Contains("ready"));
  auto [one_code, one] = herdctl(sock, "status web");
  INFO(one);
  CHECK(one_code == 0);
  CHECK_THAT(one, Catch::Contains("herd.local/busybox:latest"));

  // Unknown names: a clear error and exit code 1.
  for (const std::string verb : {"status", "start", "stop", "restart"}) {
    auto [bad_code, bad] = herdctl(sock, verb + " nosuch");
    INFO(verb << ": " << bad);
    CHECK(bad_code == 1);
    CHECK_THAT(bad, Catch::Contains("no component named 'nosuch'"));
  }

  // SIGKILL of the component's process: back, with restarts = 1.
  auto st = status_json(sock);
  const uint32_t web_pid = pid_of(st, "web");
  REQUIRE(web_pid > 0);
  REQUIRE(::kill(static_cast<pid_t>(web_pid), SIGKILL) == 0);
  CHECK(status_until(sock, [&](auto& s) {
    return ready(s, "web") && pid_of(s, "web") != web_pid && s.at("web").value("restarts", 0) == 1;
  }));

  // stop: the container goes; start: it comes back.
  auto [stop_code, stop_out] = herdctl(sock, "stop worker");
  INFO(stop_out);
  CHECK(stop_code == 0);
  CHECK(status_until(sock, [&](auto& s) { return state_of(s, "worker") == "stopped"; }));
  CHECK_FALSE(container_exists(ns, "worker"));
  auto [start_code, start_out] = herdctl(sock, "start worker");
  INFO(start_out);
  CHECK(start_code == 0);
  CHECK(status_until(sock, [&](auto& s) { return ready(s, "worker"); }));

  // restart: a new task.
  const uint32_t before = pid_of(status_json(sock), "web");
  auto [re_code, re_out] = herdctl(sock, "restart web");
  INFO(re_out);
  CHECK(re_code == 0);
  CHECK(status_until(sock, [&](auto& s) {
    return ready(s, "web") && pid_of(s, "web") != before && pid_of(s, "web") != 0;
  }));

  // An OCI archive imported through herdd lands in its namespace.
  auto [imp_code, imp] = herdctl(sock, "image import " + env().image("busybox.tar").string());
  INFO(imp);
  CHECK(imp_code == 0);
  CHECK_THAT(imp, Catch::Contains("herd.local/busybox:latest"));
  auto [imp_bad_code, imp_bad] = herdctl(sock, "image import /nonexistent/image.tar");
  INFO(imp_bad);
  CHECK(imp_bad_code == 1);
  CHECK_THAT(imp_bad, Catch::Contains("/nonexistent/image.tar"));

  // A second herdd on the same socket refuses to start; the first serves on.
  {
    NotifySocket notify2;
    Herdd second(cfg, notify2);
    CHECK(second.wait(60s) == 4);
  }
  CHECK(herdctl(sock, "status").first == 0);

  // The socket: 0660, root and the configured group.
  struct stat sb {};
  REQUIRE(::stat(sock.c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0660);
  CHECK(sb.st_gid == 4242);
  // Not root, not in the group: the socket's mode keeps it out.
  auto [nobody_code, nobody] = herdctl_as_nobody(sock, "status");
  INFO(nobody);
  CHECK(nobody_code != 0);
  CHECK_THAT(nobody, Catch::Contains("ermission denied"));
  // In the group: allowed.
  auto [member_code, member] = herdctl_as_nobody(sock, "status", "4242");
  INFO(member);
  CHECK(member_code == 0);
  CHECK_THAT(member, Catch::Contains("web"));
  // Even when the file mode is opened up, herdd checks the peer itself.
  REQUIRE(::chmod(sock.c_str(), 0666) == 0);
  auto [peer_code, peer] = herdctl_as_nobody(sock, "stop web");
  INFO(peer);
  CHECK(peer_code == 1);
  CHECK_THAT(peer, Catch::Contains("may not use the herd control socket"));
  CHECK(ready(status_json(sock), "web"));  // untouched

  herdd.signal(SIGTERM);
  CHECK(herdd.wait() == 0);
  CHECK_FALSE(std::filesystem::exists(sock));
  run_coro([&]() -> asio::awaitable<void> { co_await ns.finish(); });
  std::filesystem::remove_all(data);
  std::filesystem::remove(cfg);
}

TEST_CASE("reload adds removes and re-creates by spec and refuses bad configs", "[e2e]") {
  TestNamespace ns("ctl-reload");
  auto data = temp_path("data-reload");
  auto cfg = temp_path("reload.json");
  auto sock = socket_of(data);
  json c = base_config(ns, data);
  const auto ports = free_tcp_ports(4);  // keep, change, policy, fresh
  c["components"] = {httpd("keep", ports[0]), httpd("change", ports[1]), sleeper("gone"),
                     httpd("policy", ports[2])};
  write_file(cfg, c.dump(2));

  NotifySocket notify;
  Herdd herdd(cfg, notify);
  REQUIRE_FALSE(notify.wait_for("READY=1").empty());
  auto before = status_json(sock);
  for (const auto* n : {"keep", "change", "gone", "policy"}) REQUIRE(pid_of(before, n) > 0);

  // Bad configs are refused with their JSON paths, and nothing is touched.
  struct Bad {
    const char* what;
    std::function<void(json&)> edit;
    const char* expect;
  };
  const std::vector<Bad> bad = {
      {"typo", [](json& j) { j["components"][0]["stop_grce"] = "1s"; }, "/components/0/stop_grce"},
      {"cycle",
       [](json& j) {
         j["components"][0]["depends_on"] = {"change"};
         j["components"][1]["depends_on"] = {"keep"};
       },
       "cycle"},
      {"bad port", [](json& j) { j["components"][0]["ready"]["tcp"]["port"] = 70000; },
       "/components/0/ready/tcp/port"},
      {"missing image", [](json& j) { j["components"][1].erase("image"); }, "/components/1/image"},
      {"containerd moved", [](json& j) { j["containerd"]["namespace"] = "elsewhere"; },
       "containerd.namespace"},
  };
  for (const auto& b : bad) {
    json broken = c;
    b.edit(broken);
    write_file(cfg, broken.dump(2));
    auto [code, out] = herdctl(sock, "reload");
    INFO(b.what << ": " << out);
    CHECK(code == 1);
    CHECK_THAT(out, Catch::Contains(b.expect));
    // The same file is refused at start, too (except what only a reload
    // can get wrong).
    if (std::string(b.what) != "containerd moved") {
      auto [start_code, start_out] =
          run(std::string(HERDD_BINARY) + " --check-config --config " + cfg.string());
      INFO(start_out);
      CHECK(start_code == 2);
      CHECK_THAT(start_out, Catch::Contains(b.expect));
    }
  }
  auto after_bad = status_json(sock);
  for (const auto* n : {"keep", "change", "gone", "policy"}) {
    INFO(n);
    CHECK(pid_of(after_bad, n) == pid_of(before, n));
  }

  // Add one, remove one, change one's command, change one's policy only.
  json next = c;
  next["components"] = {httpd("keep", ports[0]), httpd("change", ports[1], "/"),
                        httpd("policy", ports[2]), httpd("fresh", ports[3])};
  next["components"][2]["restart"]["base"] = "1s";
  write_file(cfg, next.dump(2));
  auto [code, out] = herdctl(sock, "reload");
  INFO(out);
  REQUIRE(code == 0);
  CHECK_FALSE(notify.wait_for("RELOADING=1").empty());
  CHECK(status_until(sock, [&](auto& s) {
    return ready(s, "fresh") && ready(s, "change") && ready(s, "policy") && ready(s, "keep") &&
           !s.count("gone") && pid_of(s, "change") != pid_of(before, "change");
  }));
  auto after = status_json(sock);
  CHECK(pid_of(after, "keep") == pid_of(before, "keep"));      // untouched
  CHECK(pid_of(after, "policy") == pid_of(before, "policy"));  // same spec: adopted
  CHECK(after.at("policy").value("adopted", false));
  CHECK(pid_of(after, "change") != pid_of(before, "change"));           // re-created
  CHECK(::kill(static_cast<pid_t>(pid_of(before, "change")), 0) != 0);  // the old one is gone
  auto gone_removed = [&] {
    for (int i = 0; i < 300 && container_exists(ns, "gone"); ++i) ::usleep(100000);
    return !container_exists(ns, "gone");
  };
  CHECK(gone_removed());

  // SIGHUP does the same, and systemd hears RELOADING=1 then READY=1.
  json last = next;
  last["components"].erase(3);  // fresh
  write_file(cfg, last.dump(2));
  herdd.signal(SIGHUP);
  CHECK(status_until(sock, [&](auto& s) { return !s.count("fresh") && s.size() == 3; }));
  CHECK_FALSE(notify.wait_for("RELOADING=1").empty());
  CHECK_FALSE(notify.wait_for("READY=1").empty());

  herdd.signal(SIGTERM);
  CHECK(herdd.wait() == 0);
  run_coro([&]() -> asio::awaitable<void> { co_await ns.finish(); });
  std::filesystem::remove_all(data);
  std::filesystem::remove(cfg);
}

// config/node.json as shipped, pointed at the fixture: etcd and
// victoria-metrics for real.
TEST_CASE("the node config runs etcd and victoria-metrics and a killed etcd comes back", "[e2e]") {
  TestNamespace ns("ctl-node");
  auto data = temp_path("data-node");
  auto cfg = temp_path("node.json");
  auto sock = socket_of(data);
  std::ifstream in(std::string(HERD_SOURCE_DIR) + "/config/node.json");
  json c = json::parse(in);
  c["containerd"] = {{"address", env().address()}, {"namespace", ns.name()}};
  c["data_path"] = data.string();
  c["control_socket"] = sock.string();
  // Docker Hub is a closed loopback port here (containerd's hosts.toml).
  const std::filesystem::path hosts = data / "certs.d";
  std::filesystem::create_directories(hosts / "docker.io");
  write_file(hosts / "docker.io" / "hosts.toml",
             "server = \"http://127.0.0.1:" + std::to_string(free_tcp_ports(1)[0]) + "\"\n");
  c["registry"] = {{"hosts_dir", hosts.string()}};
  // The machine may cap open files below the seed's 65536 (without
  // CAP_SYS_RESOURCE nothing can raise it; see docs/operations.md).
  rlimit nofile{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &nofile) == 0);
  // The config's fixed ports (etcd's client and peer ports, VictoriaMetrics')
  // become free ones, so the test collides with nothing else on the machine.
  const auto picked = free_tcp_ports(3);
  const std::map<uint16_t, uint16_t> port_for = {
      {12379, picked[0]}, {12380, picked[1]}, {8428, picked[2]}};
  auto with_free_ports = [&](std::string s) {
    for (const auto& [from, to] : port_for) {
      const std::string a = "127.0.0.1:" + std::to_string(from);
      const std::string b = "127.0.0.1:" + std::to_string(to);
      for (size_t at = s.find(a); at != std::string::npos; at = s.find(a, at + b.size()))
        s.replace(at, a.size(), b);
    }
    return s;
  };
  const std::string etcd_url = "http://127.0.0.1:" + std::to_string(port_for.at(12379));
  const std::string vm_url = "http://127.0.0.1:" + std::to_string(port_for.at(8428));
  for (auto& comp : c["components"]) {
    for (auto& arg : comp["args"]) arg = with_free_ports(arg.get<std::string>());
    for (const char* kind : {"tcp", "http"}) {
      if (!comp.contains("ready") || !comp["ready"].contains(kind)) continue;
      auto& port = comp["ready"][kind]["port"];
      if (auto it = port_for.find(port.get<uint16_t>()); it != port_for.end()) port = it->second;
    }
    const std::string name = comp["name"];
    if (name == "etcd") comp["image_archive"] = env().image("etcd.tar").string();
    if (name == "victoriametrics")
      comp["image_archive"] = env().image("victoria-metrics.tar").string();
    if (comp.contains("rlimits") && comp["rlimits"].contains("nofile") &&
        comp["rlimits"]["nofile"].is_number() &&
        comp["rlimits"]["nofile"].get<uint64_t>() > nofile.rlim_max)
      comp["rlimits"]["nofile"] = nofile.rlim_max;
  }
  write_file(cfg, c.dump(2));

  NotifySocket notify;
  Herdd herdd(cfg, notify);
  REQUIRE(status_until(
      sock, [&](auto& s) { return ready(s, "etcd") && ready(s, "victoriametrics"); }, 180s));
  auto [health_code, health] =
      run("etcdctl --endpoints=" + etcd_url + " --command-timeout=10s endpoint health");
  INFO(health);
  CHECK(health_code == 0);
  CHECK_THAT(health, Catch::Contains("is healthy"));
  auto [vm_code, vm] = run("curl -sf --max-time 10 " + vm_url + "/health");
  INFO(vm);
  CHECK(vm_code == 0);
  CHECK_THAT(vm, Catch::Contains("OK"));
  // victorialogs comes from Docker Hub, which the config's hosts_dir
  // points at a closed loopback port (tests talk to loopback only): it is
  // visible, backing off, and says why.
  // (Each pull attempt retries the connection a few times first.)
  CHECK(status_until(sock, [&](auto& s) {
    return s.count("victorialogs") && s.at("victorialogs").value("state", "") == "backing_off";
  }));
  auto st = status_json(sock);
  REQUIRE(st.count("victorialogs"));
  CHECK_THAT(st["victorialogs"].value("last_error", ""), Catch::Contains("victoria-logs"));
  CHECK_THAT(st["victorialogs"].value("last_error", ""), Catch::Contains("registry unreachable"));

  // SIGKILL etcd's process: it comes back; herdctl status shows restarts=1.
  const uint32_t etcd_pid = pid_of(st, "etcd");
  REQUIRE(etcd_pid > 0);
  REQUIRE(::kill(static_cast<pid_t>(etcd_pid), SIGKILL) == 0);
  CHECK(status_until(sock, [&](auto& s) {
    return ready(s, "etcd") && pid_of(s, "etcd") != etcd_pid &&
           s.at("etcd").value("restarts", 0) == 1;
  }));
  auto [table_code, table] = herdctl(sock, "status");
  INFO(table);
  CHECK(table_code == 0);
  CHECK(run("etcdctl --endpoints=" + etcd_url + " --command-timeout=10s endpoint health").first ==
        0);

  herdd.signal(SIGTERM);
  CHECK(herdd.wait() == 0);
  run_coro([&]() -> asio::awaitable<void> { co_await ns.finish(); });
  std::filesystem::remove_all(data);
  std::filesystem::remove(cfg);
}
