#include "dsml/python_json.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace v4agent::dsml {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one.
size_t Utf8SequenceLength(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n = 0;
  uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

void AppendString(const std::string& s, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      // Python strings hold only valid text: bytes that are not UTF-8 become U+FFFD, as
      // decoding the model's output with errors="replace" would make them.
      const size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        *out += "\xEF\xBF\xBD";
      } else {
        out->append(s, i, n);
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          *out += buf;
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

}  // namespace

bool IsValidUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (static_cast<unsigned char>(s[i]) < 0x80) continue;
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n - 1;
  }
  return true;
}

std::string PythonFloatRepr(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  // Shortest round-trip digits in scientific form, then laid out the way repr() does:
  // positional when the decimal exponent is in [-4, 16), scientific otherwise.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  const int exp = std::atoi(sci.c_str() + e + 1);
  bool neg = false;
  if (!mant.empty() && mant[0] == '-') {
    neg = true;
    mant.erase(0, 1);
  }
  std::string digits;
  for (char c : mant) {
    if (c != '.') digits.push_back(c);
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0.";
      out.append(static_cast<size_t>(-exp - 1), '0');
      out += digits;
    } else {
      const size_t int_len = static_cast<size_t>(exp) + 1;
      if (digits.size() <= int_len) {
        out += digits;
        out.append(int_len - digits.size(), '0');
        out += ".0";
      } else {
        out += digits.substr(0, int_len);
        out += ".";
        out += digits.substr(int_len);
      }
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) {
      out += ".";
      out += digits.substr(1);
    }
    char eb[16];
    std::snprintf(eb, sizeof(eb), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  }
  return out;
}

void AppendPythonJson(const OrderedJson& value, std::string* out) {
  switch (value.type()) {
    case OrderedJson::value_t::null:
      *out += "null";
      break;
    case OrderedJson::value_t::boolean:
      *out += value.get<bool>() ? "true" : "false";
      break;
    case OrderedJson::value_t::number_integer:
      *out += std::to_string(value.get<int64_t>());
      break;
    case OrderedJson::value_t::number_unsigned:
      *out += std::to_string(value.get<uint64_t>());
      break;
    case OrderedJson::value_t::number_float:
      *out += PythonFloatRepr(value.get<double>());
      break;
    case OrderedJson::value_t::string:
      AppendString(value.get_ref<const std::string&>(), out);
      break;
    case OrderedJson::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const auto& v : value) {
        if (!first) *out += ", ";
        first = false;
        AppendPythonJson(v, out);
      }
      out->push_back(']');
      break;
    }
    case OrderedJson::value_t::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& [k, v] : value.items()) {
        if (!first) *out += ", ";
        first = false;
        AppendString(k, out);
        *out += ": ";
        AppendPythonJson(v, out);
      }
      out->push_back('}');
      break;
    }
    case OrderedJson::value_t::binary:
    case OrderedJson::value_t::discarded:
      *out += "null";
      break;
  }
}

std::string PythonJsonDumps(const OrderedJson& value) {
  std::string out;
  AppendPythonJson(value, &out);
  return out;
}

}  // namespace v4agent::dsml
