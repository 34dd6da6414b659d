#include "supervise/grpc_health.h"

#include <grpcpp/create_channel_posix.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <vector>

namespace herd::supervise {
namespace {

constexpr char kMethod[] = "/grpc.health.v1.Health/Check";
constexpr std::size_t kMaxResponseBytes = 4096;

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

// HealthCheckRequest{service = 1}: empty when service is "" (proto3 default).
std::string encode_request(const std::string& service) {
  std::string out;
  if (service.empty()) return out;
  out += static_cast<char>(0x0a);  // field 1, length-delimited
  put_varint(out, service.size());
  out += service;
  return out;
}

bool get_varint(const std::string& in, std::size_t& pos, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && pos < in.size(); shift += 7) {
    const auto b = static_cast<unsigned char>(in[pos++]);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// HealthCheckResponse's status (field 1, varint); unknown fields skipped.
// 0 (UNKNOWN) when absent; -1 when the bytes are not a valid message.
int64_t decode_status(const std::string& in) {
  int64_t status = 0;
  std::size_t pos = 0;
  while (pos < in.size()) {
    uint64_t key = 0;
    if (!get_varint(in, pos, key)) return -1;
    const uint64_t field = key >> 3;
    const uint64_t wire = key & 7;
    uint64_t v = 0;
    switch (wire) {
      case 0:
        if (!get_varint(in, pos, v)) return -1;
        if (field == 1) status = static_cast<int64_t>(v);
        break;
      case 1:
        pos += 8;
        break;
      case 2:
        if (!get_varint(in, pos, v) || v > in.size() - std::min(pos, in.size())) return -1;
        pos += v;
        break;
      case 5:
        pos += 4;
        break;
      default:
        return -1;
    }
    if (pos > in.size()) return -1;
  }
  return status;
}

std::string status_name(int64_t s) {
  switch (s) {
    case 0:
      return "UNKNOWN";
    case 1:
      return "SERVING";
    case 2:
      return "NOT_SERVING";
    case 3:
      return "SERVICE_UNKNOWN";
  }
  return std::to_string(s);
}

std::string code_name(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    default:
      return "code " + std::to_string(static_cast<int>(c));
  }
}

class Call final : public GrpcHealthCall {
 public:
  void cancel() override { ctx.TryCancel(); }

  grpc::ClientContext ctx;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::GenericStub> stub;
};

}  // namespace

std::shared_ptr<GrpcHealthCall> grpc_health_check(
    asio::any_io_executor executor, int fd, const std::string& authority,
    const std::string& service, std::chrono::milliseconds timeout,
    std::function<void(bool ok, std::string detail)> done) {
  auto call = std::make_shared<Call>();
  call->channel = grpc::CreateInsecureChannelFromFd(authority, fd);
  call->stub = std::make_unique<grpc::GenericStub>(call->channel);
  call->ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  const std::string bytes = encode_request(service);
  grpc::Slice slice(bytes);
  call->request = grpc::ByteBuffer(&slice, 1);
  // The callback keeps the call alive; its reference goes to `executor`
  // once `done` has run (see the header).
  Call* raw = call.get();
  auto keep = std::make_shared<std::shared_ptr<Call>>(call);
  auto finish = [keep, executor, done = std::move(done)](bool ok, std::string detail) {
    done(ok, std::move(detail));
    asio::post(executor, [held = std::move(*keep)] {});
  };
  call->stub->UnaryCall(&call->ctx, kMethod, grpc::StubOptions(), &call->request, &call->response,
                        [raw, done = std::move(finish)](grpc::Status s) {
                          if (!s.ok()) {
                            std::string msg = s.error_message();
                            if (msg.size() > 200) msg = msg.substr(0, 200) + "...";
                            done(false, code_name(s.error_code()) + ": " + msg);
                            return;
                          }
                          std::vector<grpc::Slice> slices;
                          std::string body;
                          if (raw->response.Dump(&slices).ok()) {
                            for (const auto& sl : slices) {
                              if (body.size() + sl.size() > kMaxResponseBytes) break;
                              body.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
                            }
                          }
                          const int64_t status = decode_status(body);
                          if (status < 0) {
                            done(false, "malformed HealthCheckResponse");
                            return;
                          }
                          done(status == 1, "status " + status_name(status));
                        });
  return call;
}

}  // namespace herd::supervise
