// herd::metrics: the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/), written
// by hand: families with HELP and TYPE, samples with escaped labels, and a
// fixed-bucket histogram.
//
// Contract:
// - TextWriter::family() starts a metric family; its samples follow with
//   sample() (or Histogram::write()). A family is written once per
//   exposition; names must match [a-zA-Z_:][a-zA-Z0-9_:]* and label names
//   [a-zA-Z_][a-zA-Z0-9_]* (the callers' constants; not checked at run
//   time). Label values are escaped (\\, \", \n); any bytes are safe.
// - Values: integers print without an exponent or fraction ("3"), other
//   values with up to 17 significant digits; NaN and infinities as "NaN",
//   "+Inf", "-Inf".
// - Histogram: cumulative buckets at the bounds given (sorted, finite),
//   plus le="+Inf", _sum and _count, as Prometheus expects.
//
// Thread-safety: value types, no shared state; callers serialise access.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herd::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

// The Content-Type of the format.
inline constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

std::string escape_label_value(std::string_view v);
std::string format_value(double v);

class TextWriter {
 public:
  // "counter", "gauge", "histogram" or "untyped".
  void family(std::string_view name, std::string_view help, std::string_view type);
  void sample(std::string_view name, const Labels& labels, double value);
  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)), counts_(bounds_.size(), 0) {}
  void observe(double v);
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  // NAME_bucket{labels..., le="..."}, NAME_sum{labels}, NAME_count{labels}.
  void write(TextWriter& w, std::string_view name, const Labels& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0;
};

}  // namespace herd::metrics
