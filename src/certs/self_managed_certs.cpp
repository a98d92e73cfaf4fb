#include "hci_admission/certs/self_managed_certs.hpp"

#include "hci_admission/common/base64.hpp"
#include "hci_admission/common/files.hpp"
#include "hci_admission/json/json_write.hpp"
#include "hci_admission/obs/logging.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

namespace hci_admission {
namespace {

using Clock = std::chrono::system_clock;

// When the trust bundle last grew: a new CA may sign only a trust delay
// after this.
constexpr const char *kTrustUpdatedAt = "hci-admission.io/trust-updated-at";
// Counts changes of the trust bundle, on the Secret and on each webhook
// configuration it was injected into, so that a replica holding an older
// Secret never writes an older bundle over a newer one.
constexpr const char *kBundleGeneration = "hci-admission.io/ca-bundle-generation";
// Renew when less than this part of a certificate's validity is left.
constexpr int kRenewDivisor = 3;
constexpr double kRenewFraction = 1.0 / kRenewDivisor;

struct KeyPair {
  PemPair pem;
  CertificateFacts facts;
};

// What the Secret holds, decoded.
struct SecretState {
  bool exists = false;
  Json metadata = Json::object();
  std::map<std::string, std::string> data;
  long long generation = 0;
  Clock::time_point trust_updated_at{};
};

std::string annotation(const Json &metadata, const char *key) {
  auto a = metadata.find("annotations");
  if (a == metadata.end() || !a->is_object()) return "";
  auto v = a->find(key);
  return v != a->end() && v->is_string() ? v->get<std::string>() : "";
}

long long parse_generation(const std::string &text) {
  if (text.empty() || text.size() > 18 || !std::all_of(text.begin(), text.end(), ::isdigit)) return 0;
  return std::stoll(text);
}

Clock::time_point parse_utc(const std::string &text) {
  std::tm tm{};
  if (strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) return Clock::time_point{};
  return Clock::from_time_t(timegm(&tm));
}

SecretState decode_secret(const std::string &body, const std::string &what) {
  Json doc = Json::parse(body, nullptr, false);
  if (!doc.is_object() || !doc.contains("metadata") || !doc["metadata"].is_object()) {
    throw ClusterReadError(what + ": the answer is not a Secret");
  }
  SecretState s;
  s.exists = true;
  s.metadata = doc["metadata"];
  if (doc.contains("data") && doc["data"].is_object()) {
    for (auto &[k, v] : doc["data"].items()) {
      if (!v.is_string()) continue;
      try {
        s.data[k] = base64_decode(v.get<std::string>());
      } catch (const std::exception &) {
        // Left out: an unreadable value is treated as missing, and rebuilt.
      }
    }
  }
  s.generation = parse_generation(annotation(s.metadata, kBundleGeneration));
  s.trust_updated_at = parse_utc(annotation(s.metadata, kTrustUpdatedAt));
  return s;
}

// The pair under `cert_key`/`key_key` if it parses, matches, has the
// right role and has not expired.
std::optional<KeyPair> usable_pair(const SecretState &s, const char *cert_key, const char *key_key, bool ca,
                                   Clock::time_point now) {
  auto c = s.data.find(cert_key);
  auto k = s.data.find(key_key);
  if (c == s.data.end() || k == s.data.end()) return std::nullopt;
  KeyPair p{{c->second, k->second}, {}};
  try {
    p.facts = inspect_certificate(p.pem.cert);
  } catch (const CertificateError &) {
    return std::nullopt;
  }
  if (p.facts.is_ca != ca || now >= p.facts.not_after || !key_matches(p.pem)) return std::nullopt;
  return p;
}

using Bundle = std::vector<std::pair<std::string, std::string>>;  // (SHA-256, PEM) per certificate

bool holds(const Bundle &bundle, const std::string &sha256) {
  return std::any_of(bundle.begin(), bundle.end(), [&](const auto &e) { return e.first == sha256; });
}

// The unexpired certificates of a PEM bundle without repeats, in order;
// `dropped` says whether any were left out. Empty when the bundle does not
// read: it is then rebuilt from the signers.
Bundle live_bundle(const std::string &pem, Clock::time_point now, bool &dropped) {
  Bundle out;
  dropped = false;
  try {
    for (auto &c : split_pem_bundle(pem)) {
      const CertificateFacts f = inspect_certificate(c);
      if (now < f.not_after && !holds(out, f.sha256)) {
        out.emplace_back(f.sha256, std::move(c));
      } else {
        dropped = true;
      }
    }
  } catch (const CertificateError &) {
    out.clear();
    dropped = false;
  }
  return out;
}

// Every webhook of `config` has a caBundle that contains the certificate
// with fingerprint `sha256`.
bool config_trusts(const Json &config, const std::string &sha256) {
  if (!config.contains("webhooks") || !config["webhooks"].is_array()) return true;
  for (const auto &w : config["webhooks"]) {
    const Json *bundle = nullptr;
    if (w.contains("clientConfig") && w["clientConfig"].contains("caBundle"))
      bundle = &w["clientConfig"]["caBundle"];
    if (bundle == nullptr || !bundle->is_string()) return false;
    try {
      const auto certs = split_pem_bundle(base64_decode(bundle->get<std::string>()));
      if (std::none_of(certs.begin(), certs.end(),
                       [&](const std::string &c) { return inspect_certificate(c).sha256 == sha256; })) {
        return false;
      }
    } catch (const std::exception &) {
      return false;
    }
  }
  return true;
}

}  // namespace

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

void SelfManagedCertificates::reconcile(Clock::time_point now) {
  const std::string secret_what = "Secret " + config_.secret_namespace + "/" + config_.secret_name;
  const std::string collection = "/api/v1/namespaces/" + config_.secret_namespace + "/secrets";
  const std::string secret_path = collection + "/" + config_.secret_name;
  auto deadline = [this] { return std::chrono::steady_clock::now() + config_.request_timeout; };
  auto log = [&](const char *message) {
    LogLine l(message);
    l.field("secret", config_.secret_namespace + "/" + config_.secret_name);
    return l;
  };

  for (int attempt = 0; attempt < 5; ++attempt) {
    // 1. What is there: the Secret, and each webhook configuration.
    SecretState state;
    ApiReply got = api_.request("GET", secret_path, "", "", deadline());
    if (got.status == 200) {
      state = decode_secret(got.body, secret_what);
    } else if (got.status != 404) {
      throw ClusterReadError("get " + secret_what + ": " + got.failure());
    }
    std::vector<std::optional<Json>> configs;
    long long config_generation = 0;
    for (const auto &ref : config_.webhook_configs) {
      ApiReply r = api_.request("GET", ref.api_path(), "", "", deadline());
      const bool was_missing =
          std::find(missing_configs_.begin(), missing_configs_.end(), ref.name) != missing_configs_.end();
      if (r.status == 404) {
        if (!was_missing) {
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
      if (!doc.is_object() || !doc.contains("metadata")) {
        throw ClusterReadError("get " + ref.describe() + ": the answer is not a webhook configuration");
      }
      if (was_missing)
        missing_configs_.erase(std::find(missing_configs_.begin(), missing_configs_.end(), ref.name));
      config_generation =
          std::max(config_generation, parse_generation(annotation(doc["metadata"], kBundleGeneration)));
      configs.emplace_back(std::move(doc));
    }

    // 2. What is due.
    std::vector<std::string> notes;
    std::optional<KeyPair> signer =
        usable_pair(state, secret_keys::kSignerCert, secret_keys::kSignerKey, true, now);
    std::optional<KeyPair> next =
        usable_pair(state, secret_keys::kNextSignerCert, secret_keys::kNextSignerKey, true, now);
    std::optional<KeyPair> serving =
        usable_pair(state, secret_keys::kServingCert, secret_keys::kServingKey, false, now);
    const std::string stored_bundle = state.data[secret_keys::kTrustBundle];
    bool dropped = false;
    Bundle bundle = live_bundle(stored_bundle, now, dropped);
    if (dropped) notes.push_back("expired CA left out of the trust bundle");

    if (!next && (!signer || signer->facts.remaining_fraction(now) < kRenewFraction)) {
      const PemPair ca = make_ca("hci-admission CA " + format_utc(now), config_.ca_validity, now);
      next = KeyPair{ca, inspect_certificate(ca.cert)};
      notes.push_back(signer ? "a new CA joins the trust bundle; it signs once every webhook trusts it"
                             : "a new CA is made");
    }
    if (next) {
      const bool trusted = holds(bundle, next->facts.sha256) &&
                           std::all_of(configs.begin(), configs.end(), [&](const auto &c) {
                             return !c || config_trusts(*c, next->facts.sha256);
                           });
      const bool waited = now - state.trust_updated_at >= config_.trust_delay;
      // Without a signer and a serving certificate nothing is served that
      // a switch could break: the new CA signs at once.
      if ((trusted && waited) || (!signer && !serving)) {
        signer = next;
        next.reset();
        notes.push_back("the new CA signs serving certificates from now on");
      }
    }
    if (signer) {
      const bool due = !serving || serving->facts.remaining_fraction(now) < kRenewFraction ||
                       serving->facts.dns_names != config_.dns_names ||
                       !signed_by(serving->pem.cert, signer->pem.cert);
      if (due) {
        const PemPair issued =
            issue_serving_certificate(signer->pem, config_.dns_names, config_.cert_validity, now);
        notes.push_back(serving ? "serving certificate renewed" : "serving certificate issued");
        serving = KeyPair{issued, inspect_certificate(issued.cert)};
      }
    }
    bool grew = false;
    for (const auto *ca : {signer ? &*signer : nullptr, next ? &*next : nullptr}) {
      if (ca && !holds(bundle, ca->facts.sha256)) {
        bundle.emplace_back(ca->facts.sha256, ca->pem.cert);
        grew = true;
      }
    }
    std::string bundle_pem;
    for (const auto &e : bundle) bundle_pem += e.second;
    const bool bundle_changed = bundle_pem != stored_bundle || !state.exists;

    if (!notes.empty() || bundle_changed) {
      // 3. Write the Secret; a conflict means another replica wrote first:
      // start over from what it wrote.
      auto &d = state.data;
      d[secret_keys::kTrustBundle] = bundle_pem;
      if (signer) {
        d[secret_keys::kSignerCert] = signer->pem.cert;
        d[secret_keys::kSignerKey] = signer->pem.key;
      }
      if (next) {
        d[secret_keys::kNextSignerCert] = next->pem.cert;
        d[secret_keys::kNextSignerKey] = next->pem.key;
      } else {
        d.erase(secret_keys::kNextSignerCert);
        d.erase(secret_keys::kNextSignerKey);
      }
      if (serving) {
        d[secret_keys::kServingCert] = serving->pem.cert;
        d[secret_keys::kServingKey] = serving->pem.key;
      }
      Json metadata = state.metadata;
      metadata["name"] = config_.secret_name;
      metadata["namespace"] = config_.secret_namespace;
      metadata["labels"]["app.kubernetes.io/managed-by"] = "hci-admission";
      const long long generation =
          bundle_changed ? std::max(state.generation, config_generation) + 1 : state.generation;
      metadata["annotations"][kBundleGeneration] = std::to_string(generation);
      if (grew) metadata["annotations"][kTrustUpdatedAt] = format_utc(now);
      Json data = Json::object();
      for (const auto &[k, v] : d) data[k] = base64_encode(v);
      const Json secret = {{"apiVersion", "v1"},
                           {"kind", "Secret"},
                           {"metadata", metadata},
                           {"type", "kubernetes.io/tls"},
                           {"data", data}};
      ApiReply put = state.exists
                         ? api_.request("PUT", secret_path, secret.dump(), "application/json", deadline())
                         : api_.request("POST", collection, secret.dump(), "application/json", deadline());
      if (put.status == 409) continue;
      if (put.status != 200 && put.status != 201) {
        throw ClusterReadError((state.exists ? "update " : "create ") + secret_what + ": " + put.failure());
      }
      for (const auto &n : notes) log(n.c_str()).field("generation", generation).info();
      if (serving) {
        log("serving certificate in the Secret")
            .field("names", serving->facts.dns_names.empty() ? "" : serving->facts.dns_names.front())
            .field("not_after", format_utc(serving->facts.not_after))
            .info();
      }
      ++renewals_;
      state = decode_secret(put.body, secret_what);
    }

    // 4. The trust bundle into each webhook configuration, unless one
    // already carries a newer generation (then this replica is behind).
    const std::string ca_bundle = base64_encode(state.data[secret_keys::kTrustBundle]);
    const std::string generation = std::to_string(state.generation);
    for (size_t i = 0; i < configs.size(); ++i) {
      if (!configs[i]) continue;
      const Json &c = *configs[i];
      const std::string seen = annotation(c["metadata"], kBundleGeneration);
      if (parse_generation(seen) > state.generation) continue;
      Json ops = Json::array();
      if (c.contains("webhooks") && c["webhooks"].is_array()) {
        for (size_t w = 0; w < c["webhooks"].size(); ++w) {
          const Json &hook = c["webhooks"][w];
          const std::string at = "/webhooks/" + std::to_string(w);
          // No clientConfig: the API server always sets it; not ours to add.
          if (!hook.contains("clientConfig") || hook["clientConfig"].value("caBundle", "") == ca_bundle)
            continue;
          ops.push_back({{"op", "test"}, {"path", at + "/name"}, {"value", hook.value("name", "")}});
          ops.push_back({{"op", "add"}, {"path", at + "/clientConfig/caBundle"}, {"value", ca_bundle}});
        }
      }
      if (ops.empty() && seen == generation) continue;
      const std::string annotation_path = "/metadata/annotations/" + escape_pointer_token(kBundleGeneration);
      if (!seen.empty()) {
        ops.push_back({{"op", "test"}, {"path", annotation_path}, {"value", seen}});
        ops.push_back({{"op", "replace"}, {"path", annotation_path}, {"value", generation}});
      } else if (c["metadata"].contains("annotations")) {
        ops.push_back({{"op", "add"}, {"path", annotation_path}, {"value", generation}});
      } else {
        ops.push_back(
            {{"op", "add"}, {"path", "/metadata/annotations"}, {"value", {{kBundleGeneration, generation}}}});
      }
      const auto &ref = config_.webhook_configs[i];
      ApiReply r =
          api_.request("PATCH", ref.api_path(), ops.dump(), "application/json-patch+json", deadline());
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
          .field("generation", generation)
          .info();
    }

    // 5. The serving certificate where the server loads it from.
    const std::string dir = config_.cert_dir + "/";
    if (read_file_if_present(dir + "ca.crt").value_or("") != state.data[secret_keys::kTrustBundle]) {
      write_file_atomically(dir + "ca.crt", state.data[secret_keys::kTrustBundle], 0644);
    }
    if (read_file_if_present(dir + "tls.crt").value_or("") != state.data[secret_keys::kServingCert] ||
        read_file_if_present(dir + "tls.key").value_or("") != state.data[secret_keys::kServingKey]) {
      write_file_atomically(dir + "tls.key", state.data[secret_keys::kServingKey], 0600);
      write_file_atomically(dir + "tls.crt", state.data[secret_keys::kServingCert], 0644);
    }
    ++passes_;
    return;
  }
  throw ClusterReadError(secret_what + " kept changing while being updated (5 conflicts in a row)");
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
