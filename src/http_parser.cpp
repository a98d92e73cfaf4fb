// HTTP/1.1 request parsing and response writing (RFC 9112), strict where
// leniency has been used for request smuggling.
#include "hci_admission/https_server.hpp"

#include "hci_admission/json_patch.hpp"

#include <cstdint>

namespace hci_admission {
namespace {

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
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

// Whole decimal number without sign; false when not one or too large.
bool parse_decimal(std::string_view s, uint64_t &out) {
  if (s.empty() || s.size() > 18) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

HttpParse invalid(HttpParse &p, int status, std::string message) {
  p.status = HttpParse::Status::Invalid;
  p.error_status = status;
  p.error = std::move(message);
  return std::move(p);
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

HttpParse parse_http_request(std::string_view in, const HttpLimits &limits) {
  HttpParse p;
  // Empty lines before a request are allowed (RFC 9112 2.2).
  size_t start = 0;
  while (in.size() - start >= 2 && in[start] == '\r' && in[start + 1] == '\n') start += 2;
  const size_t header_end = in.find("\r\n\r\n", start);
  if (header_end == std::string_view::npos || header_end - start > limits.max_header_bytes) {
    if (in.size() - start > limits.max_header_bytes) {
      return invalid(p, 431,
                     "request header section exceeds " + std::to_string(limits.max_header_bytes) + " bytes");
    }
    return p;
  }
  const std::string_view head = in.substr(start, header_end - start);

  // Request line: method SP request-target SP HTTP-version
  size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return invalid(p, 400, "malformed request line");
  }
  p.method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(p.method)) return invalid(p, 400, "malformed request method");
  if (target.empty() || target.front() != '/') return invalid(p, 400, "request target must be a path");
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return invalid(p, 400, "malformed request target");
  }
  if (version == "HTTP/1.1") {
    p.keep_alive = true;
  } else if (version == "HTTP/1.0") {
    p.keep_alive = false;
  } else if (version.rfind("HTTP/", 0) == 0) {
    return invalid(p, 505, "HTTP version " + std::string(version) + " not supported; use HTTP/1.1");
  } else {
    return invalid(p, 400, "malformed request line");
  }
  const size_t question = target.find('?');
  p.path = target.substr(0, question);
  if (question != std::string_view::npos) p.query = target.substr(question + 1);

  bool have_length = false;
  uint64_t length = 0;
  bool &chunked = p.chunked;
  bool content_type_seen = false;
  size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    if (next == std::string_view::npos) next = head.size();
    const std::string_view field = head.substr(pos, next - pos);
    pos = next + 2;
    if (field.front() == ' ' || field.front() == '\t') return invalid(p, 400, "obsolete header line folding");
    const size_t colon = field.find(':');
    if (colon == std::string_view::npos) return invalid(p, 400, "malformed header line");
    const std::string_view name = field.substr(0, colon);
    if (!is_token(name)) return invalid(p, 400, "malformed header name");
    const std::string_view value = trim_ows(field.substr(colon + 1));
    for (char c : value) {
      if (c == '\r' || c == '\n' || c == '\0') return invalid(p, 400, "control character in header value");
    }
    if (iequals(name, "content-length")) {
      uint64_t v = 0;
      if (!parse_decimal(value, v)) return invalid(p, 400, "malformed Content-Length");
      if (have_length && v != length) return invalid(p, 400, "conflicting Content-Length headers");
      have_length = true;
      length = v;
    } else if (iequals(name, "transfer-encoding")) {
      if (!iequals(value, "chunked") || chunked) {
        return invalid(p, 501, "transfer encoding \"" + std::string(value) + "\" not supported");
      }
      chunked = true;
    } else if (iequals(name, "content-type")) {
      if (!content_type_seen) p.content_type = value;
      content_type_seen = true;
    } else if (iequals(name, "connection")) {
      size_t t = 0;
      while (t <= value.size()) {
        size_t comma = value.find(',', t);
        if (comma == std::string_view::npos) comma = value.size();
        const std::string_view token = trim_ows(value.substr(t, comma - t));
        if (iequals(token, "close")) p.keep_alive = false;
        if (iequals(token, "keep-alive") && version == "HTTP/1.0") p.keep_alive = true;
        t = comma + 1;
      }
    } else if (iequals(name, "expect")) {
      if (!iequals(value, "100-continue")) return invalid(p, 417, "unsupported expectation");
      p.expect_continue = true;
    }
  }
  if (chunked && have_length) return invalid(p, 400, "both Content-Length and Transfer-Encoding");
  p.headers_complete = true;

  const size_t body_start = header_end + 4;
  if (have_length) {
    if (length > limits.max_body_bytes) {
      return invalid(p, 413,
                     "request body exceeds the limit of " + std::to_string(limits.max_body_bytes) + " bytes");
    }
    if (in.size() - body_start < length) return p;
    p.body_in_input = in.substr(body_start, length);
    p.consumed = body_start + length;
  } else if (chunked) {
    size_t at = body_start;
    for (;;) {
      const size_t line_end = in.find("\r\n", at);
      if (line_end == std::string_view::npos) {
        if (in.size() - at > 1024) return invalid(p, 400, "malformed chunk size");
        return p;
      }
      std::string_view size_text = in.substr(at, line_end - at);
      size_text = trim_ows(size_text.substr(0, size_text.find(';')));
      if (size_text.empty() || size_text.size() > 15) return invalid(p, 400, "malformed chunk size");
      uint64_t size = 0;
      for (char c : size_text) {
        int d = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0) return invalid(p, 400, "malformed chunk size");
        size = size * 16 + static_cast<uint64_t>(d);
      }
      at = line_end + 2;
      if (size == 0) {
        // Trailer fields, if any, are read and dropped.
        if (in.size() - at >= 2 && in.compare(at, 2, "\r\n") == 0) {
          p.consumed = at + 2;
        } else {
          const size_t end = in.find("\r\n\r\n", at);
          if (end == std::string_view::npos) {
            if (in.size() - at > limits.max_header_bytes) return invalid(p, 431, "chunked trailer too large");
            return p;
          }
          p.consumed = end + 4;
        }
        break;
      }
      if (p.chunked_body.size() + size > limits.max_body_bytes) {
        return invalid(
            p, 413, "request body exceeds the limit of " + std::to_string(limits.max_body_bytes) + " bytes");
      }
      if (in.size() - at < size + 2) return p;
      p.chunked_body.append(in.data() + at, size);
      at += size;
      if (in.compare(at, 2, "\r\n") != 0) return invalid(p, 400, "chunk data longer than its size");
      at += 2;
    }
  } else {
    p.consumed = body_start;
  }
  p.status = HttpParse::Status::Complete;
  return p;
}

HttpReply error_reply(int status, const std::string &message) {
  std::string body = "{\"error\":";
  append_json_string(body, message);
  body += ",\"code\":" + std::to_string(status) + "}";
  return {status, "application/json", std::move(body), ""};
}

void append_http_reply(std::string &out, const HttpReply &reply, bool head, bool close) {
  out.reserve(out.size() + 128 + reply.body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(reply.status);
  out += ' ';
  out += reason_phrase(reply.status);
  out += "\r\nContent-Type: ";
  out += reply.content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(reply.body.size());
  if (!reply.allow.empty()) {
    out += "\r\nAllow: ";
    out += reply.allow;
  }
  if (close) out += "\r\nConnection: close";
  out += "\r\n\r\n";
  if (!head) out += reply.body;
}

}  // namespace hci_admission
