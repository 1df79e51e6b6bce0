#include "engine/checkpoint_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/checkpoint_contents.h"
#include "engine/pickle_writer.h"
#include "engine/zip_writer.h"
#include "nlohmann/json.hpp"

namespace rwkv::engine {
namespace {

std::string_view StorageType(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "FloatStorage";
    case DType::kFloat16:
      return "HalfStorage";
    case DType::kBFloat16:
      return "BFloat16Storage";
    case DType::kFloat64:
      return "DoubleStorage";
    case DType::kInt64:
      return "LongStorage";
    case DType::kInt32:
      return "IntStorage";
    case DType::kInt16:
      return "ShortStorage";
    case DType::kInt8:
      return "CharStorage";
    case DType::kUInt8:
      return "ByteStorage";
    case DType::kBool:
      return "BoolStorage";
  }
  return "";
}

std::string_view SafetensorsDType(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "F32";
    case DType::kFloat16:
      return "F16";
    case DType::kBFloat16:
      return "BF16";
    case DType::kFloat64:
      return "F64";
    case DType::kInt64:
      return "I64";
    case DType::kInt32:
      return "I32";
    case DType::kInt16:
      return "I16";
    case DType::kInt8:
      return "I8";
    case DType::kUInt8:
      return "U8";
    case DType::kBool:
      return "BOOL";
  }
  return "";
}

// Checks one tensor; returns its numel.
absl::StatusOr<int64_t> CheckTensor(const TensorToWrite& t) {
  if (DTypeSize(t.dtype) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", t.name, "': invalid dtype"));
  }
  int64_t numel;
  size_t nbytes;
  if (!ShapeNumel(t.shape, &numel) || !TensorNbytes(t.dtype, numel, &nbytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", t.name, "': invalid shape ", ShapeString(t.shape)));
  }
  if (nbytes != t.nbytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", t.name, "': shape ", ShapeString(t.shape), " ",
                     std::string(DTypeName(t.dtype)), " needs ", nbytes,
                     " bytes, got ", t.nbytes));
  }
  if (t.nbytes > 0 && t.data == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", t.name, "': null data"));
  }
  return numel;
}

}  // namespace

absl::StatusOr<std::string> SerializePth(
    absl::Span<const TensorToWrite> tensors,
    absl::Span<const ScalarToWrite> scalars, std::string_view archive_name) {
  if (archive_name.empty() || archive_name.find('/') != std::string::npos ||
      archive_name.size() > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid archive name '", std::string(archive_name), "'"));
  }
  std::set<std::string_view> names;
  std::vector<int64_t> numels;
  for (const TensorToWrite& t : tensors) {
    absl::StatusOr<int64_t> numel = CheckTensor(t);
    if (!numel.ok()) return numel.status();
    numels.push_back(*numel);
    if (!names.insert(t.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate name '", t.name, "'"));
    }
  }
  for (const ScalarToWrite& s : scalars) {
    if (!names.insert(s.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate name '", s.name, "'"));
    }
  }

  // data.pkl: as CPython's Pickler writes the dict (items in batches of
  // 1000: MARK ... SETITEMS, or SETITEM for a batch of one).
  PickleWriter p;
  p.EmptyDict();
  const size_t total = tensors.size() + scalars.size();
  std::vector<int64_t> stride;
  for (size_t begin = 0; begin < total; begin += 1000) {
    const size_t end = std::min(total, begin + 1000);
    if (end - begin > 1) p.Mark();
    for (size_t i = begin; i < end; ++i) {
      if (i < tensors.size()) {
        const TensorToWrite& t = tensors[i];
        p.String(t.name);
        stride.assign(t.shape.size(), 1);
        for (size_t d = t.shape.size(); d-- > 1;) {
          stride[d - 1] = stride[d] * std::max<int64_t>(t.shape[d], 1);
        }
        p.Tensor(StorageType(t.dtype), std::to_string(i), numels[i], 0, t.shape,
                 stride);
      } else {
        const ScalarToWrite& s = scalars[i - tensors.size()];
        p.String(s.name);
        if (const auto* v = std::get_if<std::string>(&s.value)) {
          p.String(*v);
        } else if (const auto* v = std::get_if<int64_t>(&s.value)) {
          p.Int(*v);
        } else if (const auto* v = std::get_if<double>(&s.value)) {
          p.Float(*v);
        } else {
          p.Bool(std::get<bool>(s.value));
        }
      }
    }
    if (end - begin > 1) {
      p.SetItems();
    } else {
      p.SetItem();
    }
  }
  const std::string pickle = p.Finish();

  // The archive, in torch.save's record order: data.pkl, data/<key> in
  // sorted key order, version.
  std::vector<std::pair<std::string, size_t>> keys;
  for (size_t i = 0; i < tensors.size(); ++i) {
    keys.emplace_back(std::to_string(i), i);
  }
  std::sort(keys.begin(), keys.end());
  size_t reserve = pickle.size() + 1024;
  for (const TensorToWrite& t : tensors) reserve += t.nbytes + 200;
  std::string out;
  out.reserve(reserve);
  ZipWriter zip(&out);
  const std::string dir = std::string(archive_name) + "/";
  if (absl::Status s = zip.Add(dir + "data.pkl", pickle); !s.ok()) return s;
  for (const auto& [key, i] : keys) {
    const TensorToWrite& t = tensors[i];
    absl::Status s =
        zip.Add(dir + "data/" + key,
                std::string_view(static_cast<const char*>(t.data), t.nbytes));
    if (!s.ok()) return s;
  }
  if (absl::Status s = zip.Add(dir + "version", "3\n"); !s.ok()) return s;
  if (absl::Status s = zip.Finish(); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::string> SerializeSafetensors(
    absl::Span<const TensorToWrite> tensors,
    const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    absl::StatusOr<int64_t> numel = CheckTensor(t);
    if (!numel.ok()) return numel.status();
    if (t.name == "__metadata__") {
      return absl::InvalidArgumentError(
          "'__metadata__' cannot be a tensor name");
    }
    if (header.contains(t.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate name '", t.name, "'"));
    }
    nlohmann::ordered_json info = nlohmann::ordered_json::object();
    info["dtype"] = SafetensorsDType(t.dtype);
    info["shape"] = t.shape;
    info["data_offsets"] = {offset, offset + t.nbytes};
    header[t.name] = std::move(info);
    offset += t.nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a name or metadata string is not valid UTF-8: ", e.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + text.size() + offset);
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>(uint64_t{text.size()} >> (8 * i)));
  }
  out += text;
  for (const TensorToWrite& t : tensors) {
    out.append(static_cast<const char*>(t.data), t.nbytes);
  }
  return out;
}

absl::Status WriteFileAtomically(const std::string& path,
                                 std::string_view bytes) {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp =
      absl::StrCat(path, ".tmp.", ::getpid(), ".", counter.fetch_add(1));
  auto fail = [&](const char* what, int err) {
    return absl::InternalError(
        absl::StrCat(path, ": ", what, ": ", std::strerror(err)));
  };
  int fd;
  do {
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return absl::NotFoundError(
          absl::StrCat(path, ": cannot create file: ", std::strerror(err)));
    }
    if (err == EACCES || err == EPERM || err == EROFS) {
      return absl::PermissionDeniedError(
          absl::StrCat(path, ": cannot create file: ", std::strerror(err)));
    }
    return fail("cannot create temporary file", err);
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done,
                              std::min<size_t>(bytes.size() - done, 1 << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return fail("write failed", err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return fail("fsync failed", err);
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return fail("close failed", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return fail("rename failed", err);
  }
  // Make the rename durable (best effort).
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return absl::OkStatus();
}

}  // namespace rwkv::engine
