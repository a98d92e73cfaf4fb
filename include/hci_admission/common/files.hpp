// Whole-file reads and writes, for certificates, kubeconfigs, tokens and
// cluster state: small files read at start-up or on a change.
#pragma once

#include <sys/types.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace hci_admission {

class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The file's bytes. Throws FileError "cannot read <what> <path>: <reason>".
std::string read_file(const std::string &path, std::string_view what);
// The file's bytes, or nothing when it cannot be read.
std::optional<std::string> read_file_if_present(const std::string &path);
// Written beside, then renamed over, so a reader never sees half a file.
// Throws FileError.
void write_file_atomically(const std::string &path, const std::string &content, mode_t mode);

}  // namespace hci_admission
