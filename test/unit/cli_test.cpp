#include "hci_admission/app/cli.hpp"
#include "hci_admission/app/commands.hpp"
#include "hci_admission/common/text.hpp"
#include "registry.hpp"

#include <catch2/catch.hpp>

using namespace hci_admission;

namespace {
Options parse(std::vector<std::string> args) { return parse_options(args, webhooks::builtin_policies()); }
std::string error_of(std::vector<std::string> args) {
  try {
    parse(std::move(args));
  } catch (const UsageError &e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("flags parse with defaults", "[cli]") {
  const Options o =
      parse({"--cert-dir", "/c", "--port=8443", "--bind", "127.0.0.1", "--log-format", "json",
             "--max-body-size", "1MiB", "--idle-timeout", "2m", "--policies", "csi-controller-placement"});
  CHECK(o.cert_dir == "/c");
  CHECK(o.server.port == 8443);
  CHECK(o.server.bind_address == "127.0.0.1");
  CHECK(o.log_format == LogFormat::Json);
  CHECK(o.server.limits.max_body_bytes == 1u << 20);
  CHECK(o.server.idle_timeout == std::chrono::minutes(2));
  CHECK(o.enabled_policies == std::vector<std::string>{"csi-controller-placement"});
  CHECK(o.policy_options.at("control-plane-labels").find("node-role.kubernetes.io/master") !=
        std::string::npos);
  const Options d = parse({});
  CHECK(d.server.port == 9443);
  CHECK(d.server.limits.max_body_bytes == 7u << 20);
  CHECK(d.server.limits.max_header_bytes == 16u << 10);
  CHECK(d.server.threads == 0);
  CHECK(d.log_level == "info");
}

TEST_CASE("bad flags are refused with a message naming them", "[cli]") {
  CHECK_THAT(error_of({"--nope"}), Catch::Contains("unknown flag --nope"));
  CHECK_THAT(error_of({"--port"}), Catch::Contains("--port needs a value"));
  CHECK_THAT(error_of({"--port", "x"}), Catch::Contains("whole number"));
  CHECK_THAT(error_of({"--port", "70000"}), Catch::Contains("at most 65535"));
  CHECK_THAT(error_of({"--log-format", "xml"}), Catch::Contains("text or json"));
  CHECK_THAT(error_of({"--log-level", "loud"}), Catch::Contains("--log-level"));
  CHECK_THAT(error_of({"--policies", "nope"}), Catch::Contains("unknown policy \"nope\""));
  CHECK_THAT(error_of({"--max-body-size", "7XB"}), Catch::Contains("unknown size unit"));
  CHECK_THAT(error_of({"--read-timeout", "10ms"}), Catch::Contains("at least 1s"));
  CHECK_THAT(error_of({"stray"}), Catch::Contains("unexpected argument"));
  CHECK_THAT(error_of({"--help=1"}), Catch::Contains("takes no value"));
  CHECK_THAT(error_of({"--threads", "99999999999999999999"}), Catch::Contains("at most 256"));
  CHECK_THAT(error_of({"-x"}), Catch::Contains("unexpected argument"));
}

TEST_CASE("-h is --help", "[cli]") {
  const auto specs = webhooks::builtin_policies();
  CHECK(parse_options({"-h"}, specs).help);
  CHECK(parse_options({"--help"}, specs).help);
}

TEST_CASE("sizes and durations", "[cli]") {
  CHECK(parse_byte_size("1048576") == 1048576);
  CHECK(parse_byte_size("64KiB") == 65536);
  CHECK(parse_byte_size("7M") == 7u << 20);
  CHECK_THROWS_AS(parse_byte_size("MiB"), std::invalid_argument);
  CHECK_THROWS_AS(parse_byte_size("99999999999GiB"), std::invalid_argument);
  CHECK(parse_duration("500ms") == std::chrono::milliseconds(500));
  CHECK(parse_duration("15") == std::chrono::seconds(15));
  CHECK(parse_duration("1h") == std::chrono::hours(1));
  CHECK_THROWS_AS(parse_duration("1d"), std::invalid_argument);
}

TEST_CASE("help lists every flag and policy option", "[cli]") {
  const std::string text = usage(webhooks::builtin_policies(), "hci-admission");
  for (const char *flag :
       {"--cert-dir", "--port", "--bind", "--log-format", "--log-level", "--help", "--version",
        "--max-body-size", "--policies", "--csi-controller-selector", "--control-plane-labels",
        "/mutate/csi-controller-placement", "/mutate/kubevirt-infra-placement"}) {
    CHECK_THAT(text, Catch::Contains(flag));
  }
}

TEST_CASE("every list flag trims its items", "[cli]") {
  // --policies once failed on " kubevirt-infra-placement" while
  // --control-plane-labels accepted the same spacing.
  const Options o = parse({"--policies", " csi-controller-placement, kubevirt-infra-placement,,"});
  CHECK(o.enabled_policies ==
        std::vector<std::string>{"csi-controller-placement", "kubevirt-infra-placement"});
  CHECK(split_list(" a ,\tb,, c") == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("the buffer budget is a size", "[cli]") {
  CHECK(parse({"--max-buffered-size", "64MiB"}).server.max_buffered_bytes == 64u << 20);
  CHECK(parse({}).server.max_buffered_bytes == 32u << 20);
  CHECK_THAT(error_of({"--max-buffered-size", "lots"}), Catch::Contains("--max-buffered-size"));
  // One client's share of it: half by default (0 here, decided by the server).
  CHECK(parse({"--max-buffered-size-per-client", "4MiB"}).server.max_buffered_bytes_per_client == 4u << 20);
  CHECK(parse({}).server.max_buffered_bytes_per_client == 0);
  CHECK_THAT(error_of({"--max-buffered-size-per-client", "0"}), Catch::Contains("more than 0"));
}

TEST_CASE("called as kubectl-hci_admission, the program names itself as the kubectl plugin", "[cli]") {
  // The server's --help too (issue 24: it said "Usage: hci-admission" as the
  // plugin, while precheck's and the commands' said "kubectl hci-admission").
  const auto specs = webhooks::builtin_policies();
  const std::string as_plugin = usage(specs, program_name("/usr/local/bin/kubectl-hci_admission"));
  CHECK_THAT(as_plugin, Catch::StartsWith("Usage: kubectl hci-admission --cert-dir DIR [flags]\n"));
  CHECK_THAT(usage(specs, program_name("build/hci-admission")),
             Catch::StartsWith("Usage: hci-admission --cert-dir DIR [flags]\n"));
  CHECK(program_name("/usr/local/bin/kubectl-hci_admission") == "kubectl hci-admission");
  CHECK(program_name("kubectl-hci_admission") == "kubectl hci-admission");
  CHECK(program_name("build/hci-admission") == "hci-admission");
  CHECK(program_name("/opt/kubectl-hci_admission/hci-admission") == "hci-admission");
  CHECK(program_name(nullptr) == "hci-admission");
}
