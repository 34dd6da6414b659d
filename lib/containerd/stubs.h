// The gRPC stubs of every containerd service herd uses (internal to
// lib/containerd). Stubs are thread-safe; Client owns one set per channel.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "containerd/client.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/diff/v1/diff.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h"

namespace herd::containerd {

struct Client::Stubs {
  explicit Stubs(const std::shared_ptr<grpc::Channel>& ch)
      : containers(::containerd::services::containers::v1::Containers::NewStub(ch)),
        content(::containerd::services::content::v1::Content::NewStub(ch)),
        diff(::containerd::services::diff::v1::Diff::NewStub(ch)),
        events(::containerd::services::events::v1::Events::NewStub(ch)),
        images(::containerd::services::images::v1::Images::NewStub(ch)),
        leases(::containerd::services::leases::v1::Leases::NewStub(ch)),
        namespaces(::containerd::services::namespaces::v1::Namespaces::NewStub(ch)),
        snapshots(::containerd::services::snapshots::v1::Snapshots::NewStub(ch)),
        tasks(::containerd::services::tasks::v1::Tasks::NewStub(ch)),
        version(::containerd::services::version::v1::Version::NewStub(ch)) {}

  std::unique_ptr<::containerd::services::containers::v1::Containers::Stub> containers;
  std::unique_ptr<::containerd::services::content::v1::Content::Stub> content;
  std::unique_ptr<::containerd::services::diff::v1::Diff::Stub> diff;
  std::unique_ptr<::containerd::services::events::v1::Events::Stub> events;
  std::unique_ptr<::containerd::services::images::v1::Images::Stub> images;
  std::unique_ptr<::containerd::services::leases::v1::Leases::Stub> leases;
  std::unique_ptr<::containerd::services::namespaces::v1::Namespaces::Stub> namespaces;
  std::unique_ptr<::containerd::services::snapshots::v1::Snapshots::Stub> snapshots;
  std::unique_ptr<::containerd::services::tasks::v1::Tasks::Stub> tasks;
  std::unique_ptr<::containerd::services::version::v1::Version::Stub> version;
};

}  // namespace herd::containerd
