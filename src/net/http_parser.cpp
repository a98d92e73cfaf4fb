// HTTP/1.1 request parsing and response writing (RFC 9112), strict where
// leniency has been used for request smuggling.
#include "hci_admission/net/https_server.hpp"

#include "hci_admission/common/text.hpp"
#include "hci_admission/json/json_write.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace hci_admission {
namespace {

// RFC 9110 tchar, as a table: the comparisons and switch took 10
// instructions a byte of every header name (callgrind).
constexpr std::array<bool, 256> kTchar = [] {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<size_t>(c)] = true;
  for (int c = '0'; c <= '9'; ++c) t[static_cast<size_t>(c)] = true;
  for (const char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!kTchar[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A chunk size: 1 to 15 hex digits.
bool parse_hex(std::string_view text, uint64_t &out) {
  if (text.empty() || text.size() > 15) return false;
  out = 0;
  for (char c : text) {
    const int d = (c >= '0' && c <= '9')   ? c - '0'
                  : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                           : -1;
    if (d < 0) return false;
    out = out * 16 + static_cast<uint64_t>(d);
  }
  return true;
}

const char *reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace

HttpParse::Status HttpRequestParser::fail(int status, std::string message) {
  p_.status = HttpParse::Status::Invalid;
  p_.error_status = status;
  p_.error = std::move(message);
  phase_ = Phase::Done;
  return p_.status;
}

HttpParse::Status HttpRequestParser::complete(std::string &buffer, size_t consumed) {
  p_.status = HttpParse::Status::Complete;
  p_.consumed = consumed;
  phase_ = Phase::Done;
  const auto view = [&](Span s) { return std::string_view(buffer).substr(s.at, s.size); };
  p_.method = view(method_);
  const std::string_view target = view(target_);
  const size_t question = target.find('?');
  p_.path = target.substr(0, question);
  p_.query = question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  p_.content_type = view(content_type_);
  p_.body_view = std::string_view(buffer).substr(
      p_.head_bytes, p_.chunked ? decoded_ : static_cast<size_t>(p_.content_length));
  return p_.status;
}

HttpParse::Status HttpRequestParser::parse(std::string &buffer) {
  switch (phase_) {
    case Phase::Done:
      return p_.status;
    case Phase::Head: {
      // Empty lines before a request are allowed (RFC 9112 2.2); they count
      // towards the header limit.
      while (buffer.size() - start_ >= 2 && buffer[start_] == '\r' && buffer[start_ + 1] == '\n') start_ += 2;
      if (scanned_ < start_) scanned_ = start_;
      const size_t header_end = buffer.find("\r\n\r\n", scanned_ >= start_ + 3 ? scanned_ - 3 : start_);
      if (header_end == std::string::npos) {
        scanned_ = buffer.size();
        // The blank line can no longer start within the limit.
        if (buffer.size() >= limits_.max_header_bytes + 4) {
          return fail(
              431, "request header section exceeds " + std::to_string(limits_.max_header_bytes) + " bytes");
        }
        return p_.status;
      }
      if (header_end > limits_.max_header_bytes) {
        return fail(431,
                    "request header section exceeds " + std::to_string(limits_.max_header_bytes) + " bytes");
      }
      if (parse_head(buffer, header_end) == HttpParse::Status::Invalid) return p_.status;
      p_.head_bytes = header_end + 4;
      if (p_.chunked) {
        raw_ = scanned_ = p_.head_bytes;
        phase_ = Phase::ChunkSize;
        return parse_chunked(buffer);
      }
      if (!p_.has_length) return complete(buffer, p_.head_bytes);
      if (p_.content_length > limits_.max_body_bytes) {
        return fail(413,
                    "request body exceeds the limit of " + std::to_string(limits_.max_body_bytes) + " bytes");
      }
      phase_ = Phase::Body;
    }
      [[fallthrough]];
    case Phase::Body:
      if (buffer.size() - p_.head_bytes < p_.content_length) return p_.status;
      return complete(buffer, p_.known_size());
    default:
      return parse_chunked(buffer);
  }
}

HttpParse::Status HttpRequestParser::parse_head(std::string_view in, size_t header_end) {
  const std::string_view head = in.substr(start_, header_end - start_);
  const size_t eol = head.find("\r\n");
  if (parse_request_line(in, head.substr(0, eol)) == HttpParse::Status::Invalid) return p_.status;
  const bool http10 = !p_.keep_alive;  // HTTP/1.0 starts without keep-alive
  bool content_type_seen = false;
  size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    if (next == std::string_view::npos) next = head.size();
    if (parse_header_field(in, head.substr(pos, next - pos), http10, content_type_seen) ==
        HttpParse::Status::Invalid) {
      return p_.status;
    }
    pos = next + 2;
  }
  if (p_.chunked && p_.has_length) return fail(400, "both Content-Length and Transfer-Encoding");
  p_.headers_complete = true;
  return p_.status;
}

// Request line: method SP request-target SP HTTP-version
HttpParse::Status HttpRequestParser::parse_request_line(std::string_view in, std::string_view line) {
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return fail(400, "malformed request line");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) return fail(400, "malformed request method");
  if (target.empty() || target.front() != '/') return fail(400, "request target must be a path");
  if (std::any_of(target.begin(), target.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
    return fail(400, "malformed request target");
  }
  if (version == "HTTP/1.1") {
    p_.keep_alive = true;
  } else if (version == "HTTP/1.0") {
    p_.keep_alive = false;
  } else if (version.rfind("HTTP/", 0) == 0) {
    return fail(505, "HTTP version " + std::string(version) + " not supported; use HTTP/1.1");
  } else {
    return fail(400, "malformed request line");
  }
  method_ = span_in(in, method);
  target_ = span_in(in, target);
  return p_.status;
}

HttpParse::Status HttpRequestParser::parse_header_field(std::string_view in, std::string_view field,
                                                        bool http10, bool &content_type_seen) {
  if (field.front() == ' ' || field.front() == '\t') return fail(400, "obsolete header line folding");
  const size_t colon = field.find(':');
  if (colon == std::string_view::npos) return fail(400, "malformed header line");
  const std::string_view name = field.substr(0, colon);
  if (!is_token(name)) return fail(400, "malformed header name");
  const std::string_view value = trim_ows(field.substr(colon + 1));
  // One pass (find_first_of calls memchr on the set for every byte).
  if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; })) {
    return fail(400, "control character in header value");
  }
  if (iequals(name, "content-length")) {
    uint64_t v = 0;
    if (!parse_decimal(value, v)) return fail(400, "malformed Content-Length");
    if (p_.has_length && v != p_.content_length) return fail(400, "conflicting Content-Length headers");
    p_.has_length = true;
    p_.content_length = v;
  } else if (iequals(name, "transfer-encoding")) {
    if (!iequals(value, "chunked") || p_.chunked) {
      return fail(501, "transfer encoding \"" + std::string(value) + "\" not supported");
    }
    p_.chunked = true;
  } else if (iequals(name, "content-type")) {
    if (!content_type_seen) content_type_ = span_in(in, value);
    content_type_seen = true;
  } else if (iequals(name, "connection")) {
    read_connection_tokens(value, http10);
  } else if (iequals(name, "expect")) {
    if (!iequals(value, "100-continue")) return fail(417, "unsupported expectation");
    p_.expect_continue = true;
  }
  return p_.status;
}

// Connection: close ends keep-alive; keep-alive starts it for HTTP/1.0.
void HttpRequestParser::read_connection_tokens(std::string_view value, bool http10) {
  size_t t = 0;
  while (t <= value.size()) {
    size_t comma = value.find(',', t);
    if (comma == std::string_view::npos) comma = value.size();
    const std::string_view token = trim_ows(value.substr(t, comma - t));
    if (iequals(token, "close")) p_.keep_alive = false;
    if (iequals(token, "keep-alive") && http10) p_.keep_alive = true;
    t = comma + 1;
  }
}

// Chunk framing is read where it stands and the data moved down to follow
// the body decoded so far; the framing read is then cut from the buffer.
HttpParse::Status HttpRequestParser::parse_chunked(std::string &buffer) {
  for (;;) {
    Step step;
    switch (phase_) {
      case Phase::ChunkSize:
        step = read_chunk_size(buffer);
        break;
      case Phase::ChunkData:
        step = read_chunk_data(buffer);
        break;
      case Phase::ChunkEnd:
        step = read_chunk_end(buffer);
        break;
      case Phase::Trailer:
        step = read_trailer(buffer);
        break;
      default:
        return p_.status;
    }
    if (step) return *step;
  }
}

void HttpRequestParser::compact(std::string &buffer) {
  const size_t body_end = p_.head_bytes + decoded_;
  if (raw_ > body_end) {
    buffer.erase(body_end, raw_ - body_end);
    scanned_ -= raw_ - body_end;
    raw_ = body_end;
  }
}

// Waits for more input: what is read so far is compacted.
HttpRequestParser::Step HttpRequestParser::wait_for_more(std::string &buffer) {
  compact(buffer);
  return p_.status;
}

HttpRequestParser::Step HttpRequestParser::read_chunk_size(std::string &buffer) {
  constexpr size_t kMaxChunkLine = 1024;
  const size_t line_end = buffer.find("\r\n", std::max(raw_, scanned_ > 0 ? scanned_ - 1 : 0));
  if (line_end == std::string::npos) {
    scanned_ = buffer.size();
    if (buffer.size() - raw_ >= kMaxChunkLine + 2) return fail(400, "malformed chunk size");
    return wait_for_more(buffer);
  }
  std::string_view size_text(buffer.data() + raw_, line_end - raw_);
  if (size_text.size() > kMaxChunkLine) return fail(400, "malformed chunk size");
  size_text = trim_ows(size_text.substr(0, size_text.find(';')));
  uint64_t size = 0;
  if (!parse_hex(size_text, size)) return fail(400, "malformed chunk size");
  raw_ = scanned_ = line_end + 2;
  if (size == 0) {
    phase_ = Phase::Trailer;
    return std::nullopt;
  }
  if (decoded_ + size > limits_.max_body_bytes) {
    return fail(413,
                "request body exceeds the limit of " + std::to_string(limits_.max_body_bytes) + " bytes");
  }
  chunk_left_ = size;
  phase_ = Phase::ChunkData;
  return std::nullopt;
}

HttpRequestParser::Step HttpRequestParser::read_chunk_data(std::string &buffer) {
  const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_left_, buffer.size() - raw_));
  const size_t body_end = p_.head_bytes + decoded_;
  if (raw_ != body_end) std::memmove(&buffer[body_end], buffer.data() + raw_, n);
  decoded_ += n;
  raw_ += n;
  chunk_left_ -= n;
  if (chunk_left_ > 0) {
    scanned_ = raw_;
    return wait_for_more(buffer);
  }
  phase_ = Phase::ChunkEnd;
  return std::nullopt;
}

HttpRequestParser::Step HttpRequestParser::read_chunk_end(std::string &buffer) {
  if (buffer.size() - raw_ < 2) {
    scanned_ = raw_;
    return wait_for_more(buffer);
  }
  if (buffer.compare(raw_, 2, "\r\n") != 0) return fail(400, "chunk data longer than its size");
  raw_ = scanned_ = raw_ + 2;
  phase_ = Phase::ChunkSize;
  return std::nullopt;
}

// Trailer fields, if any, are read and dropped.
HttpRequestParser::Step HttpRequestParser::read_trailer(std::string &buffer) {
  size_t end = std::string::npos;
  if (buffer.size() - raw_ >= 2 && buffer.compare(raw_, 2, "\r\n") == 0) {
    end = raw_ + 2;
  } else {
    const size_t found = buffer.find("\r\n\r\n", std::max(raw_, scanned_ >= 3 ? scanned_ - 3 : 0));
    // The same limit however the trailer arrives (found by fuzz_http).
    if (found != std::string::npos && found - raw_ > limits_.max_header_bytes) {
      return fail(431, "chunked trailer too large");
    }
    if (found != std::string::npos) end = found + 4;
  }
  if (end == std::string::npos) {
    scanned_ = buffer.size();
    if (buffer.size() - raw_ >= limits_.max_header_bytes + 4) return fail(431, "chunked trailer too large");
    return wait_for_more(buffer);
  }
  raw_ = end;
  compact(buffer);
  return complete(buffer, raw_);
}

HttpParse parse_http_request(std::string &buffer, const HttpLimits &limits) {
  HttpRequestParser parser(limits);
  parser.parse(buffer);
  return parser.request();
}

HttpReply error_reply(int status, const std::string &message) {
  std::string body = "{\"error\":";
  append_json_string(body, message);
  body += ",\"code\":" + std::to_string(status) + "}";
  return {status, "application/json", std::move(body), ""};
}

void append_http_reply(std::string &out, const HttpReply &reply, bool head, bool close) {
  // The head is gathered on the stack and appended at once: appending its
  // nine pieces one by one took 600 instructions a reply (callgrind).
  char buf[256];
  size_t used = 0;
  auto flush = [&] {
    out.append(buf, used);
    used = 0;
  };
  auto put = [&](std::string_view text) {
    if (sizeof buf - used < text.size()) {
      flush();
      if (text.size() > sizeof buf) {
        out += text;
        return;
      }
    }
    std::memcpy(buf + used, text.data(), text.size());
    used += text.size();
  };
  auto put_number = [&](size_t n) {
    char digits[24];
    const auto result = std::to_chars(digits, digits + sizeof digits, n);
    put(std::string_view(digits, static_cast<size_t>(result.ptr - digits)));
  };
  out.reserve(out.size() + 128 + reply.body.size());
  put("HTTP/1.1 ");
  put_number(static_cast<size_t>(reply.status));
  put(" ");
  put(reason_phrase(reply.status));
  put("\r\nContent-Type: ");
  put(reply.content_type);
  put("\r\nContent-Length: ");
  put_number(reply.body.size());
  if (!reply.allow.empty()) {
    put("\r\nAllow: ");
    put(reply.allow);
  }
  if (close) put("\r\nConnection: close");
  put("\r\n\r\n");
  flush();
  if (!head) out += reply.body;
}

}  // namespace hci_admission
