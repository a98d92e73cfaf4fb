#include "hci_admission/kube/kube_client.hpp"
#include "hci_admission/common/base64.hpp"
#include "hci_admission/kube/cluster_access.hpp"
#include "hci_admission/kube/kubeconfig.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>

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

// --- $KUBECONFIG with several files, merged as kubectl merges them
// (issue 24: only the first file was read). test/e2e/kubectl_plugin.sh
// holds the same rules to the real kubectl.

namespace {

// $KUBECONFIG set for one test, restored after it.
class KubeconfigEnv {
 public:
  explicit KubeconfigEnv(const std::string &value) {
    if (const char *old = std::getenv("KUBECONFIG")) old_ = old;
    setenv("KUBECONFIG", value.c_str(), 1);
  }
  ~KubeconfigEnv() {
    if (old_) {
      setenv("KUBECONFIG", old_->c_str(), 1);
    } else {
      unsetenv("KUBECONFIG");
    }
  }
  KubeconfigEnv(const KubeconfigEnv &) = delete;
  KubeconfigEnv &operator=(const KubeconfigEnv &) = delete;

 private:
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("$KUBECONFIG is split as kubectl splits it", "[kubeconfig]") {
  using Paths = std::vector<std::string>;
  CHECK(kubeconfig_paths("/a/config") == Paths{"/a/config"});
  CHECK(kubeconfig_paths("a::b:") == Paths{"a", "b"});
  CHECK(kubeconfig_paths("a:b:a") == Paths{"a", "b"});  // named twice: read once, where first named
  CHECK(kubeconfig_paths("").empty());
  CHECK(kubeconfig_paths(":").empty());
}

TEST_CASE("kubeconfigs merge by name, the first file winning each entry whole", "[kubeconfig]") {
  const Json first = parse_kubeconfig(R"(
clusters:
- name: shared
  cluster: {server: https://first}
contexts:
- name: ctx
  context: {cluster: shared, user: u}
users:
- name: u
  user: {tokenFile: /first/token}
current-context: ""
)");
  const Json second = parse_kubeconfig(R"(
clusters:
- name: shared
  cluster: {server: https://second, certificate-authority: /second/ca.crt}
- name: only-second
  cluster: {server: https://only-second}
contexts:
- name: ctx
  context: {cluster: only-second, user: v}
- name: other
  context: {cluster: shared, user: v}
users:
- name: v
  user: {token: second-token}
- name: u
  user: {token: not-this-one}
current-context: other
preferences: {colors: true}
)");
  const Json merged = merge_kubeconfigs({first, second});
  REQUIRE(merged["clusters"].size() == 2);
  // Whole: the first file's "shared" has no CA, and gets none from the second.
  CHECK(merged["clusters"][0] == Json{{"name", "shared"}, {"cluster", {{"server", "https://first"}}}});
  CHECK(merged["clusters"][1]["name"] == "only-second");
  REQUIRE(merged["contexts"].size() == 2);
  CHECK(merged["contexts"][0]["context"]["cluster"] == "shared");
  CHECK(merged["contexts"][1]["name"] == "other");
  REQUIRE(merged["users"].size() == 2);
  CHECK(merged["users"][0] == Json{{"name", "u"}, {"user", {{"tokenFile", "/first/token"}}}});
  CHECK(merged["users"][1]["name"] == "v");
  // The first file's "" is not set: the second's current-context wins.
  CHECK(merged["current-context"] == "other");
  CHECK(merged["preferences"]["colors"] == "true");
  // The other way round, the second file's entries win.
  const Json reversed = merge_kubeconfigs({second, first});
  CHECK(reversed["clusters"][0]["cluster"]["server"] == "https://second");
  CHECK(reversed["current-context"] == "other");
  CHECK(merge_kubeconfigs({}) ==
        Json{{"clusters", Json::array()}, {"users", Json::array()}, {"contexts", Json::array()}});
}

TEST_CASE("each file's relative paths are its own folder's, and a name given twice in one file is refused",
          "[kubeconfig]") {
  TempDir dir;
  mkdir((dir.path + "/one").c_str(), 0700);
  mkdir((dir.path + "/two").c_str(), 0700);
  dir.write("one/ca.crt", "CA OF ONE");
  dir.write("two/token", "token-of-two\n");
  // The cluster is the first file's, the context and user the second's:
  // each file named relative to the file that names it.
  const std::string one = dir.write("one/config", R"(
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", certificate-authority: ca.crt}
users:
- name: u
  user: {client-certificate: /abs/cert, client-key: key}
)");
  const std::string two = dir.write("two/config", R"(
current-context: x
contexts:
- name: x
  context: {cluster: c, user: v}
- name: y
  context: {cluster: c, user: u}
users:
- name: v
  user: {tokenFile: token}
)");
  const Json read = read_kubeconfig_file(one);
  CHECK(read["clusters"][0]["cluster"]["certificate-authority"] == dir.path + "/one/ca.crt");
  CHECK(read["users"][0]["user"]["client-certificate"] == "/abs/cert");
  CHECK(read["users"][0]["user"]["client-key"] == dir.path + "/one/key");

  const KubeCredentials c = KubeCredentials::from_kubeconfigs({one, two});
  CHECK(c.server == "https://127.0.0.1:6443");
  CHECK(c.ca_pem == "CA OF ONE");
  CHECK(c.token_file == dir.path + "/two/token");
  CHECK(c.source == "kubeconfig " + one + ":" + two + ", context x");
  CHECK_THROWS_WITH(
      KubeCredentials::from_kubeconfigs({one, two}, "y"),
      Catch::Contains("kubeconfig " + one + ":" + two + ": cannot read client certificate /abs/cert"));
  CHECK_THROWS_WITH(KubeCredentials::from_kubeconfigs({one}), Catch::Contains("has no current-context"));

  const std::string twice =
      dir.write("twice", "clusters:\n- name: c\n  cluster: {server: https://a}\n- name: c\n  cluster: {}\n");
  CHECK_THROWS_WITH(read_kubeconfig_file(twice), Catch::Contains("clusters names \"c\" twice"));
  CHECK_THROWS_WITH(KubeCredentials::from_kubeconfigs({two, twice}), Catch::Contains(twice));
}

TEST_CASE("$KUBECONFIG: every file it lists that exists, merged; one that does not, skipped",
          "[kubeconfig]") {
  TempDir dir;
  const std::string first = dir.write("first", R"(
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:7001"}
)");
  const std::string second = dir.write("second", R"(
current-context: x
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:7002"}
contexts:
- name: x
  context: {cluster: c, user: u}
users:
- name: u
  user: {token: t}
)");
  ClusterAccess access;
  {
    KubeconfigEnv env(dir.path + "/missing:" + first + "::" + second);
    const auto view = open_kube_api(access);
    REQUIRE(view != nullptr);
    CHECK_THAT(view->describe(), Catch::Contains("https://127.0.0.1:7001") &&
                                     Catch::Contains("kubeconfig " + first + ":" + second + ", context x"));
    // --kubeconfig is one file, $KUBECONFIG or not.
    access.kubeconfig = second;
    CHECK_THAT(open_kube_api(access)->describe(), Catch::Contains("https://127.0.0.1:7002"));
    access.kubeconfig.clear();
  }
  {
    KubeconfigEnv env(dir.path + "/missing:" + dir.path + "/also-missing");
    CHECK_THROWS_WITH(open_kube_api(access),
                      Catch::Contains("$KUBECONFIG (" + dir.path + "/missing:" + dir.path +
                                      "/also-missing) names no file that exists"));
  }
  {
    KubeconfigEnv env(dir.path + ":" + second);  // a folder is not skipped: kubectl cannot read it either
    CHECK_THROWS_WITH(open_kube_api(access), Catch::Contains("cannot read kubeconfig " + dir.path));
  }
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
