// A recursive-descent reader of a TOML subset. Tables are addressed by key
// paths from the root and walked again for each statement (the tree's
// vectors move when they grow, so no pointer into it is kept).
#include "registry/toml_subset.h"

namespace herd::registry::internal {

namespace {

using Kind = TomlValue::Kind;

bool is_bare_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}
bool is_word_char(char c) { return is_bare_key_char(c) || c == '+' || c == '.' || c == ':'; }

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

std::string shown_key(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& k : path) {
    if (!out.empty()) out += '.';
    bool bare = !k.empty();
    for (char c : k) bare = bare && is_bare_key_char(c);
    if (bare) {
      out += k;
    } else {
      out += '"';
      for (char c : k) {
        const auto u = static_cast<unsigned char>(c);
        out += (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') ? c : '?';
      }
      out += '"';
    }
    if (out.size() > 200) break;
  }
  return out;
}

class Parser {
 public:
  Parser(std::string_view text, const std::string& what) : s_(text), what_(what) {}

  Result<TomlValue> run(std::size_t max_line) {
    // Bytes and lines first: no control byte but TAB, LF and CRLF.
    std::size_t line_start = 0;
    int line_no = 1;
    for (std::size_t i = 0; i < s_.size(); ++i) {
      const auto c = static_cast<unsigned char>(s_[i]);
      if (c == '\n') {
        if (i - line_start > max_line)
          return error_at(line_no, "longer than " + std::to_string(max_line) + " bytes");
        line_start = i + 1;
        ++line_no;
        continue;
      }
      if (c == '\r' && i + 1 < s_.size() && s_[i + 1] == '\n') continue;
      if ((c < 0x20 && c != '\t') || c == 0x7f)
        return error_at(line_no, "control byte in the file");
    }
    if (s_.size() - line_start > max_line)
      return error_at(line_no, "longer than " + std::to_string(max_line) + " bytes");

    root_.kind = Kind::kTable;
    root_.line = 1;
    while (true) {
      skip_blank_lines();
      if (at_end()) break;
      Status s = peek() == '[' ? table_header() : key_value();
      if (!s.ok()) return s;
      if (auto e = end_of_line(); !e.ok()) return e;
    }
    return std::move(root_);
  }

 private:
  Status error_at(int line, const std::string& why) const {
    return Status::InvalidArgument(what_ + " line " + std::to_string(line) + ": " + why);
  }
  Status error(const std::string& why) const { return error_at(line_, why); }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return s_[pos_]; }
  char peek_at(std::size_t k) const { return pos_ + k < s_.size() ? s_[pos_ + k] : '\0'; }
  void skip_ws() {
    while (!at_end() && (peek() == ' ' || peek() == '\t')) ++pos_;
  }
  void skip_comment() {
    if (!at_end() && peek() == '#')
      while (!at_end() && peek() != '\n') ++pos_;
  }
  bool newline() {
    if (!at_end() && peek() == '\r' && peek_at(1) == '\n') ++pos_;
    if (!at_end() && peek() == '\n') {
      ++pos_;
      ++line_;
      return true;
    }
    return false;
  }
  void skip_blank_lines() {
    while (true) {
      skip_ws();
      skip_comment();
      if (!newline()) return;
    }
  }
  // Whitespace, comments and newlines (inside arrays).
  void skip_all_space() { skip_blank_lines(); }
  Status end_of_line() {
    skip_ws();
    skip_comment();
    if (at_end() || newline()) return Status::Ok();
    return error("unexpected text after the value");
  }

  Status basic_string(std::string& out) {
    if (peek_at(1) == '"' && peek_at(2) == '"')
      return error("multi-line strings are not supported");
    ++pos_;
    while (true) {
      if (at_end() || peek() == '\n' || peek() == '\r') return error("unterminated string");
      const char c = peek();
      if (c == '"') {
        ++pos_;
        return Status::Ok();
      }
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      const char e = peek_at(1);
      pos_ += 2;
      switch (e) {
        case 'b':
          out += '\b';
          break;
        case 't':
          out += '\t';
          break;
        case 'n':
          out += '\n';
          break;
        case 'f':
          out += '\f';
          break;
        case 'r':
          out += '\r';
          break;
        case 'e':
          out += '\x1b';
          break;
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case 'u':
        case 'U': {
          const std::size_t digits = e == 'u' ? 4 : 8;
          std::uint32_t cp = 0;
          for (std::size_t k = 0; k < digits; ++k) {
            if (at_end()) return error("short \\" + std::string(1, e) + " escape");
            const char h = peek();
            int v = -1;
            if (h >= '0' && h <= '9') v = h - '0';
            if (h >= 'a' && h <= 'f') v = h - 'a' + 10;
            if (h >= 'A' && h <= 'F') v = h - 'A' + 10;
            if (v < 0) return error("bad hex digit in a \\" + std::string(1, e) + " escape");
            cp = (cp << 4) | static_cast<std::uint32_t>(v);
            ++pos_;
          }
          if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return error("escape names no Unicode scalar value");
          append_utf8(out, cp);
          break;
        }
        default:
          return error("invalid escape in a string");
      }
    }
  }
  Status literal_string(std::string& out) {
    if (peek_at(1) == '\'' && peek_at(2) == '\'')
      return error("multi-line strings are not supported");
    ++pos_;
    while (true) {
      if (at_end() || peek() == '\n' || peek() == '\r') return error("unterminated string");
      if (peek() == '\'') {
        ++pos_;
        return Status::Ok();
      }
      out += peek();
      ++pos_;
    }
  }

  Status key_part(std::string& out) {
    if (at_end()) return error("expected a key");
    if (peek() == '"') return basic_string(out);
    if (peek() == '\'') return literal_string(out);
    const std::size_t start = pos_;
    while (!at_end() && is_bare_key_char(peek())) ++pos_;
    if (pos_ == start) return error("expected a key");
    out = std::string(s_.substr(start, pos_ - start));
    return Status::Ok();
  }
  Status key_path(std::vector<std::string>& path) {
    while (true) {
      skip_ws();
      std::string part;
      if (auto s = key_part(part); !s.ok()) return s;
      path.push_back(std::move(part));
      if (path.size() > kMaxTomlKeyPath)
        return error("key with more than " + std::to_string(kMaxTomlKeyPath) + " parts");
      skip_ws();
      if (at_end() || peek() != '.') return Status::Ok();
      ++pos_;
    }
  }

  Status count_value() {
    if (++values_ > kMaxTomlValues)
      return error("more than " + std::to_string(kMaxTomlValues) + " values");
    return Status::Ok();
  }

  Status value(TomlValue& v, std::size_t depth) {
    if (depth > kMaxTomlDepth)
      return error("values nested deeper than " + std::to_string(kMaxTomlDepth));
    if (auto s = count_value(); !s.ok()) return s;
    v.line = line_;
    if (at_end()) return error("expected a value");
    const char c = peek();
    if (c == '"') {
      v.kind = Kind::kString;
      return basic_string(v.text);
    }
    if (c == '\'') {
      v.kind = Kind::kString;
      return literal_string(v.text);
    }
    if (c == '[') {
      v.kind = Kind::kArray;
      ++pos_;
      while (true) {
        skip_all_space();
        if (at_end()) return error("unterminated array");
        if (peek() == ']') {
          ++pos_;
          return Status::Ok();
        }
        TomlValue item;
        if (auto s = value(item, depth + 1); !s.ok()) return s;
        v.items.push_back(std::move(item));
        skip_all_space();
        if (at_end()) return error("unterminated array");
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        if (peek() != ']') return error("expected ',' or ']' in an array");
      }
    }
    if (c == '{') {
      v.kind = Kind::kTable;
      v.is_inline = true;
      v.header_defined = true;
      ++pos_;
      skip_ws();
      if (!at_end() && peek() == '}') {
        ++pos_;
        return Status::Ok();
      }
      while (true) {
        std::vector<std::string> path;
        if (auto s = key_path(path); !s.ok()) return s;
        skip_ws();
        if (at_end() || peek() != '=') return error("expected '=' after a key");
        ++pos_;
        skip_ws();
        TomlValue item;
        if (auto s = value(item, depth + 1); !s.ok()) return s;
        if (auto s = assign(v, path, std::move(item)); !s.ok()) return s;
        skip_ws();
        if (at_end()) return error("unterminated inline table");
        if (peek() == '}') {
          ++pos_;
          return Status::Ok();
        }
        if (peek() != ',') return error("expected ',' or '}' in an inline table");
        ++pos_;
        skip_ws();
      }
    }
    const std::size_t start = pos_;
    while (!at_end() && is_word_char(peek())) ++pos_;
    if (pos_ == start) return error("expected a value");
    const std::string_view word = s_.substr(start, pos_ - start);
    if (word == "true" || word == "false") {
      v.kind = Kind::kBool;
      v.boolean = word == "true";
      return Status::Ok();
    }
    const char f = word.front();
    if (!((f >= '0' && f <= '9') || f == '+' || f == '-' || word == "inf" || word == "nan"))
      return error("expected a value (a string needs quotes)");
    v.kind = Kind::kWord;
    v.text = std::string(word);
    return Status::Ok();
  }

  // Puts `item` at `path` below `table` (intermediate parts: implicit tables).
  Status assign(TomlValue& table, const std::vector<std::string>& path, TomlValue item) {
    TomlValue* t = &table;
    for (std::size_t i = 0; i + 1 < path.size(); ++i) {
      TomlValue* next = const_cast<TomlValue*>(t->find(path[i]));
      if (!next) {
        if (auto s = count_value(); !s.ok()) return s;
        TomlValue sub;
        sub.kind = Kind::kTable;
        sub.line = line_;
        t->keys.push_back(path[i]);
        t->items.push_back(std::move(sub));
        next = &t->items.back();
      } else if (next->kind != Kind::kTable || next->is_inline) {
        return error("key " + shown_key(path) + " redefines a value");
      }
      t = next;
    }
    if (t->find(path.back())) return error("key " + shown_key(path) + " is defined twice");
    t->keys.push_back(path.back());
    t->items.push_back(std::move(item));
    return Status::Ok();
  }

  TomlValue* walk(const std::vector<std::string>& path) {
    TomlValue* t = &root_;
    for (const auto& k : path) t = const_cast<TomlValue*>(t->find(k));
    return t;
  }

  Status table_header() {
    if (peek_at(1) == '[') return error("arrays of tables ([[...]]) are not supported");
    ++pos_;
    std::vector<std::string> path;
    if (auto s = key_path(path); !s.ok()) return s;
    skip_ws();
    if (at_end() || peek() != ']') return error("expected ']' after a table name");
    ++pos_;
    if (path.size() > kMaxTomlKeyPath)
      return error("table [" + shown_key(path) + "] nested deeper than " +
                   std::to_string(kMaxTomlKeyPath) + " tables");
    TomlValue* t = &root_;
    for (std::size_t i = 0; i < path.size(); ++i) {
      TomlValue* next = const_cast<TomlValue*>(t->find(path[i]));
      const bool last = i + 1 == path.size();
      if (!next) {
        if (auto s = count_value(); !s.ok()) return s;
        TomlValue sub;
        sub.kind = Kind::kTable;
        sub.line = line_;
        sub.header_defined = last;
        t->keys.push_back(path[i]);
        t->items.push_back(std::move(sub));
        next = &t->items.back();
      } else if (next->kind != Kind::kTable || next->is_inline) {
        return error("table [" + shown_key(path) + "] redefines a value");
      } else if (last) {
        if (next->header_defined) return error("table [" + shown_key(path) + "] is defined twice");
        next->header_defined = true;
      }
      t = next;
    }
    current_ = std::move(path);
    return Status::Ok();
  }

  Status key_value() {
    std::vector<std::string> path;
    if (auto s = key_path(path); !s.ok()) return s;
    skip_ws();
    if (at_end() || peek() != '=') return error("expected '=' after key " + shown_key(path));
    ++pos_;
    skip_ws();
    if (current_.size() + path.size() > kMaxTomlKeyPath)
      return error("key " + shown_key(path) + " nested deeper than " +
                   std::to_string(kMaxTomlKeyPath) + " tables");
    TomlValue v;
    if (auto s = value(v, 1); !s.ok()) return s;
    return assign(*walk(current_), path, std::move(v));
  }

  std::string_view s_;
  const std::string& what_;
  std::size_t pos_ = 0;
  int line_ = 1;
  std::size_t values_ = 0;
  TomlValue root_;
  std::vector<std::string> current_;
};

}  // namespace

const char* toml_kind_name(TomlValue::Kind kind) {
  switch (kind) {
    case Kind::kString:
      return "a string";
    case Kind::kBool:
      return "a boolean";
    case Kind::kWord:
      return "a number or date";
    case Kind::kArray:
      return "an array";
    case Kind::kTable:
      return "a table";
  }
  return "a value";
}

Result<TomlValue> parse_toml_subset(std::string_view text, const std::string& what,
                                    std::size_t max_line) {
  return Parser(text, what).run(max_line);
}

}  // namespace herd::registry::internal
