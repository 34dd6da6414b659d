// Command-line habits shared by herdd and herdctl (CLI11):
// - duration_check(): an option's validator for the config's duration
//   syntax or a bare number of seconds (config/cli_duration.h), with
//   CLI11's own message format `--timeout: invalid duration "10x": ...`;
// - parse_or_exit(): parses, printing help when asked (exit 0) and any
//   other parse error as ONE line naming the option (exit 2, the usage
//   and config-error code of both programs) instead of CLI11's dump.
//
// Thread-safety: plain functions of the calling thread (main).
#pragma once

#include <iostream>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "config/cli_duration.h"

namespace herd::cli {

// `positive`: zero is refused too.
inline CLI::Validator duration_check(bool positive) {
  return CLI::Validator(
      [positive](std::string& v) -> std::string {
        auto d = herd::config::parse_cli_duration(v);
        if (!d.ok()) return d.status().message();
        if (positive && d->count() <= 0) return "must be more than 0";
        return {};
      },
      "");
}

// The duration of a value duration_check() accepted.
inline config::Duration duration_of(const std::string& checked) {
  auto d = herd::config::parse_cli_duration(checked);
  return d.ok() ? *d : config::Duration(0);
}

// nullopt: parsed, go on. Otherwise the exit code main returns.
inline std::optional<int> parse_or_exit(CLI::App& app, int argc, char** argv, const char* prog) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --help-all
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const CLI::ParseError& e) {
    std::cerr << prog << ": " << e.what() << " (" << prog << " --help for usage)\n";
    return 2;
  }
  return std::nullopt;
}

}  // namespace herd::cli
