// Certificate rotation as a pure plan: from what the Secret and the webhook
// configurations hold, and the time, to what to write. No API calls, files
// or clocks here (SelfManagedCertificates::reconcile observes, plans and
// applies), so every step of a rotation is unit-tested with a fixed clock.
#pragma once

#include "hci_admission/certs/cert_issuer.hpp"
#include "hci_admission/json/json.hpp"

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hci_admission {

struct SelfManagedCertsConfig;

// Keys of the Secret; its type is kubernetes.io/tls.
namespace secret_keys {
constexpr const char *kServingCert = "tls.crt";
constexpr const char *kServingKey = "tls.key";
constexpr const char *kTrustBundle = "ca.crt";  // every CA the API server should trust
constexpr const char *kSignerCert = "signer.crt";
constexpr const char *kSignerKey = "signer.key";
constexpr const char *kNextSignerCert = "next-signer.crt";  // only during a CA switch
constexpr const char *kNextSignerKey = "next-signer.key";
}  // namespace secret_keys

// A certificate is renewed when less than 1/kRenewDivisor of its validity
// is left.
constexpr int kRenewDivisor = 3;

// When the trust bundle last grew: a new CA may sign only a trust delay
// after this.
constexpr const char *kTrustUpdatedAt = "hci-admission.io/trust-updated-at";
// Counts changes of the trust bundle, on the Secret and on each webhook
// configuration it was injected into, so that a replica holding an older
// Secret never writes an older bundle over a newer one.
constexpr const char *kBundleGeneration = "hci-admission.io/ca-bundle-generation";

// What the Secret holds, decoded.
struct SecretState {
  bool exists = false;
  Json metadata = Json::object();
  std::map<std::string, std::string> data;
  long long generation = 0;
  std::chrono::system_clock::time_point trust_updated_at{};

  // The decoded value under `key`; empty when the Secret has none.
  const std::string &value(const std::string &key) const;
};

// A Secret as the API returns it. Throws std::invalid_argument for a body
// that is not one; a value that is not base64 is left out (and rebuilt).
SecretState decode_secret(const std::string &body);

// The bundle generation a webhook configuration carries; 0 without one.
long long bundle_generation(const Json &webhook_config);

// What to write to the Secret. Nothing when all is as it should be.
struct SecretPlan {
  std::optional<Json> secret;               // the whole object to PUT (or POST when it does not exist yet)
  std::vector<std::string> notes;           // what changes and why, for the log
  long long generation = 0;                 // the bundle generation the Secret will carry
  std::optional<CertificateFacts> serving;  // the serving certificate it will hold
};

// The Secret's next state at `now`: a CA when there is none; a new CA
// joining the trust bundle when the signer has less than a third of its
// validity left; the new CA signing once every webhook configuration
// trusts it and the trust delay has passed (at once when nothing is served
// yet); the serving certificate (re)issued with a third left, for other
// names, or from another signer; expired CAs dropped from the bundle.
// `configs` are the webhook configurations, absent ones as nullopt.
SecretPlan plan_secret(const SelfManagedCertsConfig &config, const SecretState &secret,
                       const std::vector<std::optional<Json>> &configs,
                       std::chrono::system_clock::time_point now);

// The JSON Patch that makes every webhook of `webhook_config` carry
// `bundle_pem` and the configuration carry `generation`; nothing when it
// already does, or when it carries a newer generation (this replica is
// behind). Each change is guarded by a "test", so a concurrent change
// makes the patch fail (422) instead of being overwritten.
std::optional<Json> plan_ca_bundle_patch(const Json &webhook_config, const std::string &bundle_pem,
                                         long long generation);

}  // namespace hci_admission
