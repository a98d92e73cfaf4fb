// Label selectors with Kubernetes' semantics, as PodDisruptionBudgets use
// them (k8s.io/apimachinery labels.Selector).
#include "kube_selectors.hpp"
#include "policy_util.hpp"

#include <catch2/catch.hpp>

using namespace hci_admission;
using hci_admission::webhooks::KubeLabelSelector;

TEST_CASE("label selectors select as Kubernetes does", "[selectors]") {
  const Json app_a = {{"app", "a"}, {"tier", "web"}};
  const Json app_b = {{"app", "b"}};
  const Json none = nullptr;
  struct Row {
    const char *what;
    Json selector;
    bool a, b, unlabelled;
  };
  const std::vector<Row> rows = {
      {"an empty selector selects everything", Json::object(), true, true, true},
      {"a null selector selects nothing", nullptr, false, false, false},
      {"matchLabels", {{"matchLabels", {{"app", "a"}}}}, true, false, false},
      {"matchLabels, every pair", {{"matchLabels", {{"app", "a"}, {"tier", "db"}}}}, false, false, false},
      {"In",
       {{"matchExpressions", {{{"key", "app"}, {"operator", "In"}, {"values", {"a", "c"}}}}}},
       true,
       false,
       false},
      {"NotIn holds without the label",
       {{"matchExpressions", {{{"key", "app"}, {"operator", "NotIn"}, {"values", {"a"}}}}}},
       false,
       true,
       true},
      {"Exists", {{"matchExpressions", {{{"key", "tier"}, {"operator", "Exists"}}}}}, true, false, false},
      {"DoesNotExist",
       {{"matchExpressions", {{{"key", "tier"}, {"operator", "DoesNotExist"}}}}},
       false,
       true,
       true},
      {"labels and expressions together, ANDed",
       {{"matchLabels", {{"app", "a"}}}, {"matchExpressions", {{{"key", "tier"}, {"operator", "Exists"}}}}},
       true,
       false,
       false},
  };
  for (const auto &row : rows) {
    INFO(row.what);
    const auto s = KubeLabelSelector::from_json(row.selector, "spec.selector");
    CHECK(s.matches(app_a) == row.a);
    CHECK(s.matches(app_b) == row.b);
    CHECK(s.matches(none) == row.unlabelled);
  }
  CHECK(KubeLabelSelector::from_json(Json::object(), "s").selects_everything());
  CHECK(KubeLabelSelector::from_json(nullptr, "s").selects_nothing());
}

TEST_CASE("selectors Kubernetes would refuse are refused, naming where", "[selectors]") {
  auto error_of = [](const Json &selector) {
    try {
      KubeLabelSelector::from_json(selector, "spec.selector");
    } catch (const webhooks::ShapeError &e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto expression = [](Json e) { return Json{{"matchExpressions", {std::move(e)}}}; };
  CHECK_THAT(error_of(expression({{"key", "a"}, {"operator", "Like"}, {"values", {"x"}}})),
             Catch::Contains("unknown operator \"Like\""));
  CHECK_THAT(error_of(expression({{"key", "a"}, {"operator", "In"}})), Catch::Contains("need values"));
  CHECK_THAT(error_of(expression({{"key", "a"}, {"operator", "Exists"}, {"values", {"x"}}})),
             Catch::Contains("take none"));
  CHECK_THAT(error_of(expression({{"key", ""}, {"operator", "Exists"}})), Catch::Contains("key is empty"));
  CHECK_THAT(error_of(expression({{"key", "a"}, {"operator", "In"}, {"values", {1}}})),
             Catch::Contains("must be a string"));
  CHECK_THAT(error_of({{"matchLabels", {{"app", 1}}}}), Catch::Contains("spec.selector.matchLabels.app"));
  CHECK_THAT(error_of("app=a"), Catch::Contains("spec.selector must be an object"));
  CHECK_THAT(error_of({{"matchExpressions", {"x"}}}), Catch::Contains("spec.selector.matchExpressions[0]"));
}
