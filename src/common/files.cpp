#include "hci_admission/common/files.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace hci_admission {

std::optional<std::string> read_file_if_present(const std::string &path) {
  // A folder opens, and reads as nothing: it would pass for an empty file
  // (a folder in $KUBECONFIG for an empty kubeconfig; kubectl refuses it).
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    errno = EISDIR;
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return s.str();
}

std::string read_file(const std::string &path, std::string_view what) {
  errno = 0;
  auto content = read_file_if_present(path);
  if (!content) {
    const int e = errno;
    throw FileError("cannot read " + std::string(what) + " " + path + ": " +
                    (e != 0 ? std::strerror(e) : "read error"));
  }
  return std::move(*content);
}

void write_file_atomically(const std::string &path, const std::string &content, mode_t mode) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out.flush()) throw FileError("cannot write " + tmp);
  }
  chmod(tmp.c_str(), mode);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw FileError("cannot replace " + path + ": " + std::strerror(errno));
  }
}

}  // namespace hci_admission
