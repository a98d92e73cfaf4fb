#include "hci_admission/kube/kube_client.hpp"
#include "hci_admission/common/base64.hpp"
#include "hci_admission/kube/kubeconfig.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>
#include <cstdio>
#include <fstream>

using namespace hci_admission;

namespace {

// A temporary folder removed at the end of the test.
struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/kube-client-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
  std::string write(const std::string &name, const std::string &text) const {
    std::ofstream(path + "/" + name) << text;
    return path + "/" + name;
  }
  std::string path;
};

const char *kKubectlStyle = R"(apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
    server: https://10.0.0.1:6443   # the VIP
  name: local
- cluster:
    server: "https://other:443"
  name: 'other'
contexts:
- context:
    cluster: local
    user: admin
  name: local
- name: other
  context:
    cluster: other
    user: admin
current-context: local
kind: Config
preferences: {}
users:
- name: admin
  user:
    token: 'it''s-a-token'
)";

}  // namespace

TEST_CASE("reads kubeconfig YAML as kubectl writes it", "[kubeconfig]") {
  const Json doc = parse_kubeconfig(kKubectlStyle);
  CHECK(doc["current-context"] == "local");
  REQUIRE(doc["clusters"].size() == 2);
  CHECK(doc["clusters"][0]["cluster"]["server"] == "https://10.0.0.1:6443");
  CHECK(doc["clusters"][1]["cluster"]["server"] == "https://other:443");
  CHECK(doc["clusters"][1]["name"] == "other");
  CHECK(doc["contexts"][1]["context"]["cluster"] == "other");
  CHECK(doc["preferences"] == Json::object());
  CHECK(doc["users"][0]["user"]["token"] == "it's-a-token");
}

TEST_CASE("reads any YAML a kubeconfig may be written in, and JSON", "[kubeconfig]") {
  CHECK(parse_kubeconfig(R"({"current-context": "x"})")["current-context"] == "x");
  // Flow style, anchors and aliases, block scalars: the hand-written
  // subset this replaced refused each of them.
  const Json flow = parse_kubeconfig("clusters: [{name: a, cluster: {server: 'https://a:6443'}}]\n");
  CHECK(flow["clusters"][0]["cluster"]["server"] == "https://a:6443");
  const Json aliased = parse_kubeconfig(
      "base: &user\n  token: t\nusers:\n- name: a\n  user: *user\n- name: b\n  user: *user\n");
  CHECK(aliased["users"][1]["user"]["token"] == "t");
  CHECK(parse_kubeconfig("a: |\n  x\n  y\n")["a"] == "x\ny\n");
  CHECK(parse_kubeconfig("a: >-\n  x\n  y\n")["a"] == "x y");
  // Every scalar is text, as kubeconfig values are; ~ and nothing are null.
  const Json scalars = parse_kubeconfig("a: true\nb: 443\nc: ~\nd:\n");
  CHECK(scalars["a"] == "true");
  CHECK(scalars["b"] == "443");
  CHECK(scalars["c"].is_null());
  CHECK(scalars["d"].is_null());
  CHECK(parse_kubeconfig("") == Json::object());
}

TEST_CASE("a kubeconfig that is not YAML, or not a mapping, is refused with its line", "[kubeconfig]") {
  CHECK_THROWS_WITH(parse_kubeconfig("a: b\n   c: d\n"), Catch::StartsWith("line 2:"));
  CHECK_THROWS_WITH(parse_kubeconfig("a: [b\n"), Catch::StartsWith("line "));
  CHECK_THROWS_WITH(parse_kubeconfig("just words\n"), Catch::Contains("mapping"));
  CHECK_THROWS_WITH(parse_kubeconfig("- a\n- b\n"), Catch::Contains("mapping"));
  CHECK_THROWS_WITH(parse_kubeconfig("? [a]\n: b\n"), Catch::Contains("not a string"));
  // Aliases that multiply: 10 levels of 10 references each would be 10^10 values.
  std::string laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 10; ++i) {
    laughs += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) laughs += std::string(j ? ", " : "") + "*a" + std::to_string(i - 1);
    laughs += "]\n";
  }
  CHECK_THROWS_WITH(parse_kubeconfig(laughs), Catch::Contains("more than 100000 values"));
  // Nesting past yaml-cpp's depth guard is an error, not a stack overflow.
  CHECK_THROWS(parse_kubeconfig("a: " + std::string(100000, '[')));
}

TEST_CASE("base64 decoding", "[kubeconfig]") {
  CHECK(base64_decode("Zm9vYmFy") == "foobar");
  CHECK(base64_decode("Zm9vYg==") == "foob");
  CHECK(base64_decode("Zm9vYg") == "foob");
  CHECK(base64_decode("Zm9v\nYmFy\n") == "foobar");
  CHECK_THROWS(base64_decode("!!!!"));
}

TEST_CASE("a context written in flow style is read as YAML defines it", "[kubeconfig]") {
  TempDir dir;
  const std::string path = dir.write("config", R"(
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:6443
contexts:
- name: a
  context: {cluster: c, user: u}
current-context: a
users:
- {name: u, user: {token: flow-token}}
)");
  const KubeCredentials c = KubeCredentials::from_kubeconfig(path);
  CHECK(c.server == "https://127.0.0.1:6443");
  CHECK(c.token == "flow-token");
}

TEST_CASE("credentials: each way of naming them", "[kubeconfig]") {
  TempDir dir;
  dir.write("ca.pem", "CA PEM");
  dir.write("token", "t0ken\n");
  const std::string path = dir.write("config", R"(
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: ca.pem
contexts:
- name: a
  context:
    cluster: c
    user: u
- name: b
  context:
    cluster: c
    user: v
current-context: b
users:
- name: u
  user:
    tokenFile: token
- name: v
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
)");
  const KubeCredentials b = KubeCredentials::from_kubeconfig(path);
  CHECK(b.server == "https://127.0.0.1:6443");
  CHECK(b.ca_pem == "CA PEM");
  CHECK(b.client_cert_pem == "CERT");
  CHECK(b.client_key_pem == "KEY");
  CHECK_THAT(b.source, Catch::Contains("context b"));
  const KubeCredentials a = KubeCredentials::from_kubeconfig(path, "a");
  CHECK(a.token_file == dir.path + "/token");
  CHECK_THROWS_WITH(KubeCredentials::from_kubeconfig(path, "nope"), Catch::Contains("no context \"nope\""));
}

TEST_CASE("credentials that cannot be used are refused with the reason", "[kubeconfig]") {
  TempDir dir;
  auto config = [&](const std::string &cluster, const std::string &user) {
    return dir.write("config", "clusters:\n- name: c\n  cluster:\n" + cluster +
                                   "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n"
                                   "current-context: x\nusers:\n- name: u\n  user:\n" +
                                   user);
  };
  CHECK_THROWS_WITH(KubeCredentials::from_kubeconfig(config("    server: http://x:80\n", "    token: t\n")),
                    Catch::Contains("not an https:// URL"));
  CHECK_THROWS_WITH(KubeCredentials::from_kubeconfig(config(
                        "    server: https://x\n    insecure-skip-tls-verify: true\n", "    token: t\n")),
                    Catch::Contains("insecure-skip-tls-verify"));
  CHECK_THROWS_WITH(
      KubeCredentials::from_kubeconfig(config("    server: https://x\n", "    exec:\n      command: aws\n")),
      Catch::Contains("exec and auth-provider"));
  CHECK_THROWS_WITH(
      KubeCredentials::from_kubeconfig(config("    server: https://x\n", "    client-key-data: S0VZ\n")),
      Catch::Contains("needs its key and the key its certificate"));
  CHECK_THROWS_WITH(KubeCredentials::from_kubeconfig(dir.path + "/missing"),
                    Catch::Contains("cannot read kubeconfig"));
  CHECK_THROWS_WITH(KubeCredentials::from_kubeconfig(dir.write("empty", "kind: Config\n")),
                    Catch::Contains("no current-context"));
}

TEST_CASE("offline cluster state: lists and typed lists", "[cluster]") {
  TempDir dir;
  dir.write("a.json", R"({"apiVersion":"v1","kind":"List","items":[
      {"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}},
      {"apiVersion":"longhorn.io/v1beta1","kind":"Volume","metadata":{"name":"v1","namespace":"longhorn-system"},"spec":{"numberOfReplicas":1}}]})");
  dir.write("b.json", R"({"apiVersion":"longhorn.io/v1beta2","kind":"VolumeList","items":[
      {"metadata":{"name":"v2","namespace":"other"},"spec":{"numberOfReplicas":2}}]})");
  dir.write("ignored.txt", "not json");
  const auto view = StaticClusterView::from_path(dir.path);
  const Deadline later = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  CHECK(view->list({"", "v1", "nodes", "Node", ""}, {""}, later).size() == 1);
  const auto all = view->list({"longhorn.io", "v1beta2", "volumes", "Volume", ""}, {"/metadata/name"}, later);
  REQUIRE(all.size() == 2);  // any version of the group
  CHECK(all[0] == Json{{"metadata", {{"name", "v1"}}}});
  CHECK(view->list({"longhorn.io", "v1beta2", "volumes", "Volume", "other"}, {""}, later).size() == 1);
  dir.write("c.json", "{broken");
  CHECK_THROWS_WITH(StaticClusterView::from_path(dir.path), Catch::Contains("c.json"));
  CHECK_THROWS_WITH(StaticClusterView::from_path(dir.path + "/none"), Catch::Contains("does not exist"));
}
