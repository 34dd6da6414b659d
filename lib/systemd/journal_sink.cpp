#include "systemd/journal_sink.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/uio.h>

#include <array>
#include <charconv>
#include <cstddef>
#include <utility>

// Location fields come from the log record, not from this file.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

namespace herd::systemd {

int journal_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return 7;
    case spdlog::level::info:
      return 6;
    case spdlog::level::warn:
      return 4;
    case spdlog::level::err:
      return 3;
    case spdlog::level::critical:
      return 2;
    default:
      return 6;
  }
}

JournalSink::JournalSink(std::string identifier)
    : identifier_(std::move(identifier)), identifier_field_("SYSLOG_IDENTIFIER=" + identifier_) {}

namespace {

// Fields are appended to one buffer and remembered as (offset, length), so
// the iovecs can point into it once it has stopped growing.
class FieldBuilder {
 public:
  explicit FieldBuilder(std::string& buffer) : buffer_(buffer) { buffer_.clear(); }

  void add(std::string_view name_eq, std::string_view value) {
    if (count_ == spans_.size()) return;
    spans_[count_++] = {buffer_.size(), name_eq.size() + value.size()};
    buffer_.append(name_eq);
    buffer_.append(value);
  }
  template <class Int>
  void add_number(std::string_view name_eq, Int value) {
    std::array<char, 24> digits{};
    auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), value);
    (void)ec;  // 24 chars hold any 64-bit integer
    add(name_eq, std::string_view(digits.data(), static_cast<std::size_t>(end - digits.data())));
  }

  // The iovecs: `prefix` first (pointing elsewhere), then the fields.
  std::size_t fill(std::array<iovec, 10>& iov, const std::string& prefix) const {
    iov[0] = {const_cast<char*>(prefix.data()), prefix.size()};
    for (std::size_t i = 0; i < count_; ++i)
      iov[i + 1] = {buffer_.data() + spans_[i].first, spans_[i].second};
    return count_ + 1;
  }

 private:
  std::string& buffer_;
  std::array<std::pair<std::size_t, std::size_t>, 9> spans_{};
  std::size_t count_ = 0;
};

}  // namespace

void JournalSink::sink_it_(const spdlog::details::log_msg& msg) {
  FieldBuilder fields(buffer_);
  fields.add("MESSAGE=", std::string_view(msg.payload.data(), msg.payload.size()));
  fields.add_number("PRIORITY=", journal_priority(msg.level));
  std::string_view name(msg.logger_name.data(), msg.logger_name.size());
  if (!name.empty() && name != identifier_) fields.add("HERD_COMPONENT=", name);
  fields.add_number("TID=", msg.thread_id);
  if (!msg.source.empty()) {
    if (msg.source.filename != nullptr) fields.add("CODE_FILE=", msg.source.filename);
    fields.add_number("CODE_LINE=", msg.source.line);
    if (msg.source.funcname != nullptr) fields.add("CODE_FUNC=", msg.source.funcname);
  }
  std::array<iovec, 10> iov{};
  std::size_t n = fields.fill(iov, identifier_field_);
  if (sd_journal_sendv(iov.data(), static_cast<int>(n)) < 0)
    failed_.fetch_add(1, std::memory_order_relaxed);
}

std::optional<LogTarget> parse_log_target(std::string_view text) {
  if (text == "auto") return LogTarget::kAuto;
  if (text == "journald") return LogTarget::kJournald;
  if (text == "stderr") return LogTarget::kStderr;
  return std::nullopt;
}

std::string_view to_string(LogTarget target) {
  switch (target) {
    case LogTarget::kAuto:
      return "auto";
    case LogTarget::kJournald:
      return "journald";
    case LogTarget::kStderr:
      return "stderr";
  }
  return "auto";
}

namespace {

// %* in the stderr pattern: "[component] ", or nothing for the main logger.
class ComponentFlag final : public spdlog::custom_flag_formatter {
 public:
  explicit ComponentFlag(std::string identifier) : identifier_(std::move(identifier)) {}

  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view name(msg.logger_name.data(), msg.logger_name.size());
    if (name.empty() || name == identifier_) return;
    dest.push_back('[');
    dest.append(name.data(), name.data() + name.size());
    dest.push_back(']');
    dest.push_back(' ');
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<ComponentFlag>(identifier_);
  }

 private:
  std::string identifier_;
};

}  // namespace

std::shared_ptr<spdlog::sinks::sink> make_stderr_sink(std::string identifier) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<ComponentFlag>('*', std::move(identifier))
      .set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %*%v");
  sink->set_formatter(std::move(formatter));
  return sink;
}

std::shared_ptr<spdlog::sinks::sink> make_log_sink(LogTarget target, std::string identifier) {
  if (target == LogTarget::kJournald || (target == LogTarget::kAuto && journald_available())) {
    return std::make_shared<JournalSink>(std::move(identifier));
  }
  return make_stderr_sink(std::move(identifier));
}

}  // namespace herd::systemd
