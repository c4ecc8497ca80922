#include "train/eval/metrics/ptb_tokenizer.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace flam::eval {
namespace {

using Text = std::u32string;

Text decode_utf8(std::string_view s) {
  Text out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) {  // invalid byte: Java's decoder yields U+FFFD
      out += U'\uFFFD';
      ++i;
      continue;
    }
    char32_t cp = len == 1 ? c : c & (0x7f >> len);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    out += cp;
    i += len;
  }
  return out;
}

std::string encode_utf8(const Text& t) {
  std::string out;
  for (char32_t cp : t) {
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
  return out;
}

char32_t lower(char32_t c) {
  if ((c >= U'A' && c <= U'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
  return c;
}
Text lower(Text t) {
  for (auto& c : t) c = lower(c);
  return t;
}

bool is_space(char32_t c) { return c == U' ' || (c >= U'\t' && c <= U'\r') || c == 0xA0; }
bool is_digit(char32_t c) { return c >= U'0' && c <= U'9'; }
bool is_upper(char32_t c) { return c >= U'A' && c <= U'Z'; }
bool is_letter(char32_t c) {
  return (c >= U'a' && c <= U'z') || is_upper(c) ||
         (c >= 0xC0 && c != 0xD7 && c != 0xF7 && c < 0x2000);
}
bool is_alnum(char32_t c) { return is_letter(c) || is_digit(c); }
bool is_apostrophe(char32_t c) { return c == U'\'' || c == 0x2019; }

// Characters that end a word and are tokens (or parts of tokens) of their own.
bool is_break(char32_t c) {
  static const std::u32string breaks =
      U"\"()[]{},;:?!.'`$%*=&#^~<>|/\\+-\u2018\u2019\u201c\u201d"
      U"\u2013\u2014\u2026";
  return is_space(c) || breaks.find(c) != std::u32string::npos;
}

// The lexer's abbreviations that keep their period (ABTITLE, ABPTIT, ABCOMP, ABBREV1/2/4,
// months and days), compared in lower case.
const std::unordered_set<std::u32string>& abbreviations() {
  static const std::unordered_set<std::u32string> s = {
      U"mr",    U"mrs",  U"ms",   U"miss", U"dr",    U"drs",   U"prof", U"profs", U"sen",
      U"sens",  U"rep",  U"reps", U"atty", U"attys", U"lt",    U"col",  U"gen",   U"messrs",
      U"gov",   U"govs", U"adm",  U"rev",  U"maj",   U"sgt",   U"cpl",  U"pvt",   U"mt",
      U"capt",  U"st",   U"ste",  U"ave",  U"pres",  U"lieut", U"hon",  U"brig",  U"cmdr",
      U"comdr", U"pfc",  U"spc",  U"supt", U"supts", U"det",   U"mme",  U"jr",    U"sr",
      U"bros",  U"blvd", U"rd",   U"esq",  U"inc",   U"co",    U"cos",  U"corp",  U"ltd",
      U"plc",   U"dept", U"assn", U"univ", U"intl",  U"etc",   U"al",   U"vs",    U"cf",
      U"jan",   U"feb",  U"mar",  U"apr",  U"jun",   U"jul",   U"aug",  U"sep",   U"sept",
      U"oct",   U"nov",  U"dec",  U"mon",  U"tue",   U"wed",   U"thu",  U"fri",   U"sat",
      U"sun",   U"no",   U"bldg", U"ft",   U"mfg",
  };
  return s;
}

// [A-Za-z](\.[A-Za-z])+ or a single letter: an acronym or initial that keeps a final period.
bool is_acronym(const Text& w) {
  if (w.empty() || w.size() % 2 == 0) return false;
  for (size_t i = 0; i < w.size(); ++i) {
    if (i % 2 == 0 ? !is_letter(w[i]) : w[i] != U'.') return false;
  }
  return true;
}

class Lexer {
 public:
  explicit Lexer(std::vector<Text>& out) : out_(out) {}

  void chunk(const Text& s) {
    size_t i = 0;
    while (i < s.size()) i = step(s, i);
  }

 private:
  char32_t at(const Text& s, size_t i) const { return i < s.size() ? s[i] : U' '; }

  void emit(Text t) { out_.push_back(std::move(t)); }

  size_t step(const Text& s, size_t i) {
    const char32_t c = s[i];
    switch (c) {
      case U'"':
        emit(is_alnum(at(s, i + 1)) ? U"``" : U"''");
        return i + 1;
      case 0x201C:
        emit(U"``");
        return i + 1;
      case 0x201D:
        emit(U"''");
        return i + 1;
      case 0x2018:
        emit(U"`");
        return i + 1;
      case U'(':
        emit(U"-LRB-");
        return i + 1;
      case U')':
        emit(U"-RRB-");
        return i + 1;
      case U'[':
        emit(U"-LSB-");
        return i + 1;
      case U']':
        emit(U"-RSB-");
        return i + 1;
      case U'{':
        emit(U"-LCB-");
        return i + 1;
      case U'}':
        emit(U"-RCB-");
        return i + 1;
      case 0x2013:
      case 0x2014:
        emit(U"--");
        return i + 1;
      case 0x2026:
        emit(U"...");
        return i + 1;
      case U',':
      case U';':
      case U':':
      case U'$':
      case U'%':
      case U'*':
      case U'=':
      case U'^':
      case U'~':
      case U'|':
      case U'\\':
      case U'<':
      case U'>':
      case U'/':
      case U'`':
        emit(Text(1, c));
        return i + 1;
      case U'&':
        emit(U"&");
        return i + 1;
      case U'?':
      case U'!': {
        size_t j = i;
        while (at(s, j) == U'?' || at(s, j) == U'!') ++j;
        emit(s.substr(i, j - i));
        return j;
      }
      case U'.': {
        size_t j = i;
        while (at(s, j) == U'.') ++j;
        if (j - i == 1 && is_digit(at(s, j))) return word(s, i);  // ".5"
        if (j - i >= 3) {
          emit(U"...");
        } else {
          for (size_t k = i; k < j; ++k) emit(U".");
        }
        return j;
      }
      case U'-': {
        size_t j = i;
        while (at(s, j) == U'-') ++j;
        if (j - i == 1 && is_digit(at(s, j))) return word(s, i);  // "-5"
        emit(j - i == 1 ? U"-" : U"--");
        return j;
      }
      case U'+':
        if (is_digit(at(s, i + 1))) return word(s, i);  // "+5"
        emit(U"+");
        return i + 1;
      case U'#':
        if (is_letter(at(s, i + 1))) return word(s, i);  // "#hash"
        emit(U"#");
        return i + 1;
      default:
        break;
    }
    if (is_apostrophe(c)) return apostrophe(s, i);
    return word(s, i);
  }

  // An apostrophe that does not sit inside a word.
  size_t apostrophe(const Text& s, size_t i) {
    size_t j = i + 1;
    while (j < s.size() && !is_break(s[j])) ++j;
    Text rest = lower(s.substr(i + 1, j - i - 1));
    static const std::unordered_set<std::u32string> clitics = {U"s",  U"re", U"ve",
                                                               U"ll", U"d",  U"m"};
    if (!rest.empty() && clitics.count(rest) && !is_apostrophe(at(s, j))) {
      emit(U"'" + s.substr(i + 1, j - i - 1));
      return j;
    }
    if (rest == U"tis" || rest == U"twas") {
      emit(U"'" + s.substr(i + 1, 1));
      emit(s.substr(i + 2, j - i - 2));
      return j;
    }
    if (is_digit(at(s, i + 1))) return word(s, i);  // '90s
    emit(is_letter(at(s, i + 1)) ? U"`" : U"'");
    return i + 1;
  }

  // A word from i: letters, digits and other symbols, with - . , : / ' & + inside when the
  // characters around them allow it; then its final period (abbreviations) and its clitics.
  size_t word(const Text& s, size_t i) {
    size_t j = i;
    if (s[j] == U'-' || s[j] == U'+' || s[j] == U'#' || s[j] == U'.' || is_apostrophe(s[j])) ++j;
    bool numeric_colon = false;
    while (j < s.size()) {
      char32_t c = s[j];
      if (!is_break(c)) {
        if (numeric_colon && is_letter(c)) break;  // "2:30pm" -> 2:30 pm
        ++j;
        continue;
      }
      char32_t prev = s[j - 1], next = at(s, j + 1);
      bool prev_word = !is_break(prev) || is_digit(prev);
      if (c == U'-' && prev_word && !is_break(next)) {
        ++j;
        continue;
      }
      if (c == U'.' && prev_word && is_alnum(next) &&
          !(is_digit(next) && abbreviations().count(lower(s.substr(i, j - i))))) {
        ++j;  // "a.b", "3.5"; but "no.1" -> no. 1
        continue;
      }
      if (c == U'/' && prev_word && !is_break(next)) {
        ++j;
        continue;
      }
      if ((c == U',' || c == U':') && is_digit(prev) && is_digit(next)) {
        numeric_colon = numeric_colon || c == U':';
        bool all_numeric = true;
        for (size_t k = i; k < j; ++k)
          if (!is_digit(s[k]) && s[k] != U',' && s[k] != U':' && s[k] != U'.') all_numeric = false;
        if (all_numeric) {
          ++j;
          continue;
        }
      }
      if (c == U'&' && is_upper(prev) && is_upper(next)) {
        ++j;
        continue;
      }
      if (is_apostrophe(c) && is_letter(prev) && is_letter(next)) {
        ++j;
        continue;
      }
      break;
    }
    Text w = s.substr(i, j - i);
    for (auto& ch : w)
      if (ch == 0x2019) ch = U'\'';
    if (at(s, j) == U'.' && at(s, j + 1) != U'.' &&
        (is_acronym(w) || abbreviations().count(lower(w)))) {
      w += U'.';
      ++j;
    }
    split_clitics(std::move(w));
    return j;
  }

  void split_clitics(Text w) {
    static const Text kSplitWords[] = {U"cannot", U"gonna", U"gotta", U"wanna", U"lemme", U"gimme"};
    Text lw = lower(w);
    for (const Text& sw : kSplitWords) {
      if (lw == sw) {
        emit(w.substr(0, 3));
        emit(w.substr(3));
        return;
      }
    }
    std::vector<Text> tail;
    for (bool peeled = true; peeled;) {
      peeled = false;
      lw = lower(w);
      for (const Text& cl :
           {Text(U"'s"), Text(U"'re"), Text(U"'ve"), Text(U"'ll"), Text(U"'d"), Text(U"'m")}) {
        if (lw.size() > cl.size() && lw.ends_with(cl)) {
          tail.push_back(w.substr(w.size() - cl.size()));
          w.resize(w.size() - cl.size());
          peeled = true;
          break;
        }
      }
      if (!peeled && lw.size() > 3 && lw.ends_with(U"n't")) {
        tail.push_back(w.substr(w.size() - 3));
        w.resize(w.size() - 3);
        peeled = true;
      }
    }
    emit(std::move(w));
    for (auto it = tail.rbegin(); it != tail.rend(); ++it) emit(std::move(*it));
  }

  std::vector<Text>& out_;
};

// pycocoevalcap's PUNCTUATIONS, compared with the lower-cased tokens as it does.
bool is_dropped(const Text& t) {
  static const std::unordered_set<std::u32string> p = {
      U"''", U"'", U"``", U"`", U"-LRB-", U"-RRB-", U"-LCB-", U"-RCB-", U".",
      U"?",  U"!", U",",  U":", U"-",     U"--",    U"...",   U";"};
  return p.count(t) > 0;
}

}  // namespace

std::vector<std::string> ptb_tokenize(std::string_view text) {
  Text s = decode_utf8(text);
  std::vector<Text> raw;
  Lexer lexer(raw);
  for (size_t i = 0; i < s.size();) {
    while (i < s.size() && is_space(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !is_space(s[j])) ++j;
    if (j > i) lexer.chunk(s.substr(i, j - i));
    i = j;
  }
  std::vector<std::string> tokens;
  for (auto& t : raw) {
    Text l = lower(std::move(t));
    if (!is_dropped(l)) tokens.push_back(encode_utf8(l));
  }
  return tokens;
}

std::string ptb_tokenize_joined(std::string_view text) {
  std::string out;
  for (const auto& t : ptb_tokenize(text)) {
    if (!out.empty()) out += ' ';
    out += t;
  }
  return out;
}

}  // namespace flam::eval
