#include "containerd/images.h"

#include <nlohmann/json.hpp>

#include "containerd/internal.h"
#include "containerd/oci_archive.h"

namespace herd::containerd {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";

bool is_index(std::string_view mt) { return mt == kOciIndex || mt == kDockerList; }
bool is_manifest(std::string_view mt) { return mt == kOciManifest || mt == kDockerManifest; }

Result<json> parse_json(const std::string& text, const std::string& what) {
  auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument(what + ": not a JSON object");
  return j;
}

Result<Descriptor> descriptor_from_json(const json& d, const std::string& what) {
  if (!d.is_object() || !d.contains("digest") || !d["digest"].is_string() ||
      !d.contains("size") || !d["size"].is_number_integer() || !d.contains("mediaType") ||
      !d["mediaType"].is_string())
    return Status::InvalidArgument(what + ": malformed descriptor");
  Descriptor out;
  out.set_media_type(d["mediaType"].get<std::string>());
  out.set_digest(d["digest"].get<std::string>());
  out.set_size(d["size"].get<int64_t>());
  return out;
}

// Manifest children: config then layers, with the gc labels naming them.
struct ManifestChildren {
  Descriptor config;
  std::vector<Descriptor> layers;
  Labels gc_labels;
};

Result<ManifestChildren> manifest_children(const std::string& text, const std::string& what) {
  auto j = parse_json(text, what);
  if (!j.ok()) return j.status();
  ManifestChildren c;
  if (!j->contains("config")) return Status::InvalidArgument(what + ": manifest has no config");
  auto cfg = descriptor_from_json((*j)["config"], what + " config");
  if (!cfg.ok()) return cfg.status();
  c.config = *cfg;
  c.gc_labels["containerd.io/gc.ref.content.config"] = c.config.digest();
  if (!j->contains("layers") || !(*j)["layers"].is_array())
    return Status::InvalidArgument(what + ": manifest has no layers array");
  int i = 0;
  for (const auto& l : (*j)["layers"]) {
    auto d = descriptor_from_json(l, what + " layer " + std::to_string(i));
    if (!d.ok()) return d.status();
    c.gc_labels["containerd.io/gc.ref.content.l." + std::to_string(i)] = d->digest();
    c.layers.push_back(*d);
    ++i;
  }
  return c;
}

Result<std::vector<json>> index_manifests(const std::string& text, const std::string& what) {
  auto j = parse_json(text, what);
  if (!j.ok()) return j.status();
  if (!j->contains("manifests") || !(*j)["manifests"].is_array())
    return Status::InvalidArgument(what + ": index has no manifests array");
  return std::vector<json>((*j)["manifests"].begin(), (*j)["manifests"].end());
}

// Imports one blob tree (index or manifest) from the archive, children first.
class Importer {
 public:
  Importer(Client& client, const OciArchive& archive, CallOptions o)
      : client_(client), archive_(archive), o_(std::move(o)) {}

  asio::awaitable<Status> blob(const std::string& digest, int64_t size, Labels labels) {
    auto info = co_await client_.content_info(digest, o_);
    if (info.ok()) {
      if (labels.empty()) co_return Status::Ok();
      auto r = co_await client_.content_set_labels(digest, std::move(labels), o_);
      co_return r.status();
    }
    if (!info.status().is_not_found()) co_return info.status();
    auto entry = archive_.blob(digest);
    if (!entry.ok()) co_return entry.status();
    if (static_cast<int64_t>(entry->size) != size)
      co_return Status::DataLoss("archive " + archive_.path().string() + ": blob " + digest +
                                 " has " + std::to_string(entry->size) + " bytes, descriptor says " +
                                 std::to_string(size));
    const OciArchive* a = &archive_;
    CallOptions wo = o_;
    wo.timeout = std::max(o_.timeout, std::chrono::milliseconds(300s));
    // Named, not a temporary: see the g++ 12 note in common/asio.h.
    Client::ChunkSource source = [a, digest](int64_t offset, std::string& buf) {
      return a->read_blob_range(digest, static_cast<uint64_t>(offset), 1 << 20, buf);
    };
    // A ref of this import's own: two imports of the same image at once
    // (two components starting together) would otherwise find the ref
    // locked by the other. The second commit of a digest is AlreadyExists,
    // which content_write takes as success.
    co_return co_await client_.content_write(
        "herd-import-" + detail::random_token() + "-" + digest, size, digest, std::move(labels),
        std::move(source), wo);
  }

  asio::awaitable<Status> tree(const std::string& digest, const std::string& media_type,
                               int64_t size) {
    const std::string what = "archive " + archive_.path().string() + ": " + digest;
    auto blob_file = blob_path(digest);
    if (!blob_file.ok()) co_return blob_file.status();
    auto text = archive_.read_file(*blob_file);
    if (!text.ok()) co_return text.status();
    Labels labels;
    if (is_index(media_type)) {
      auto manifests = index_manifests(*text, what);
      if (!manifests.ok()) co_return manifests.status();
      int i = 0;
      for (const auto& m : *manifests) {
        auto d = descriptor_from_json(m, what);
        if (!d.ok()) co_return d.status();
        labels["containerd.io/gc.ref.content.m." + std::to_string(i++)] = d->digest();
        // Archives often hold one platform of a multi-platform index.
        if (!archive_.blob(d->digest()).ok()) continue;
        if (auto s = co_await tree(d->digest(), d->media_type(), d->size()); !s.ok()) co_return s;
      }
    } else if (is_manifest(media_type)) {
      auto c = manifest_children(*text, what);
      if (!c.ok()) co_return c.status();
      if (auto s = co_await blob(c->config.digest(), c->config.size(), {}); !s.ok()) co_return s;
      for (const auto& l : c->layers)
        if (auto s = co_await blob(l.digest(), l.size(), {}); !s.ok()) co_return s;
      labels = c->gc_labels;
    } else {
      co_return Status::InvalidArgument(what + ": unsupported media type " + media_type);
    }
    co_return co_await blob(digest, size, std::move(labels));
  }

 private:
  Client& client_;
  const OciArchive& archive_;
  CallOptions o_;
};

// Picks this host's manifest from an index blob.
asio::awaitable<Result<Descriptor>> platform_manifest(Client& client, const Descriptor& index,
                                                      const CallOptions& o) {
  auto text = co_await client.content_read(index.digest(), 16 << 20, o);
  if (!text.ok()) co_return text.status();
  auto manifests = index_manifests(*text, "index " + index.digest());
  if (!manifests.ok()) co_return manifests.status();
  for (const auto& m : *manifests) {
    auto d = descriptor_from_json(m, "index " + index.digest());
    if (!d.ok()) co_return d.status();
    const json p = m.value("platform", json::object());
    const bool match = p.value("os", "linux") == "linux" &&
                       p.value("architecture", std::string(host_architecture())) ==
                           host_architecture();
    if (!match) continue;
    if (is_index(d->media_type())) co_return co_await platform_manifest(client, *d, o);
    co_return *d;
  }
  co_return Status::NotFound("index " + index.digest() + " has no manifest for linux/" +
                             std::string(host_architecture()));
}

}  // namespace

std::string_view host_architecture() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__arm__)
  return "arm";
#elif defined(__i386__)
  return "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "unknown";
#endif
}

std::vector<std::string> chain_ids(const std::vector<std::string>& diff_ids) {
  std::vector<std::string> out;
  out.reserve(diff_ids.size());
  for (const auto& d : diff_ids) {
    if (out.empty()) {
      out.push_back(d);
    } else {
      out.push_back(sha256_digest(out.back() + " " + d));
    }
  }
  return out;
}

asio::awaitable<Result<std::vector<Image>>> import_archive(Client& client,
                                                           std::filesystem::path path,
                                                           CallOptions o) {
  auto archive = OciArchive::open(path);
  if (!archive.ok()) co_return archive.status();
  auto index = archive->index();
  if (!index.ok()) co_return index.status();
  if (index->empty()) co_return Status::InvalidArgument("archive " + path.string() + ": no manifests");

  // Everything written is held by this lease until the image records exist;
  // if herd dies mid-import, containerd drops the lease after an hour.
  auto lease = co_await client.leases_create("", std::chrono::hours(1), {}, o);
  if (!lease.ok()) co_return lease.status();
  CallOptions lo = o;
  lo.lease = lease->id();

  std::vector<Image> images;
  Status failed;
  Importer importer(client, *archive, lo);
  for (const auto& e : *index) {
    if (e.image_name.empty()) {
      failed = Status::InvalidArgument("archive " + path.string() + ": manifest " + e.digest +
                                       " has no io.containerd.image.name annotation");
      break;
    }
    if (auto s = co_await importer.tree(e.digest, e.media_type, e.size); !s.ok()) {
      failed = s.with_context("import " + e.image_name);
      break;
    }
    Image img;
    img.set_name(e.image_name);
    img.mutable_target()->set_media_type(e.media_type);
    img.mutable_target()->set_digest(e.digest);
    img.mutable_target()->set_size(e.size);
    auto created = co_await client.images_create(img, lo);
    if (!created.ok() && created.status().is_already_exists())
      created = co_await client.images_update(img, lo);
    if (!created.ok()) {
      failed = created.status();
      break;
    }
    images.push_back(std::move(*created));
  }
  Status released = co_await client.leases_delete(lease->id(), /*sync=*/false, o);
  if (!failed.ok()) co_return failed;
  if (!released.ok()) co_return released;
  co_return images;
}

asio::awaitable<Result<ResolvedImage>> resolve_image(Client& client, std::string name,
                                                     CallOptions o) {
  auto image = co_await client.images_get(name, o);
  if (!image.ok()) co_return image.status();
  ResolvedImage r;
  r.name = name;
  r.manifest = image->target();
  if (is_index(r.manifest.media_type())) {
    auto m = co_await platform_manifest(client, r.manifest, o);
    if (!m.ok()) co_return m.status().with_context("image " + name);
    r.manifest = *m;
  }
  if (!is_manifest(r.manifest.media_type()))
    co_return Status::InvalidArgument("image " + name + ": unsupported media type " +
                                      r.manifest.media_type());
  auto text = co_await client.content_read(r.manifest.digest(), 16 << 20, o);
  if (!text.ok()) co_return text.status().with_context("image " + name);
  auto c = manifest_children(*text, "image " + name + " manifest");
  if (!c.ok()) co_return c.status();
  r.config_digest = c->config.digest();
  r.layers = c->layers;
  auto cfg = co_await client.content_read(r.config_digest, 16 << 20, o);
  if (!cfg.ok()) co_return cfg.status().with_context("image " + name);
  r.config_json = std::move(*cfg);
  auto diff_ids = parse_diff_ids(r.config_json);
  if (!diff_ids.ok()) co_return diff_ids.status().with_context("image " + name + " config");
  r.diff_ids = std::move(*diff_ids);
  if (r.diff_ids.size() != r.layers.size() || r.layers.empty())
    co_return Status::InvalidArgument("image " + name + ": " + std::to_string(r.layers.size()) +
                                      " layers but " + std::to_string(r.diff_ids.size()) +
                                      " diff ids");
  r.chain_ids = chain_ids(r.diff_ids);
  co_return r;
}

asio::awaitable<Result<ResolvedImage>> unpack_image(Client& client, std::string name,
                                                    std::string snapshotter, CallOptions o) {
  auto image = co_await resolve_image(client, name, o);
  if (!image.ok()) co_return image.status();

  // Fast path: the top chain exists, so every layer below it does too.
  auto top = co_await client.snapshots_stat(snapshotter, image->top_chain_id(), o);
  if (top.ok()) co_return image;
  if (!top.status().is_not_found()) co_return top.status();

  auto lease = co_await client.leases_create("", std::chrono::hours(1), {}, o);
  if (!lease.ok()) co_return lease.status();
  CallOptions lo = o;
  lo.lease = lease->id();
  CallOptions apply_opts = lo;
  apply_opts.timeout = std::max(o.timeout, std::chrono::milliseconds(300s));

  Status failed;
  std::string parent;
  for (size_t i = 0; i < image->layers.size() && failed.ok(); ++i) {
    const std::string& chain = image->chain_ids[i];
    auto st = co_await client.snapshots_stat(snapshotter, chain, lo);
    if (st.ok()) {
      parent = chain;
      continue;
    }
    if (!st.status().is_not_found()) {
      failed = st.status();
      break;
    }
    const std::string key = "herd-unpack-" + detail::random_token() + "-" + chain;
    auto mounts = co_await client.snapshots_prepare(snapshotter, key, parent, {}, lo);
    if (!mounts.ok()) {
      failed = mounts.status();
      break;
    }
    auto applied = co_await client.diff_apply(image->layers[i], *mounts, apply_opts);
    Status step = applied.ok() ? Status::Ok() : applied.status();
    if (applied.ok() && applied->digest() != image->diff_ids[i])
      step = Status::DataLoss("image " + name + " layer " + std::to_string(i) + ": applied " +
                              applied->digest() + ", config says " + image->diff_ids[i]);
    if (step.ok()) {
      step = co_await client.snapshots_commit(snapshotter, chain, key, {}, lo);
      // Another unpack of the same image won the race: use its snapshot
      // and drop ours (commit left our active key in place).
      if (step.is_already_exists()) {
        (void)co_await client.snapshots_remove(snapshotter, key, o);
        step = Status::Ok();
      }
      if (step.ok()) {
        // Mark the layer blob as unpacked, as containerd's own unpacker does.
        Labels uncompressed;
        uncompressed["containerd.io/uncompressed"] = image->diff_ids[i];
        (void)co_await client.content_set_labels(image->layers[i].digest(),
                                                 std::move(uncompressed), lo);
      }
    }
    if (!step.ok()) {
      (void)co_await client.snapshots_remove(snapshotter, key, o);
      failed = step;
      break;
    }
    // Commit consumed the active key; a leftover only remains on error.
    parent = chain;
  }
  if (failed.ok()) {
    Labels gc;
    gc["containerd.io/gc.ref.snapshot." + snapshotter] = image->top_chain_id();
    auto labelled = co_await client.content_set_labels(image->config_digest, std::move(gc), lo);
    if (!labelled.ok()) failed = labelled.status();
  }
  Status released = co_await client.leases_delete(lease->id(), /*sync=*/false, o);
  if (!failed.ok()) co_return failed.with_context("unpack " + name);
  if (!released.ok()) co_return released;
  co_return image;
}

}  // namespace herd::containerd
