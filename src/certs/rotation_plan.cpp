#include "hci_admission/certs/rotation_plan.hpp"

#include "hci_admission/certs/self_managed_certs.hpp"
#include "hci_admission/common/base64.hpp"
#include "hci_admission/common/text.hpp"
#include "hci_admission/json/json_write.hpp"
#include "hci_admission/obs/logging.hpp"

#include <algorithm>
#include <ctime>
#include <stdexcept>

namespace hci_admission {
namespace {

using Clock = std::chrono::system_clock;

// Renew when less than this part of a certificate's validity is left.
constexpr double kRenewFraction = 1.0 / kRenewDivisor;

struct KeyPair {
  PemPair pem;
  CertificateFacts facts;
};

std::string annotation(const Json &metadata, const char *key) {
  auto a = metadata.find("annotations");
  if (a == metadata.end() || !a->is_object()) return "";
  auto v = a->find(key);
  return v != a->end() && v->is_string() ? v->get<std::string>() : "";
}

long long parse_generation(const std::string &text) {
  uint64_t n = 0;
  return parse_decimal(text, n) ? static_cast<long long>(n) : 0;
}

Clock::time_point parse_utc(const std::string &text) {
  std::tm tm{};
  if (strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) return Clock::time_point{};
  return Clock::from_time_t(timegm(&tm));
}

}  // namespace

const std::string &SecretState::value(const std::string &key) const {
  static const std::string kNone;
  const auto it = data.find(key);
  return it == data.end() ? kNone : it->second;
}

SecretState decode_secret(const std::string &body) {
  Json doc = Json::parse(body, nullptr, false);
  if (!doc.is_object() || !doc.contains("metadata") || !doc["metadata"].is_object()) {
    throw std::invalid_argument("the answer is not a Secret");
  }
  SecretState s;
  s.exists = true;
  s.metadata = doc["metadata"];
  if (doc.contains("data") && doc["data"].is_object()) {
    for (auto &[k, v] : doc["data"].items()) {
      if (!v.is_string()) continue;
      try {
        s.data[std::string(k)] = base64_decode(v.get<std::string>());
      } catch (const std::exception &) {
        // Left out: an unreadable value is treated as missing, and rebuilt.
      }
    }
  }
  s.generation = parse_generation(annotation(s.metadata, kBundleGeneration));
  s.trust_updated_at = parse_utc(annotation(s.metadata, kTrustUpdatedAt));
  return s;
}

long long bundle_generation(const Json &webhook_config) {
  auto meta = webhook_config.find("metadata");
  return meta == webhook_config.end() ? 0 : parse_generation(annotation(*meta, kBundleGeneration));
}

namespace {

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

namespace {

// The keys a plan works on, as the Secret holds them and as they become.
struct Keys {
  std::optional<KeyPair> signer;   // signs serving certificates
  std::optional<KeyPair> next;     // a new CA waiting to be trusted
  std::optional<KeyPair> serving;  // the serving certificate
  Bundle bundle;                   // the CAs the API server should trust
  bool bundle_grew = false;
  std::vector<std::string> notes;
};

Keys read_keys(const SecretState &secret, const std::string &stored_bundle, Clock::time_point now) {
  Keys k;
  k.signer = usable_pair(secret, secret_keys::kSignerCert, secret_keys::kSignerKey, true, now);
  k.next = usable_pair(secret, secret_keys::kNextSignerCert, secret_keys::kNextSignerKey, true, now);
  k.serving = usable_pair(secret, secret_keys::kServingCert, secret_keys::kServingKey, false, now);
  bool dropped = false;
  k.bundle = live_bundle(stored_bundle, now, dropped);
  if (dropped) k.notes.emplace_back("expired CA left out of the trust bundle");
  return k;
}

// A new CA when the signer is missing or has a third left; it signs once
// trusted everywhere and the trust delay has passed.
void rotate_ca(Keys &k, const SelfManagedCertsConfig &config, const SecretState &secret,
               const std::vector<std::optional<Json>> &configs, Clock::time_point now) {
  if (!k.next && (!k.signer || k.signer->facts.remaining_fraction(now) < kRenewFraction)) {
    const PemPair ca = make_ca("hci-admission CA " + format_utc(now), config.ca_validity, now);
    k.next = KeyPair{ca, inspect_certificate(ca.cert)};
    k.notes.emplace_back(k.signer ? "a new CA joins the trust bundle; it signs once every webhook trusts it"
                                  : "a new CA is made");
  }
  if (!k.next) return;
  const std::string &sha256 = k.next->facts.sha256;
  const bool trusted =
      holds(k.bundle, sha256) && std::all_of(configs.begin(), configs.end(),
                                             [&](const auto &c) { return !c || config_trusts(*c, sha256); });
  const bool waited = now - secret.trust_updated_at >= config.trust_delay;
  // Without a signer and a serving certificate nothing is served that a
  // switch could break: the new CA signs at once.
  if ((trusted && waited) || (!k.signer && !k.serving)) {
    k.signer = std::move(k.next);
    k.next.reset();
    k.notes.emplace_back("the new CA signs serving certificates from now on");
  }
}

// A serving certificate when there is none, a third is left, the names
// changed, or another CA signs now.
void renew_serving(Keys &k, const SelfManagedCertsConfig &config, Clock::time_point now) {
  if (!k.signer) return;
  const bool due = !k.serving || k.serving->facts.remaining_fraction(now) < kRenewFraction ||
                   k.serving->facts.dns_names != config.dns_names ||
                   !signed_by(k.serving->pem.cert, k.signer->pem.cert);
  if (!due) return;
  const PemPair issued =
      issue_serving_certificate(k.signer->pem, config.dns_names, config.cert_validity, now);
  k.notes.emplace_back(k.serving ? "serving certificate renewed" : "serving certificate issued");
  k.serving = KeyPair{issued, inspect_certificate(issued.cert)};
}

// Every CA in use joins the trust bundle.
std::string complete_bundle(Keys &k) {
  for (const auto *ca : {k.signer ? &*k.signer : nullptr, k.next ? &*k.next : nullptr}) {
    if (ca != nullptr && !holds(k.bundle, ca->facts.sha256)) {
      k.bundle.emplace_back(ca->facts.sha256, ca->pem.cert);
      k.bundle_grew = true;
    }
  }
  std::string pem;
  for (const auto &e : k.bundle) pem += e.second;
  return pem;
}

Json secret_object(const SelfManagedCertsConfig &config, const SecretState &secret, const Keys &k,
                   const std::string &bundle_pem, long long generation, Clock::time_point now) {
  std::map<std::string, std::string> d = secret.data;
  d[secret_keys::kTrustBundle] = bundle_pem;
  auto put = [&d](const char *cert_key, const char *key_key, const std::optional<KeyPair> &pair) {
    if (pair) {
      d[cert_key] = pair->pem.cert;
      d[key_key] = pair->pem.key;
    }
  };
  put(secret_keys::kSignerCert, secret_keys::kSignerKey, k.signer);
  put(secret_keys::kServingCert, secret_keys::kServingKey, k.serving);
  d.erase(secret_keys::kNextSignerCert);
  d.erase(secret_keys::kNextSignerKey);
  put(secret_keys::kNextSignerCert, secret_keys::kNextSignerKey, k.next);
  Json metadata = secret.metadata;
  metadata["name"] = config.secret_name;
  metadata["namespace"] = config.secret_namespace;
  metadata["labels"]["app.kubernetes.io/managed-by"] = "hci-admission";
  metadata["annotations"][kBundleGeneration] = std::to_string(generation);
  if (k.bundle_grew) metadata["annotations"][kTrustUpdatedAt] = format_utc(now);
  Json data = Json::object();
  for (const auto &[key, value] : d) data[key] = base64_encode(value);
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", metadata},
          {"type", "kubernetes.io/tls"},
          {"data", data}};
}

}  // namespace

SecretPlan plan_secret(const SelfManagedCertsConfig &config, const SecretState &secret,
                       const std::vector<std::optional<Json>> &configs, Clock::time_point now) {
  const std::string &stored_bundle = secret.value(secret_keys::kTrustBundle);
  Keys k = read_keys(secret, stored_bundle, now);
  rotate_ca(k, config, secret, configs, now);
  renew_serving(k, config, now);
  const std::string bundle_pem = complete_bundle(k);
  const bool bundle_changed = bundle_pem != stored_bundle || !secret.exists;

  SecretPlan plan;
  plan.generation = secret.generation;
  if (k.notes.empty() && !bundle_changed) return plan;
  if (bundle_changed) {
    // Past every generation seen, the webhook configurations' too: a
    // replica that was behind never reuses a number.
    long long seen = secret.generation;
    for (const auto &c : configs) {
      if (c) seen = std::max(seen, bundle_generation(*c));
    }
    plan.generation = seen + 1;
  }
  plan.secret = secret_object(config, secret, k, bundle_pem, plan.generation, now);
  plan.notes = std::move(k.notes);
  if (k.serving) plan.serving = k.serving->facts;
  return plan;
}

std::optional<Json> plan_ca_bundle_patch(const Json &webhook_config, const std::string &bundle_pem,
                                         long long generation) {
  const Json &c = webhook_config;
  const std::string seen = annotation(c["metadata"], kBundleGeneration);
  if (parse_generation(seen) > generation) return std::nullopt;
  const std::string ca_bundle = base64_encode(bundle_pem);
  const std::string wanted = std::to_string(generation);
  Json ops = Json::array();
  if (c.contains("webhooks") && c["webhooks"].is_array()) {
    for (size_t w = 0; w < c["webhooks"].size(); ++w) {
      const Json &hook = c["webhooks"][w];
      const std::string at = "/webhooks/" + std::to_string(w);
      // No clientConfig: the API server always sets it; not ours to add.
      if (!hook.contains("clientConfig") || hook["clientConfig"].value("caBundle", "") == ca_bundle) continue;
      ops.push_back({{"op", "test"}, {"path", at + "/name"}, {"value", hook.value("name", "")}});
      ops.push_back({{"op", "add"}, {"path", at + "/clientConfig/caBundle"}, {"value", ca_bundle}});
    }
  }
  if (ops.empty() && seen == wanted) return std::nullopt;
  const std::string annotation_path = "/metadata/annotations/" + escape_pointer_token(kBundleGeneration);
  if (!seen.empty()) {
    ops.push_back({{"op", "test"}, {"path", annotation_path}, {"value", seen}});
    ops.push_back({{"op", "replace"}, {"path", annotation_path}, {"value", wanted}});
  } else if (c["metadata"].contains("annotations")) {
    ops.push_back({{"op", "add"}, {"path", annotation_path}, {"value", wanted}});
  } else {
    ops.push_back(
        {{"op", "add"}, {"path", "/metadata/annotations"}, {"value", {{kBundleGeneration, wanted}}}});
  }
  return ops;
}

}  // namespace hci_admission
