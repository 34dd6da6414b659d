// The containerd client's image and content store services: images,
// content (info, labels, delete, the read stream and the Write bidi
// stream), snapshots, leases and diff. The channel, the contexts and the
// runtime-side services are in client.cpp.
#include "containerd/client.h"

#include <grpcpp/grpcpp.h>

#include <ctime>

#include "containerd/bridge.h"
#include "containerd/client_unary.h"
#include "containerd/internal.h"
#include "containerd/stubs.h"

namespace herd::containerd {

namespace cs = ::containerd::services;
using google::protobuf::Empty;

namespace {

template <class Map>
void put_labels(Map* m, const Labels& labels) {
  for (const auto& [k, v] : labels) (*m)[k] = v;
}

}  // namespace

// ---- images

asio::awaitable<Result<Image>> Client::images_get(std::string name, CallOptions o) {
  cs::images::v1::GetImageRequest req;
  req.set_name(name);
  auto r = co_await HERD_UNARY(cs::images::v1::GetImageResponse, images, Get, req, o,
                               "images.get " + name);
  if (!r.ok()) co_return r.status();
  co_return std::move(*r->mutable_image());
}

asio::awaitable<Result<std::vector<Image>>> Client::images_list(std::vector<std::string> filters,
                                                                CallOptions o) {
  cs::images::v1::ListImagesRequest req;
  for (auto& f : filters) req.add_filters(f);
  auto r =
      co_await HERD_UNARY(cs::images::v1::ListImagesResponse, images, List, req, o, "images.list");
  if (!r.ok()) co_return r.status();
  co_return std::vector<Image>(r->images().begin(), r->images().end());
}

asio::awaitable<Result<Image>> Client::images_create(Image image, CallOptions o) {
  cs::images::v1::CreateImageRequest req;
  std::string what = "images.create " + image.name();
  *req.mutable_image() = std::move(image);
  auto r = co_await HERD_UNARY(cs::images::v1::CreateImageResponse, images, Create, req, o, what);
  if (!r.ok()) co_return r.status();
  co_return std::move(*r->mutable_image());
}

asio::awaitable<Result<Image>> Client::images_update(Image image, CallOptions o) {
  cs::images::v1::UpdateImageRequest req;
  std::string what = "images.update " + image.name();
  *req.mutable_image() = std::move(image);
  req.mutable_update_mask()->add_paths("target");
  req.mutable_update_mask()->add_paths("labels");
  auto r = co_await HERD_UNARY(cs::images::v1::UpdateImageResponse, images, Update, req, o, what);
  if (!r.ok()) co_return r.status();
  co_return std::move(*r->mutable_image());
}

asio::awaitable<Status> Client::images_delete(std::string name, bool sync, CallOptions o) {
  cs::images::v1::DeleteImageRequest req;
  req.set_name(name);
  req.set_sync(sync);
  auto r = co_await HERD_UNARY(Empty, images, Delete, req, o, "images.delete " + name);
  co_return r.ok() ? Status::Ok() : r.status();
}

// ---- content

asio::awaitable<Result<ContentInfo>> Client::content_info(std::string digest, CallOptions o) {
  cs::content::v1::InfoRequest req;
  req.set_digest(digest);
  auto r = co_await HERD_UNARY(cs::content::v1::InfoResponse, content, Info, req, o,
                               "content.info " + digest);
  if (!r.ok()) co_return r.status();
  co_return std::move(*r->mutable_info());
}

asio::awaitable<Result<ContentInfo>> Client::content_set_labels(std::string digest, Labels labels,
                                                                CallOptions o) {
  cs::content::v1::UpdateRequest req;
  req.mutable_info()->set_digest(digest);
  for (const auto& [k, v] : labels) {
    (*req.mutable_info()->mutable_labels())[k] = v;
    req.mutable_update_mask()->add_paths("labels." + k);
  }
  auto r = co_await HERD_UNARY(cs::content::v1::UpdateResponse, content, Update, req, o,
                               "content.update " + digest);
  if (!r.ok()) co_return r.status();
  co_return std::move(*r->mutable_info());
}

asio::awaitable<Status> Client::content_delete(std::string digest, CallOptions o) {
  cs::content::v1::DeleteContentRequest req;
  req.set_digest(digest);
  auto r = co_await HERD_UNARY(Empty, content, Delete, req, o, "content.delete " + digest);
  co_return r.ok() ? Status::Ok() : r.status();
}

asio::awaitable<Result<std::string>> Client::content_read(std::string digest, int64_t max_size,
                                                          CallOptions o) {
  cs::content::v1::ReadContentRequest req;
  req.set_digest(digest);
  auto data = std::make_shared<std::string>();
  std::string what = "content.read " + digest;
  // Named, not a temporary: see the g++ 12 note in common/asio.h.
  detail::ReadAllReactor<cs::content::v1::ReadContentRequest,
                         cs::content::v1::ReadContentResponse>::OnMessage on_message =
      [data, max_size, what](cs::content::v1::ReadContentResponse& m) -> Status {
    if (static_cast<int64_t>(data->size() + m.data().size()) > max_size)
      return Status(Code::kOutOfRange,
                    what + ": blob larger than " + std::to_string(max_size) + " bytes");
    data->append(m.data());
    return Status::Ok();
  };
  auto st = co_await detail::read_all<cs::content::v1::ReadContentRequest,
                                      cs::content::v1::ReadContentResponse>(
      make_context(o), std::move(req), std::move(on_message), o.canceller, what,
      [s = stubs_->content.get()](grpc::ClientContext* c,
                                  const cs::content::v1::ReadContentRequest* q,
                                  auto* reactor) { s->async()->Read(c, q, reactor); });
  if (!st.ok()) co_return st;
  co_return std::move(*data);
}

namespace {

// Content.Write, a bidirectional stream driven in lock-step: send one
// request, read its response, repeat; the last request commits. containerd
// answers every request, and once more when the handler returns, so after
// the commit the reactor reads to the end of the stream.
//
// The first request is a STAT (ref, total, expected), as containerd's own
// client sends: its answer's offset is where the ingest stands, so the
// source is first asked for the bytes from there (an ingest left by an
// earlier writer resumes), and a blob another namespace already holds
// answers offset == total: the COMMIT then carries no data and adopts it
// without a byte read. A blob this namespace holds ends the call with
// AlreadyExists, which is success.
class ContentWriteReactor : public grpc::ClientBidiReactor<cs::content::v1::WriteContentRequest,
                                                           cs::content::v1::WriteContentResponse> {
 public:
  static constexpr int64_t kChunk = 1 << 20;

  ContentWriteReactor(std::unique_ptr<grpc::ClientContext> ctx, std::string ref, int64_t total,
                      std::string expected, Labels labels, Client::ChunkSource source,
                      std::shared_ptr<Canceller> canceller, std::string what,
                      std::function<void(Status, std::shared_ptr<void> self)> done)
      : ctx_(std::move(ctx)),
        ref_(std::move(ref)),
        total_(total),
        expected_(std::move(expected)),
        labels_(std::move(labels)),
        source_(std::move(source)),
        canceller_(std::move(canceller)),
        what_(std::move(what)),
        done_(std::move(done)) {}

  grpc::ClientContext* context() { return ctx_.get(); }

  void go() {
    if (canceller_ && !canceller_->attach(ctx_.get())) ctx_->TryCancel();
    // Writes are started from the source's thread, outside a reaction: the
    // hold keeps OnDone (and `delete this`) back until the last of them.
    AddHold();
    StartCall();
    req_.set_action(cs::content::v1::STAT);
    req_.set_ref(ref_);
    req_.set_total(total_);
    req_.set_expected(expected_);
    StartWrite(&req_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {                          // stream broken; OnDone tells why
      if (!committed_) release_hold();  // else the committing thread releases it
      return;
    }
    StartRead(&resp_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // end of stream; OnDone follows
      if (!committed_) release_hold();
      return;
    }
    if (committed_) {
      StartRead(&resp_);  // drain the final answer
      return;
    }
    if (statting_) {
      statting_ = false;
      if (resp_.offset() < 0 || resp_.offset() > total_) {
        fail(Status::DataLoss(what_ + ": containerd's ingest is at offset " +
                              std::to_string(resp_.offset()) + " of " + std::to_string(total_)));
        return;
      }
      offset_ = resp_.offset();
      send_next();
      return;
    }
    if (resp_.offset() != offset_) {
      fail(Status::DataLoss(what_ + ": containerd is at offset " + std::to_string(resp_.offset()) +
                            ", expected " + std::to_string(offset_)));
      return;
    }
    send_next();
  }

  void OnDone(const grpc::Status& s) override {
    if (canceller_) canceller_->detach(ctx_.get());
    Status result;
    if (!error_.ok()) {
      result = error_;
    } else if (!s.ok() && s.error_code() != grpc::StatusCode::ALREADY_EXISTS) {
      result = detail::from_grpc(s, what_);
    } else if (s.ok() && !committed_) {
      result = Status::Internal(what_ + ": stream ended before commit");
    }
    // gRPC is done with the reactor: it goes to the loop with the result
    // (see detail::complete_on_handler_executor).
    auto done = std::move(done_);
    done(std::move(result), std::shared_ptr<void>(this));
  }

 private:
  // Asks the source for the next chunk (none when the blob is empty); the
  // write goes out from send_chunk, on whatever thread the source answers.
  void send_next() {
    if (offset_ >= total_) {
      send_chunk(Status::Ok(), std::string());
      return;
    }
    source_(offset_,
            [this](Status s, std::string buf) { send_chunk(std::move(s), std::move(buf)); });
  }

  void send_chunk(Status s, std::string buf) {
    if (offset_ < total_) {
      if (!s.ok()) {
        fail(s.with_context(what_));
        return;
      }
      if (static_cast<int64_t>(buf.size()) > total_ - offset_) buf.resize(total_ - offset_);
      if (buf.empty()) {
        fail(Status::DataLoss(what_ + ": source ended at " + std::to_string(offset_) + " of " +
                              std::to_string(total_) + " bytes"));
        return;
      }
    }
    req_.Clear();
    req_.set_offset(offset_);
    offset_ += static_cast<int64_t>(buf.size());
    req_.set_data(std::move(buf));
    if (offset_ >= total_) {
      req_.set_action(cs::content::v1::COMMIT);
      req_.set_total(total_);
      req_.set_expected(expected_);
      for (const auto& [k, v] : labels_) (*req_.mutable_labels())[k] = v;
      committed_ = true;
      StartWriteLast(&req_, grpc::WriteOptions());
      release_hold();  // the rest happens in reactions
    } else {
      req_.set_action(cs::content::v1::WRITE);
      StartWrite(&req_);
    }
  }

  void fail(Status s) {
    error_ = std::move(s);
    ctx_->TryCancel();
    release_hold();
  }

  // Once no write will start outside a reaction any more. Lock-step: at
  // most one of the source, a write or a read is outstanding at a time, so
  // the flag is never touched by two threads at once. After the commit
  // only the committing thread releases (right after StartWriteLast);
  // before it, a failed reaction does, as no source call is outstanding.
  void release_hold() {
    if (held_) {
      held_ = false;
      RemoveHold();
    }
  }

  std::unique_ptr<grpc::ClientContext> ctx_;
  std::string ref_;
  int64_t total_;
  std::string expected_;
  Labels labels_;
  Client::ChunkSource source_;
  std::shared_ptr<Canceller> canceller_;
  std::string what_;
  std::function<void(Status, std::shared_ptr<void> self)> done_;
  cs::content::v1::WriteContentRequest req_;
  cs::content::v1::WriteContentResponse resp_;
  int64_t offset_ = 0;
  bool statting_ = true;  // the STAT's answer is awaited
  bool committed_ = false;
  bool held_ = true;
  Status error_;
};

}  // namespace

asio::awaitable<Status> Client::content_write(std::string ref, int64_t total, std::string expected,
                                              Labels labels, ChunkSource read_chunk,
                                              CallOptions o) {
  std::string what = "content.write " + expected;
  const std::string ref_copy = ref;
  auto ctx = make_context(o);
  auto* stub = stubs_->content.get();
  auto initiation = [&](auto handler) {
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    auto work =
        asio::prefer(asio::get_associated_executor(*h), asio::execution::outstanding_work.tracked);
    auto* reactor = new ContentWriteReactor(
        std::move(ctx), std::move(ref), total, std::move(expected), std::move(labels),
        std::move(read_chunk), o.canceller, what,
        [h, work](Status s, std::shared_ptr<void> self) mutable {
          detail::complete_on_handler_executor(h, work, std::move(s), std::move(self));
        });
    stub->async()->Write(reactor->context(), reactor);
    reactor->go();
  };
  Status st = co_await asio::async_initiate<decltype(asio::use_awaitable), void(Status)>(
      initiation, asio::use_awaitable);
  if (st.ok()) co_return st;
  // Not the caller's options: a cancelled operation must still clean up.
  CallOptions cleanup = CallOptions::with_timeout(std::chrono::seconds(5));
  cs::content::v1::AbortRequest abort_req;
  abort_req.set_ref(ref_copy);
  (void)co_await HERD_UNARY(Empty, content, Abort, abort_req, cleanup, "content.abort " + ref_copy);
  co_return st;
}

// ---- snapshots

asio::awaitable<Result<std::vector<Mount>>> Client::snapshots_prepare(
    std::string snapshotter, std::string key, std::string parent, Labels labels, CallOptions o) {
  cs::snapshots::v1::PrepareSnapshotRequest req;
  req.set_snapshotter(snapshotter);
  req.set_key(key);
  req.set_parent(parent);
  put_labels(req.mutable_labels(), labels);
  auto r = co_await HERD_UNARY(cs::snapshots::v1::PrepareSnapshotResponse, snapshots, Prepare, req,
                               o, "snapshots.prepare " + key);
  if (!r.ok()) co_return r.status();
  co_return std::vector<Mount>(r->mounts().begin(), r->mounts().end());
}

asio::awaitable<Result<std::vector<Mount>>> Client::snapshots_mounts(std::string snapshotter,
                                                                     std::string key,
                                                                     CallOptions o) {
  cs::snapshots::v1::MountsRequest req;
  req.set_snapshotter(snapshotter);
  req.set_key(key);
  auto r = co_await HERD_UNARY(cs::snapshots::v1::MountsResponse, snapshots, Mounts, req, o,
                               "snapshots.mounts " + key);
  if (!r.ok()) co_return r.status();
  co_return std::vector<Mount>(r->mounts().begin(), r->mounts().end());
}

asio::awaitable<Status> Client::snapshots_commit(std::string snapshotter, std::string name,
                                                 std::string key, Labels labels, CallOptions o) {
  cs::snapshots::v1::CommitSnapshotRequest req;
  req.set_snapshotter(snapshotter);
  req.set_name(name);
  req.set_key(key);
  put_labels(req.mutable_labels(), labels);
  auto r = co_await HERD_UNARY(Empty, snapshots, Commit, req, o, "snapshots.commit " + name);
  co_return r.ok() ? Status::Ok() : r.status();
}

asio::awaitable<Result<SnapshotInfo>> Client::snapshots_stat(std::string snapshotter,
                                                             std::string key, CallOptions o) {
  cs::snapshots::v1::StatSnapshotRequest req;
  req.set_snapshotter(snapshotter);
  req.set_key(key);
  auto r = co_await HERD_UNARY(cs::snapshots::v1::StatSnapshotResponse, snapshots, Stat, req, o,
                               "snapshots.stat " + key);
  if (!r.ok()) co_return r.status();
  co_return std::move(*r->mutable_info());
}

asio::awaitable<Result<std::vector<SnapshotInfo>>> Client::snapshots_list(
    std::string snapshotter, std::vector<std::string> filters, CallOptions o) {
  cs::snapshots::v1::ListSnapshotsRequest req;
  req.set_snapshotter(snapshotter);
  for (auto& f : filters) req.add_filters(f);
  auto out = std::make_shared<std::vector<SnapshotInfo>>();
  detail::ReadAllReactor<cs::snapshots::v1::ListSnapshotsRequest,
                         cs::snapshots::v1::ListSnapshotsResponse>::OnMessage on_message =
      [out](cs::snapshots::v1::ListSnapshotsResponse& m) {
        for (auto& i : *m.mutable_info()) out->push_back(std::move(i));
        return Status::Ok();
      };
  auto st = co_await detail::read_all<cs::snapshots::v1::ListSnapshotsRequest,
                                      cs::snapshots::v1::ListSnapshotsResponse>(
      make_context(o), std::move(req), std::move(on_message), o.canceller, "snapshots.list",
      [s = stubs_->snapshots.get()](grpc::ClientContext* c,
                                    const cs::snapshots::v1::ListSnapshotsRequest* q,
                                    auto* reactor) { s->async()->List(c, q, reactor); });
  if (!st.ok()) co_return st;
  co_return std::move(*out);
}

asio::awaitable<Status> Client::snapshots_remove(std::string snapshotter, std::string key,
                                                 CallOptions o) {
  cs::snapshots::v1::RemoveSnapshotRequest req;
  req.set_snapshotter(snapshotter);
  req.set_key(key);
  auto r = co_await HERD_UNARY(Empty, snapshots, Remove, req, o, "snapshots.remove " + key);
  co_return r.ok() ? Status::Ok() : r.status();
}

// ---- leases

asio::awaitable<Result<Lease>> Client::leases_create(std::string id,
                                                     std::chrono::seconds expire_after,
                                                     Labels labels, CallOptions o) {
  cs::leases::v1::CreateRequest req;
  req.set_id(id.empty() ? "herd-" + detail::random_token() : id);
  put_labels(req.mutable_labels(), labels);
  if (expire_after.count() > 0) {
    // containerd's GC drops the lease after this RFC 3339 time.
    auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + expire_after);
    char buf[32];
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    (*req.mutable_labels())["containerd.io/gc.expire"] = buf;
  }
  std::string what = "leases.create " + req.id();
  auto r = co_await HERD_UNARY(cs::leases::v1::CreateResponse, leases, Create, req, o, what);
  if (!r.ok()) co_return r.status();
  co_return std::move(*r->mutable_lease());
}

asio::awaitable<Result<std::vector<Lease>>> Client::leases_list(std::vector<std::string> filters,
                                                                CallOptions o) {
  cs::leases::v1::ListRequest req;
  for (auto& f : filters) req.add_filters(f);
  auto r = co_await HERD_UNARY(cs::leases::v1::ListResponse, leases, List, req, o, "leases.list");
  if (!r.ok()) co_return r.status();
  co_return std::vector<Lease>(r->leases().begin(), r->leases().end());
}

asio::awaitable<Status> Client::leases_delete(std::string id, bool sync, CallOptions o) {
  cs::leases::v1::DeleteRequest req;
  req.set_id(id);
  req.set_sync(sync);
  auto r = co_await HERD_UNARY(Empty, leases, Delete, req, o, "leases.delete " + id);
  co_return r.ok() ? Status::Ok() : r.status();
}

// ---- diff

asio::awaitable<Result<Descriptor>> Client::diff_apply(Descriptor layer, std::vector<Mount> mounts,
                                                       CallOptions o) {
  cs::diff::v1::ApplyRequest req;
  std::string what = "diff.apply " + layer.digest();
  *req.mutable_diff() = std::move(layer);
  for (auto& m : mounts) *req.add_mounts() = std::move(m);
  auto r = co_await HERD_UNARY(cs::diff::v1::ApplyResponse, diff, Apply, req, o, what);
  if (!r.ok()) co_return r.status();
  co_return std::move(*r->mutable_applied());
}

#undef HERD_UNARY

}  // namespace herd::containerd
