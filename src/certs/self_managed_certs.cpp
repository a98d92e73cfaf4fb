#include "hci_admission/certs/self_managed_certs.hpp"

#include "hci_admission/common/base64.hpp"
#include "hci_admission/common/files.hpp"
#include "hci_admission/obs/logging.hpp"

#include <algorithm>

namespace hci_admission {

std::string WebhookConfigRef::api_path() const {
  return std::string("/apis/admissionregistration.k8s.io/v1/") +
         (mutating ? "mutatingwebhookconfigurations/" : "validatingwebhookconfigurations/") + name;
}

std::string WebhookConfigRef::describe() const {
  return std::string(mutating ? "mutatingwebhookconfiguration/" : "validatingwebhookconfiguration/") + name;
}

WebhookConfigRef WebhookConfigRef::parse(const std::string &text) {
  const size_t slash = text.find('/');
  const std::string kind = text.substr(0, slash);
  WebhookConfigRef r;
  if (slash == std::string::npos || slash + 1 == text.size() ||
      (kind != "validating" && kind != "mutating")) {
    throw std::invalid_argument("\"" + text + "\" is not validating/NAME or mutating/NAME");
  }
  r.mutating = kind == "mutating";
  r.name = text.substr(slash + 1);
  return r;
}

void SelfManagedCertsConfig::check() const {
  if (secret_namespace.empty() || secret_name.empty()) {
    throw std::invalid_argument("--self-managed-certs wants NAMESPACE/NAME");
  }
  if (dns_names.empty()) throw std::invalid_argument("--self-managed-dns-names needs at least one name");
  if (cert_validity > ca_validity) {
    throw std::invalid_argument(
        "--self-managed-cert-validity cannot be longer than --self-managed-ca-validity");
  }
  // A new CA is made when kRenewFraction of the old one's validity is left;
  // waiting for it to be trusted may use at most half of that margin.
  if (trust_delay * 2 * kRenewDivisor > ca_validity) {
    throw std::invalid_argument(
        "--self-managed-trust-delay must be under a sixth of --self-managed-ca-validity");
  }
}

SelfManagedCertificates::SelfManagedCertificates(SelfManagedCertsConfig config, const KubeApi &api)
    : config_(std::move(config)), api_(api) {
  config_.check();
}

SelfManagedCertificates::~SelfManagedCertificates() { stop(); }

std::string SelfManagedCertificates::secret_path() const {
  return "/api/v1/namespaces/" + config_.secret_namespace + "/secrets/" + config_.secret_name;
}

LogLine SelfManagedCertificates::log(const char *message) const {
  LogLine l(message);
  l.field("secret", secret_ref());
  return l;
}

void SelfManagedCertificates::reconcile(std::chrono::system_clock::time_point now) {
  const std::string secret_what = "Secret " + secret_ref();
  for (int attempt = 0; attempt < 5; ++attempt) {
    // 1. Observe: the Secret, and each webhook configuration.
    SecretState secret;
    const ApiReply got = api_.request("GET", secret_path(), "", "", deadline());
    if (got.status == 200) {
      try {
        secret = decode_secret(got.body);
      } catch (const std::invalid_argument &e) {
        throw ClusterReadError("get " + secret_what + ": " + e.what());
      }
    } else if (got.status != 404) {
      throw ClusterReadError("get " + secret_what + ": " + got.failure());
    }
    const std::vector<std::optional<Json>> configs = read_webhook_configs();
    // 2. Plan, 3. apply: the Secret first; a conflict means another replica
    // wrote first: start over from what it wrote.
    const SecretPlan plan = plan_secret(config_, secret, configs, now);
    if (plan.secret) {
      std::optional<SecretState> written = write_secret(secret, plan);
      if (!written) continue;
      secret = std::move(*written);
    }
    // The trust bundle into each webhook configuration, then the files.
    patch_webhook_configs(configs, secret);
    write_files(secret);
    ++passes_;
    return;
  }
  throw ClusterReadError(secret_what + " kept changing while being updated (5 conflicts in a row)");
}

std::vector<std::optional<Json>> SelfManagedCertificates::read_webhook_configs() {
  std::vector<std::optional<Json>> configs;
  for (const auto &ref : config_.webhook_configs) {
    const ApiReply r = api_.request("GET", ref.api_path(), "", "", deadline());
    const auto missing = std::find(missing_configs_.begin(), missing_configs_.end(), ref.name);
    if (r.status == 404) {
      if (missing == missing_configs_.end()) {
        log("webhook configuration not found; its caBundle is set once it exists")
            .field("webhook_configuration", ref.describe())
            .info();
        missing_configs_.push_back(ref.name);
      }
      configs.emplace_back();
      continue;
    }
    if (r.status != 200) throw ClusterReadError("get " + ref.describe() + ": " + r.failure());
    Json doc = Json::parse(r.body, nullptr, false);
    if (!doc.is_object() || !doc.contains("metadata") || !doc["metadata"].is_object()) {
      throw ClusterReadError("get " + ref.describe() + ": the answer is not a webhook configuration");
    }
    if (missing != missing_configs_.end()) missing_configs_.erase(missing);
    configs.emplace_back(std::move(doc));
  }
  return configs;
}

std::optional<SecretState> SelfManagedCertificates::write_secret(const SecretState &read,
                                                                 const SecretPlan &plan) {
  const std::string secret_what = "Secret " + secret_ref();
  const std::string body = json_text(*plan.secret);
  const ApiReply put =
      read.exists ? api_.request("PUT", secret_path(), body, "application/json", deadline())
                  : api_.request("POST", "/api/v1/namespaces/" + config_.secret_namespace + "/secrets", body,
                                 "application/json", deadline());
  if (put.status == 409) return std::nullopt;
  if (put.status != 200 && put.status != 201) {
    throw ClusterReadError((read.exists ? "update " : "create ") + secret_what + ": " + put.failure());
  }
  for (const auto &n : plan.notes) log(n.c_str()).field("generation", plan.generation).info();
  if (plan.serving) {
    log("serving certificate in the Secret")
        .field("names", plan.serving->dns_names.empty() ? "" : plan.serving->dns_names.front())
        .field("not_after", format_utc(plan.serving->not_after))
        .info();
  }
  ++renewals_;
  try {
    return decode_secret(put.body);
  } catch (const std::invalid_argument &e) {
    throw ClusterReadError("write " + secret_what + ": " + e.what());
  }
}

void SelfManagedCertificates::patch_webhook_configs(const std::vector<std::optional<Json>> &configs,
                                                    const SecretState &secret) {
  const std::string &bundle_pem = secret.value(secret_keys::kTrustBundle);
  for (size_t i = 0; i < configs.size(); ++i) {
    if (!configs[i]) continue;
    const auto ops = plan_ca_bundle_patch(*configs[i], bundle_pem, secret.generation);
    if (!ops) continue;
    const auto &ref = config_.webhook_configs[i];
    const ApiReply r =
        api_.request("PATCH", ref.api_path(), json_text(*ops), "application/json-patch+json", deadline());
    if (r.status == 409 || r.status == 422) {
      // Changed since read (another replica, or a re-apply): next pass.
      log("webhook configuration changed while being updated; trying again next pass")
          .field("webhook_configuration", ref.describe())
          .debug();
      continue;
    }
    if (r.status != 200) throw ClusterReadError("patch " + ref.describe() + ": " + r.failure());
    log("caBundle set")
        .field("webhook_configuration", ref.describe())
        .field("generation", secret.generation)
        .info();
  }
}

// The serving certificate where the server loads it from.
void SelfManagedCertificates::write_files(const SecretState &secret) const {
  auto value = [&secret](const char *key) -> const std::string & { return secret.value(key); };
  const std::string dir = config_.cert_dir + "/";
  if (read_file_if_present(dir + "ca.crt").value_or("") != value(secret_keys::kTrustBundle)) {
    write_file_atomically(dir + "ca.crt", value(secret_keys::kTrustBundle), 0644);
  }
  if (read_file_if_present(dir + "tls.crt").value_or("") != value(secret_keys::kServingCert) ||
      read_file_if_present(dir + "tls.key").value_or("") != value(secret_keys::kServingKey)) {
    write_file_atomically(dir + "tls.key", value(secret_keys::kServingKey), 0600);
    write_file_atomically(dir + "tls.crt", value(secret_keys::kServingCert), 0644);
  }
}

void SelfManagedCertificates::start() {
  if (!task_) task_ = std::make_unique<PeriodicTask>(config_.check_interval, [this] { return tick(); });
}

void SelfManagedCertificates::stop() { task_.reset(); }

std::chrono::milliseconds SelfManagedCertificates::tick() {
  try {
    reconcile();
    return config_.check_interval;
  } catch (const std::exception &e) {
    ++failures_;
    LogLine("self-managed certificates: pass failed; the current certificate stays in service")
        .field("error", e.what())
        .warn();
    // Sooner again, but not in a tight loop against a struggling API.
    return std::min<std::chrono::milliseconds>(config_.check_interval, std::chrono::seconds(5));
  }
}

}  // namespace hci_admission
