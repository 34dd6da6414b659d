#include "control/convert.h"

namespace herd::control {

namespace {

int64_t opt_to_nano(const std::optional<std::chrono::system_clock::time_point>& t) {
  return t ? to_unix_nano(*t) : 0;
}

std::optional<std::chrono::system_clock::time_point> nano_to_opt(int64_t ns) {
  if (ns == 0) return std::nullopt;
  return from_unix_nano(ns);
}

}  // namespace

int64_t to_unix_nano(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::chrono::system_clock::time_point from_unix_nano(int64_t ns) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(ns)));
}

namespace {

void probe_to_proto(const ProbeView& v, herd::v1::ProbeResult* p) {
  p->set_kind(v.kind);
  p->set_ok(v.ok);
  p->set_at_unix_nano(to_unix_nano(v.at));
  p->set_duration_ms(v.duration.count());
  p->set_detail(v.detail);
}

ProbeView probe_from_proto(const herd::v1::ProbeResult& p) {
  ProbeView v;
  v.kind = p.kind();
  v.ok = p.ok();
  v.at = from_unix_nano(p.at_unix_nano());
  v.duration = std::chrono::milliseconds(p.duration_ms());
  v.detail = p.detail();
  return v;
}

}  // namespace

herd::v1::ComponentStatus to_proto(const ComponentView& s) {
  herd::v1::ComponentStatus p;
  p.set_name(s.name);
  p.set_image(s.image);
  p.set_state(s.state);
  p.set_pid(s.pid);
  p.set_restarts(s.restarts);
  if (s.last_exit_code) p.set_last_exit_code(*s.last_exit_code);
  p.set_last_exit_at_unix_nano(opt_to_nano(s.last_exit_at));
  p.set_ready_since_unix_nano(opt_to_nano(s.ready_since));
  p.set_started_at_unix_nano(opt_to_nano(s.started_at));
  p.set_changed_at_unix_nano(to_unix_nano(s.changed_at));
  p.set_last_error(s.last_error);
  p.set_adopted(s.adopted);
  p.set_last_exit_reason(s.last_exit_reason);
  p.set_oom_kills(s.oom_kills);
  p.set_standby(s.standby);
  for (const ExitView& e : s.exits) {
    herd::v1::ExitRecord* r = p.add_exits();
    r->set_at_unix_nano(to_unix_nano(e.at));
    r->set_exit_code(e.exit_code);
    r->set_reason(e.reason);
  }
  if (s.last_ready_probe) probe_to_proto(*s.last_ready_probe, p.mutable_last_ready_probe());
  if (s.last_liveness_probe)
    probe_to_proto(*s.last_liveness_probe, p.mutable_last_liveness_probe());
  return p;
}

ComponentView from_proto(const herd::v1::ComponentStatus& p) {
  ComponentView s;
  s.name = p.name();
  s.image = p.image();
  s.state = p.state();
  s.pid = p.pid();
  s.restarts = p.restarts();
  if (p.has_last_exit_code()) s.last_exit_code = p.last_exit_code();
  s.last_exit_at = nano_to_opt(p.last_exit_at_unix_nano());
  s.ready_since = nano_to_opt(p.ready_since_unix_nano());
  s.started_at = nano_to_opt(p.started_at_unix_nano());
  s.changed_at = from_unix_nano(p.changed_at_unix_nano());
  s.last_error = p.last_error();
  s.adopted = p.adopted();
  s.last_exit_reason = p.last_exit_reason();
  s.oom_kills = p.oom_kills();
  s.standby = p.standby();
  for (const herd::v1::ExitRecord& r : p.exits()) {
    ExitView e;
    e.at = from_unix_nano(r.at_unix_nano());
    e.exit_code = r.exit_code();
    e.reason = r.reason();
    s.exits.push_back(std::move(e));
  }
  if (p.has_last_ready_probe()) s.last_ready_probe = probe_from_proto(p.last_ready_probe());
  if (p.has_last_liveness_probe())
    s.last_liveness_probe = probe_from_proto(p.last_liveness_probe());
  return s;
}

v1::BlobProgress to_proto(const PullProgress& p) {
  v1::BlobProgress out;
  out.set_kind(p.kind);
  out.set_digest(p.digest);
  out.set_total(p.total);
  out.set_done(p.done);
  out.set_present(p.present);
  out.set_finished(p.finished);
  return out;
}

v1::PullResult to_proto(const PullSummary& s) {
  v1::PullResult out;
  out.set_name(s.name);
  out.set_target_digest(s.target_digest);
  out.set_target_media_type(s.target_media_type);
  out.set_blobs_fetched(s.blobs_fetched);
  out.set_blobs_present(s.blobs_present);
  out.set_bytes_fetched(s.bytes_fetched);
  return out;
}

v1::ImageInfo to_proto(const ImageView& v) {
  v1::ImageInfo out;
  out.set_name(v.name);
  out.set_target_digest(v.target_digest);
  out.set_target_media_type(v.target_media_type);
  if (v.size) out.set_size(*v.size);
  for (const std::string& c : v.used_by) out.add_used_by(c);
  return out;
}

}  // namespace herd::control
