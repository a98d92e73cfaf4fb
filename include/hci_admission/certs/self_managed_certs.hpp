// Self-managed serving certificates, for clusters without cert-manager:
// the server keeps a CA and its serving certificate in a Secret, puts the
// CA bundle into its own webhook configurations' caBundle, and renews both
// before they expire. Every replica runs this; the Secret's resourceVersion
// (optimistic concurrency) decides races, so no leader election is needed.
//
// A new CA is never used the moment it exists: it first joins the trust
// bundle next to the old one, and signs serving certificates only once
// every webhook configuration carries it and --self-managed-trust-delay has
// passed. The API server therefore trusts both the old and the new serving
// certificate throughout the switch.
#pragma once

#include "hci_admission/certs/cert_issuer.hpp"
#include "hci_admission/certs/rotation_plan.hpp"
#include "hci_admission/kube/kube_client.hpp"
#include "hci_admission/obs/logging.hpp"

#include "hci_admission/common/worker_pool.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hci_admission {

// "validating/NAME" or "mutating/NAME".
struct WebhookConfigRef {
  bool mutating = false;
  std::string name;

  std::string api_path() const;
  std::string describe() const;  // "mutatingwebhookconfiguration/NAME"
  // Throws std::invalid_argument for text of another shape.
  static WebhookConfigRef parse(const std::string &text);
};

struct SelfManagedCertsConfig {
  std::string secret_namespace;
  std::string secret_name;
  std::vector<std::string> dns_names;  // the serving certificate's names
  std::vector<WebhookConfigRef> webhook_configs;
  std::string cert_dir;  // tls.crt, tls.key and ca.crt are written here
  std::chrono::seconds ca_validity{std::chrono::hours(24 * 3650)};
  std::chrono::seconds cert_validity{std::chrono::hours(24 * 365)};
  // After the trust bundle grows, how long before the new CA may sign: time
  // for every API server to see the new caBundle.
  std::chrono::seconds trust_delay{std::chrono::minutes(2)};
  std::chrono::milliseconds check_interval{std::chrono::minutes(1)};
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};

  // Throws std::invalid_argument naming the flag at fault.
  void check() const;
};

class SelfManagedCertificates {
 public:
  // Throws std::invalid_argument for an unusable configuration.
  SelfManagedCertificates(SelfManagedCertsConfig config, const KubeApi &api);
  ~SelfManagedCertificates();
  SelfManagedCertificates(const SelfManagedCertificates &) = delete;
  SelfManagedCertificates &operator=(const SelfManagedCertificates &) = delete;

  // One pass: observe (the Secret and the webhook configurations), plan
  // (plan_secret, plan_ca_bundle_patch), apply (write the Secret, patch the
  // configurations, write the files). Throws ClusterReadError (the API could
  // not be reached or refused) or CertificateError.
  void reconcile(std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
  // reconcile() every check interval in a thread of its own, and sooner
  // again after a failure; failures are logged.
  void start();
  void stop();

  size_t passes() const { return passes_; }
  size_t failures() const { return failures_; }
  size_t renewals() const { return renewals_; }

 private:
  // One pass from the background thread: the wait before the next.
  std::chrono::milliseconds tick();
  // The webhook configurations, in config order; nullopt for a missing one.
  std::vector<std::optional<Json>> read_webhook_configs();
  // Writes the Secret and returns it as stored; nothing on a conflict
  // (another replica wrote first).
  std::optional<SecretState> write_secret(const SecretState &read, const SecretPlan &plan);
  void patch_webhook_configs(const std::vector<std::optional<Json>> &configs, const SecretState &secret);
  void write_files(const SecretState &secret) const;
  LogLine log(const char *message) const;
  // When an API call started now must have its answer.
  Deadline deadline() const { return std::chrono::steady_clock::now() + config_.request_timeout; }
  std::string secret_path() const;
  std::string secret_ref() const {
    return config_.secret_namespace + "/" + config_.secret_name;
  }  // "NS/NAME"

  SelfManagedCertsConfig config_;
  const KubeApi &api_;
  std::atomic<size_t> passes_{0};
  std::atomic<size_t> failures_{0};
  std::atomic<size_t> renewals_{0};
  std::vector<std::string> missing_configs_;  // logged once while missing
  std::unique_ptr<PeriodicTask> task_;
};

}  // namespace hci_admission
