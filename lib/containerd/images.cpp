#include "containerd/images.h"

#include "common/file_kind.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <set>

#include "common/json_limits.h"
#include "common/sha256.h"
#include "containerd/internal.h"
#include "containerd/oci_archive.h"
#include "containerd/oci_parse.h"

namespace herd::containerd {

using namespace std::chrono_literals;

namespace {

using ArchivePtr = std::shared_ptr<const OciArchive>;

constexpr int64_t kChunk = 1 << 20;

// Cleanup (lease delete, snapshot remove) must happen even when the
// operation was cancelled: not the caller's canceller, a short deadline of
// its own, the client's namespace.
CallOptions cleanup_options() { return CallOptions::with_timeout(10s); }

bool cancelled(const CallOptions& o) { return o.canceller && o.canceller->cancelled(); }

// What the pool hands back for a JSON blob of the archive: its verified
// bytes and what they say.
struct VerifiedIndex {
  VerifiedIndex() {}
  std::shared_ptr<const std::string> text;
  OciIndex index;
};
struct VerifiedManifest {
  VerifiedManifest() {}
  std::shared_ptr<const std::string> text;
  OciManifest manifest;
};

// A docker-save image, read and hashed on the pool.
struct DockerPlan {
  DockerPlan() {}
  std::shared_ptr<const std::string> config_text;
  OciDescriptor config;
  std::vector<OciDescriptor> layers;
  std::vector<OciArchive::Entry> layer_entries;
  std::shared_ptr<const std::string> manifest_text;
  OciDescriptor manifest;
};

Labels manifest_gc_labels(const OciManifest& m) {
  Labels l;
  l["containerd.io/gc.ref.content.config"] = m.config.digest;
  for (size_t i = 0; i < m.layers.size(); ++i)
    l["containerd.io/gc.ref.content.l." + std::to_string(i)] = m.layers[i].digest;
  return l;
}

// Writes the blobs of one archive into the content store, all reading and
// hashing on the pool, under the import's lease (o_.lease).
class Importer {
 public:
  Importer(Client& client, BlockingPool& pool, ArchivePtr archive, CallOptions o)
      : client_(client), pool_(pool), archive_(std::move(archive)), o_(std::move(o)) {}

  // An OCI layout's index entry and everything below it, children first.
  asio::awaitable<Status> tree(OciDescriptor d, size_t depth, std::vector<std::string> ancestors) {
    const bool index = is_index_type(d.media_type);
    const std::string what = "archive " + archive_->name() + ": " +
                             (index ? "index " : "manifest ") + short_digest(d.digest);
    if (std::find(ancestors.begin(), ancestors.end(), d.digest) != ancestors.end())
      co_return Status::InvalidArgument(what + ": an index names it inside itself (a cycle)");
    if (index && depth >= kMaxIndexDepth)
      co_return Status::InvalidArgument(what + ": indexes nested deeper than " +
                                        std::to_string(kMaxIndexDepth) + " levels");
    if (done_.count(d.digest)) co_return Status::Ok();
    if (cancelled(o_)) co_return Status::Cancelled(what + ": import cancelled");
    if (index) {
      auto v = co_await read_index(d);
      if (!v.ok()) co_return v.status();
      Labels labels;
      ancestors.push_back(d.digest);
      const auto& children = v->index.manifests;
      for (size_t i = 0; i < children.size(); ++i) {
        const OciDescriptor& m = children[i];
        labels["containerd.io/gc.ref.content.m." + std::to_string(i)] = m.digest;
        // Archives often hold one platform of a multi-platform index, and
        // indexes may name artifacts herd does not run.
        if (!archive_->blob(m.digest).ok()) continue;
        if (!is_index_type(m.media_type) && !is_manifest_type(m.media_type)) continue;
        if (auto s = co_await tree(m, depth + 1, ancestors); !s.ok()) co_return s;
      }
      if (auto s = co_await memory_blob(d, v->text, std::move(labels)); !s.ok()) co_return s;
    } else if (is_manifest_type(d.media_type)) {
      auto v = co_await read_manifest(d);
      if (!v.ok()) co_return v.status();
      if (auto s = co_await archive_blob(v->manifest.config); !s.ok()) co_return s;
      for (const auto& l : v->manifest.layers)
        if (auto s = co_await archive_blob(l); !s.ok()) co_return s;
      if (auto s = co_await memory_blob(d, v->text, manifest_gc_labels(v->manifest)); !s.ok())
        co_return s;
    } else {
      co_return Status::InvalidArgument(what + ": unsupported media type \"" + d.media_type + "\"");
    }
    done_.insert(d.digest);
    co_return Status::Ok();
  }

  // A docker-save image: config and layers hashed here, a schema-2
  // manifest synthesised for them. Returns the manifest's descriptor.
  asio::awaitable<Result<OciDescriptor>> docker_image(DockerArchiveImage img, size_t n) {
    const std::string what =
        "archive " + archive_->name() + ": manifest.json[" + std::to_string(n) + "]";
    auto plan = co_await plan_docker(img, what);
    if (!plan.ok()) co_return plan.status();
    if (cancelled(o_)) co_return Status::Cancelled(what + ": import cancelled");
    Labels none;
    if (auto s = co_await memory_blob(plan->config, plan->config_text, std::move(none)); !s.ok())
      co_return s;
    for (size_t i = 0; i < plan->layers.size(); ++i) {
      if (auto s = co_await stream_blob(plan->layers[i], plan->layer_entries[i]); !s.ok())
        co_return s;
    }
    OciManifest m;
    m.config = plan->config;
    m.layers = plan->layers;
    if (auto s = co_await memory_blob(plan->manifest, plan->manifest_text, manifest_gc_labels(m));
        !s.ok())
      co_return s;
    co_return plan->manifest;
  }

 private:
  asio::awaitable<Result<VerifiedIndex>> read_index(const OciDescriptor& d) {
    std::function<Result<VerifiedIndex>()> task = [archive = archive_,
                                                   d]() -> Result<VerifiedIndex> {
      auto text = archive->read_verified_blob(d.digest, d.size, kMaxJsonDocument);
      if (!text.ok()) return text.status();
      // Platforms are read when the image is resolved, not here: the
      // index is stored as it is.
      auto idx =
          parse_index(*text, "archive " + archive->name() + ": index " + short_digest(d.digest),
                      /*with_platforms=*/false);
      if (!idx.ok()) return idx.status();
      VerifiedIndex v;
      v.text = std::make_shared<const std::string>(std::move(*text));
      v.index = std::move(*idx);
      return v;
    };
    co_return co_await run_blocking(pool_, std::move(task));
  }

  asio::awaitable<Result<VerifiedManifest>> read_manifest(const OciDescriptor& d) {
    std::function<Result<VerifiedManifest>()> task = [archive = archive_,
                                                      d]() -> Result<VerifiedManifest> {
      auto text = archive->read_verified_blob(d.digest, d.size, kMaxJsonDocument);
      if (!text.ok()) return text.status();
      auto m = parse_manifest(
          *text, "archive " + archive->name() + ": manifest " + short_digest(d.digest));
      if (!m.ok()) return m.status();
      VerifiedManifest v;
      v.text = std::make_shared<const std::string>(std::move(*text));
      v.manifest = std::move(*m);
      return v;
    };
    co_return co_await run_blocking(pool_, std::move(task));
  }

  asio::awaitable<Result<DockerPlan>> plan_docker(const DockerArchiveImage& img,
                                                  const std::string& what) {
    // The config: read, hashed, and its diff ids checked against the layers.
    std::function<Result<DockerPlan>()> read_config = [archive = archive_, img,
                                                       what]() -> Result<DockerPlan> {
      auto path = normalize_tar_path(img.config);
      if (!path.ok()) return Status::InvalidArgument(what + ".Config: " + path.status().message());
      auto text = archive->read_file(*path, kMaxConfigDocument);
      if (!text.ok()) return text.status().with_context(what + ".Config");
      if (!json_nesting_within(*text))
        return Status::InvalidArgument(what + ": config " + *path + ": JSON nested too deep");
      auto diff_ids = parse_diff_ids(*text);
      if (!diff_ids.ok()) return diff_ids.status().with_context(what + ": config " + *path);
      if (diff_ids->size() != img.layers.size())
        return Status::InvalidArgument(what + ": " + std::to_string(img.layers.size()) +
                                       " layers but the config has " +
                                       std::to_string(diff_ids->size()) + " diff ids");
      DockerPlan p;
      p.config.media_type = std::string(kDockerConfigType);
      p.config.digest = "sha256:" + sha256_hex(*text);
      p.config.size = static_cast<int64_t>(text->size());
      p.config_text = std::make_shared<const std::string>(std::move(*text));
      // Kept for the layer check below (uncompressed layers only).
      for (const auto& id : *diff_ids) {
        OciDescriptor d;
        d.digest = id;
        p.layers.push_back(std::move(d));
      }
      return p;
    };
    auto plan = co_await run_blocking(pool_, std::move(read_config));
    if (!plan.ok()) co_return plan.status();
    for (size_t i = 0; i < img.layers.size(); ++i) {
      if (cancelled(o_)) co_return Status::Cancelled(what + ": import cancelled");
      const std::string diff_id = plan->layers[i].digest;
      const std::string layer_what = what + ".Layers[" + std::to_string(i) + "]";
      std::function<Result<OciArchive::FileDigest>()> hash =
          [archive = archive_, file = img.layers[i],
           layer_what]() -> Result<OciArchive::FileDigest> {
        auto path = normalize_tar_path(file);
        if (!path.ok()) return Status::InvalidArgument(layer_what + ": " + path.status().message());
        auto d = archive->hash_file(*path);
        if (!d.ok()) return d.status().with_context(layer_what);
        return d;
      };
      auto h = co_await run_blocking(pool_, std::move(hash));
      if (!h.ok()) co_return h.status();
      if (!h->gzip && h->digest != diff_id)
        co_return Status::DataLoss(layer_what + ": an uncompressed layer whose sha256 " +
                                   short_digest(h->digest) + " is not the config's diff id " +
                                   short_digest(diff_id));
      OciDescriptor d;
      d.media_type = std::string(h->gzip ? kDockerLayerGzipType : kDockerLayerType);
      d.digest = h->digest;
      d.size = static_cast<int64_t>(h->size);
      plan->layers[i] = std::move(d);
      auto entry = archive_->file(*normalize_tar_path(img.layers[i]));
      if (!entry.ok()) co_return entry.status();
      plan->layer_entries.push_back(*entry);
    }
    std::string manifest = docker_manifest_json(plan->config, plan->layers);
    std::function<std::string()> digest = [text = manifest]() {
      return "sha256:" + sha256_hex(text);
    };
    auto dg = co_await run_blocking(pool_, std::move(digest));
    if (!dg.ok()) co_return dg.status();
    plan->manifest.media_type = std::string(kDockerManifestType);
    plan->manifest.digest = std::move(*dg);
    plan->manifest.size = static_cast<int64_t>(manifest.size());
    plan->manifest_text = std::make_shared<const std::string>(std::move(manifest));
    co_return std::move(*plan);
  }

  // A blob whose bytes herd holds (verified or made by herd): written
  // unless present; labels set either way.
  asio::awaitable<Status> memory_blob(const OciDescriptor& d,
                                      std::shared_ptr<const std::string> bytes, Labels labels) {
    Client::ChunkSource source = [bytes](int64_t offset, Client::ChunkDone done) {
      const auto off = static_cast<size_t>(offset);
      done(Status::Ok(), off < bytes->size() ? bytes->substr(off, kChunk) : std::string());
    };
    co_return co_await write(d, std::move(source), std::move(labels));
  }

  // A blob of the archive by digest (OCI layout): streamed from the file.
  asio::awaitable<Status> archive_blob(const OciDescriptor& d) {
    auto e = archive_->blob(d.digest);
    if (!e.ok()) co_return e.status();
    co_return co_await stream_blob(d, *e);
  }

  asio::awaitable<Status> stream_blob(const OciDescriptor& d, OciArchive::Entry e) {
    if (e.size != static_cast<uint64_t>(d.size))
      co_return Status::DataLoss("archive " + archive_->name() + ": blob " +
                                 short_digest(d.digest) + " has " + std::to_string(e.size) +
                                 " bytes, its descriptor says " + std::to_string(d.size));
    // Every chunk is read on the pool; containerd checks the digest at commit.
    Client::ChunkSource source = [exec = pool_.executor(), archive = archive_, e](
                                     int64_t offset, Client::ChunkDone done) {
      asio::post(exec, [archive, e, offset, done = std::move(done)]() {
        std::string buf;
        Status s = archive->read_range(e, static_cast<uint64_t>(offset), kChunk, buf);
        done(std::move(s), std::move(buf));
      });
    };
    Labels none;  // named: see common/asio.h
    co_return co_await write(d, std::move(source), std::move(none));
  }

  asio::awaitable<Status> write(const OciDescriptor& d, Client::ChunkSource source, Labels labels) {
    auto info = co_await client_.content_info(d.digest, o_);
    if (info.ok()) {
      if (labels.empty()) co_return Status::Ok();
      auto r = co_await client_.content_set_labels(d.digest, std::move(labels), o_);
      co_return r.status();
    }
    if (!info.status().is_not_found()) co_return info.status();
    CallOptions wo = o_;
    wo.timeout = std::max(o_.timeout, std::chrono::milliseconds(300s));
    // A ref of this import's own: two imports of the same image at once
    // (two components starting together) would otherwise find the ref
    // locked by the other. The second commit of a digest is AlreadyExists,
    // which content_write takes as success.
    co_return co_await client_.content_write(
        "herd-import-" + detail::random_token() + "-" + d.digest, d.size, d.digest,
        std::move(labels), std::move(source), wo);
  }

  Client& client_;
  BlockingPool& pool_;
  ArchivePtr archive_;
  CallOptions o_;
  std::set<std::string> done_;  // trees imported by this run
};

asio::awaitable<Result<Image>> put_image(Client& client, const std::string& name,
                                         const OciDescriptor& target, const CallOptions& o) {
  Image img;
  img.set_name(name);
  *img.mutable_target() = to_proto(target);
  auto created = co_await client.images_create(img, o);
  if (!created.ok() && created.status().is_already_exists())
    created = co_await client.images_update(img, o);
  co_return created;
}

// What the archive holds, decided on the pool.
struct ArchiveContents {
  ArchiveContents() {}
  ArchivePtr archive;
  bool docker = false;
  std::vector<LayoutEntry> layout;
  std::vector<DockerArchiveImage> docker_images;
};

Result<ArchiveContents> scan_archive(const ArchiveFile& file) {
  auto src = FdSource::make(file.fd, file.name);
  if (!src.ok()) return src.status();
  auto a = OciArchive::open(std::shared_ptr<const ByteSource>(std::move(*src)));
  if (!a.ok()) return a.status();
  ArchiveContents c;
  c.archive = std::make_shared<const OciArchive>(std::move(*a));
  const auto& archive = *c.archive;
  if (archive.has("oci-layout")) {
    auto idx = archive.index();
    if (!idx.ok()) return idx.status();
    const bool named = std::any_of(idx->begin(), idx->end(),
                                   [](const LayoutEntry& e) { return !e.image_name.empty(); });
    // docker save (25+) writes both; its manifest.json has the names when
    // index.json has none.
    if (named || !archive.has("manifest.json")) {
      c.layout = std::move(*idx);
      return c;
    }
  }
  if (archive.has("manifest.json")) {
    auto m = archive.docker_manifest();
    if (!m.ok()) return m.status();
    c.docker = true;
    c.docker_images = std::move(*m);
    return c;
  }
  return Status::InvalidArgument("archive " + file.name +
                                 ": neither an OCI layout (oci-layout, index.json) nor a "
                                 "docker-save archive (manifest.json)");
}

}  // namespace

Descriptor to_proto(const OciDescriptor& d) {
  Descriptor out;
  out.set_media_type(d.media_type);
  out.set_digest(d.digest);
  out.set_size(d.size);
  return out;
}

std::string_view host_architecture() {
  static const std::string arch = host_platform().architecture;
  return arch;
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

Result<ArchiveFile> open_archive_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("archive " + path.string() + ": no such file");
    return Status::Unavailable("archive " + path.string() + ": " + std::strerror(errno));
  }
  ArchiveFile f;
  f.fd = std::make_shared<UniqueFd>(fd);
  f.name = path.string();
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return Status::Unavailable("archive " + path.string() + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return Status::InvalidArgument("archive " + path.string() + ": " + file_kind(st.st_mode) +
                                   ", not a regular file");
  return f;
}

asio::awaitable<Result<std::vector<Image>>> import_archive(Client& client, BlockingPool& pool,
                                                           std::filesystem::path path,
                                                           CallOptions o) {
  std::function<Result<ArchiveFile>()> open = [path] { return open_archive_file(path); };
  auto f = co_await run_blocking(pool, std::move(open));
  if (!f.ok()) co_return f.status();
  co_return co_await import_archive(client, pool, std::move(*f), o);
}

asio::awaitable<Result<std::vector<Image>>> import_archive(Client& client, BlockingPool& pool,
                                                           ArchiveFile archive, CallOptions o) {
  std::function<Result<ArchiveContents>()> scan = [archive] { return scan_archive(archive); };
  auto contents = co_await run_blocking(pool, std::move(scan));
  if (!contents.ok()) co_return contents.status();
  const std::string what = "archive " + archive.name;
  if (contents->layout.empty() && contents->docker_images.empty())
    co_return Status::InvalidArgument(what + ": no images");

  // Everything written is held by this lease until the image records exist;
  // if herd dies mid-import, containerd drops the lease after an hour.
  auto lease = co_await client.leases_create("", std::chrono::hours(1), {}, o);
  if (!lease.ok()) co_return lease.status();
  CallOptions lo = o;
  lo.lease = lease->id();

  std::vector<Image> images;
  Status failed;
  Importer importer(client, pool, contents->archive, lo);
  if (!contents->docker) {
    for (const auto& e : contents->layout) {
      if (e.image_name.empty()) {
        failed = Status::InvalidArgument(what + ": index.json entry " +
                                         short_digest(e.descriptor.digest) +
                                         " has no io.containerd.image.name annotation");
        break;
      }
      std::vector<std::string> ancestors;
      if (auto s = co_await importer.tree(e.descriptor, 0, std::move(ancestors)); !s.ok()) {
        failed = s.with_context("import " + e.image_name);
        break;
      }
      auto img = co_await put_image(client, e.image_name, e.descriptor, lo);
      if (!img.ok()) {
        failed = img.status();
        break;
      }
      images.push_back(std::move(*img));
    }
  } else {
    for (size_t i = 0; i < contents->docker_images.size() && failed.ok(); ++i) {
      const auto& d = contents->docker_images[i];
      std::vector<std::string> names;
      for (const auto& tag : d.repo_tags) {
        auto n = normalize_docker_ref(tag);
        if (!n.ok()) {
          failed =
              n.status().with_context(what + ": manifest.json[" + std::to_string(i) + "].RepoTags");
          break;
        }
        names.push_back(std::move(*n));
      }
      if (!failed.ok()) break;
      if (names.empty()) continue;  // an untagged image names nothing to import
      auto manifest = co_await importer.docker_image(d, i);
      if (!manifest.ok()) {
        failed = manifest.status().with_context("import " + names.front());
        break;
      }
      for (const auto& n : names) {
        auto img = co_await put_image(client, n, *manifest, lo);
        if (!img.ok()) {
          failed = img.status();
          break;
        }
        images.push_back(std::move(*img));
      }
    }
    if (failed.ok() && images.empty())
      failed = Status::InvalidArgument(what + ": no image of manifest.json has a RepoTag");
  }
  Status released = co_await client.leases_delete(lease->id(), /*sync=*/false, cleanup_options());
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
  const Platform host = host_platform();
  // Index -> ... -> manifest, as a bounded loop: at most kMaxIndexDepth
  // indexes, none twice.
  std::set<std::string> seen;
  while (is_index_type(r.manifest.media_type())) {
    const std::string what = "image " + name + ": index " + short_digest(r.manifest.digest());
    if (seen.size() >= kMaxIndexDepth)
      co_return Status::InvalidArgument(what + ": indexes nested deeper than " +
                                        std::to_string(kMaxIndexDepth) + " levels");
    if (!seen.insert(r.manifest.digest()).second)
      co_return Status::InvalidArgument(what + ": names itself (a cycle)");
    auto text = co_await client.content_read(r.manifest.digest(), kMaxJsonDocument, o);
    if (!text.ok()) co_return text.status().with_context("image " + name);
    auto idx = parse_index(*text, what, /*with_platforms=*/true);
    if (!idx.ok()) co_return idx.status();
    const OciDescriptor* best = nullptr;
    int best_score = 0;
    for (const auto& m : idx->manifests) {
      if (!is_index_type(m.media_type) && !is_manifest_type(m.media_type)) continue;
      const int score = m.platform ? platform_match(*m.platform, host) : 1;
      if (score > best_score) {
        best = &m;
        best_score = score;
      }
    }
    if (!best)
      co_return Status::NotFound(what + ": no manifest for " + host.os + "/" + host.architecture +
                                 (host.variant.empty() ? "" : "/" + host.variant));
    r.manifest = to_proto(*best);
  }
  if (!is_manifest_type(r.manifest.media_type()))
    co_return Status::InvalidArgument("image " + name + ": unsupported media type \"" +
                                      r.manifest.media_type() + "\"");
  const std::string mwhat = "image " + name + ": manifest " + short_digest(r.manifest.digest());
  auto text = co_await client.content_read(r.manifest.digest(), kMaxJsonDocument, o);
  if (!text.ok()) co_return text.status().with_context("image " + name);
  auto m = parse_manifest(*text, mwhat);
  if (!m.ok()) co_return m.status();
  r.config_digest = m->config.digest;
  for (const auto& l : m->layers) r.layers.push_back(to_proto(l));
  auto cfg = co_await client.content_read(r.config_digest, kMaxConfigDocument, o);
  if (!cfg.ok()) co_return cfg.status().with_context("image " + name);
  r.config_json = std::move(*cfg);
  if (!json_nesting_within(r.config_json))
    co_return Status::InvalidArgument("image " + name + ": config " +
                                      short_digest(r.config_digest) + ": JSON nested deeper than " +
                                      std::to_string(kMaxJsonDepth) + " levels");
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
      // A cancelled Prepare may still have made the snapshot.
      (void)co_await client.snapshots_remove(snapshotter, key, cleanup_options());
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
        (void)co_await client.snapshots_remove(snapshotter, key, cleanup_options());
        step = Status::Ok();
      }
      if (step.ok()) {
        // Mark the layer blob as unpacked, as containerd's own unpacker does.
        Labels uncompressed;
        uncompressed["containerd.io/uncompressed"] = image->diff_ids[i];
        (void)co_await client.content_set_labels(image->layers[i].digest(), std::move(uncompressed),
                                                 lo);
      }
    }
    if (!step.ok()) {
      (void)co_await client.snapshots_remove(snapshotter, key, cleanup_options());
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
  Status released = co_await client.leases_delete(lease->id(), /*sync=*/false, cleanup_options());
  if (!failed.ok()) co_return failed.with_context("unpack " + name);
  if (!released.ok()) co_return released;
  co_return image;
}

}  // namespace herd::containerd
