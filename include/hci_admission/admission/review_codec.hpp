// AdmissionReview decoding and encoding for admission.k8s.io/v1 and v1beta1.
#pragma once

#include "hci_admission/admission/policy.hpp"
#include "hci_admission/json/json_scan.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace hci_admission {

// A review that cannot be answered: the message says what is wrong with it.
class ReviewError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct DecodedReview {
  std::string api_version;  // echoed in the response
  AdmissionRequest request;
  // The parsed body, kept while the request's views point into it.
  std::unique_ptr<ParsedJson> document;
};

// What of the objects in a review to parse.
struct ObjectFields {
  FieldMask object = FieldMask::everything();
  FieldMask old_object = FieldMask::everything();
  // Views (request.object_view, old_object_view) instead of trees; the
  // masks must then outlive the DecodedReview.
  bool views = false;
  // request.userInfo (username, groups) read; otherwise left empty.
  bool user_info = true;
};

// Throws ReviewError for malformed JSON, an unknown apiVersion or kind, a
// review without request or request.uid, or a field of the wrong type.
// The whole body is checked; only the fields asked for are parsed.
// With `own_parser`, the document (views) may be read on another thread:
// it is parsed with a parser of its own instead of the thread's.
// `readable_after`: bytes that may be read past the body's end (what
// HttpRequestView::body_padding says); with kJsonPadding of them the body
// is parsed in place.
DecodedReview decode_review(std::string_view body, const ObjectFields &fields = ObjectFields(),
                            bool own_parser = false, size_t readable_after = 0);

// The response AdmissionReview for `request_api_version` and `uid`.
std::string encode_review(const std::string &request_api_version, const std::string &uid,
                          const Decision &decision);

// Keeps warnings within what kube-apiserver passes on: no control
// characters, each at most `max_each` bytes, all together at most
// `max_total` bytes; what does not fit is summarised in a last warning.
std::vector<std::string> limit_warnings(const std::vector<std::string> &warnings, size_t max_each = 120,
                                        size_t max_total = 4096);

}  // namespace hci_admission
