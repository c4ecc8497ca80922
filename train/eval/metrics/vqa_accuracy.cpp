#include "train/eval/metrics/vqa_accuracy.h"

#include <algorithm>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.h"

namespace flam::eval {
namespace {

const std::unordered_map<std::string, std::string>& contractions() {
  static const std::unordered_map<std::string, std::string> m = {
      {"aint", "ain't"},
      {"arent", "aren't"},
      {"cant", "can't"},
      {"couldve", "could've"},
      {"couldnt", "couldn't"},
      {"couldn'tve", "couldn't've"},
      {"couldnt've", "couldn't've"},
      {"didnt", "didn't"},
      {"doesnt", "doesn't"},
      {"dont", "don't"},
      {"hadnt", "hadn't"},
      {"hadnt've", "hadn't've"},
      {"hadn'tve", "hadn't've"},
      {"hasnt", "hasn't"},
      {"havent", "haven't"},
      {"hed", "he'd"},
      {"hed've", "he'd've"},
      {"he'dve", "he'd've"},
      {"hes", "he's"},
      {"howd", "how'd"},
      {"howll", "how'll"},
      {"hows", "how's"},
      {"Id've", "I'd've"},
      {"I'dve", "I'd've"},
      {"Im", "I'm"},
      {"Ive", "I've"},
      {"isnt", "isn't"},
      {"itd", "it'd"},
      {"itd've", "it'd've"},
      {"it'dve", "it'd've"},
      {"itll", "it'll"},
      {"let's", "let's"},
      {"maam", "ma'am"},
      {"mightnt", "mightn't"},
      {"mightnt've", "mightn't've"},
      {"mightn'tve", "mightn't've"},
      {"mightve", "might've"},
      {"mustnt", "mustn't"},
      {"mustve", "must've"},
      {"neednt", "needn't"},
      {"notve", "not've"},
      {"oclock", "o'clock"},
      {"oughtnt", "oughtn't"},
      {"ow's'at", "'ow's'at"},
      {"'ows'at", "'ow's'at"},
      {"'ow'sat", "'ow's'at"},
      {"shant", "shan't"},
      {"shed've", "she'd've"},
      {"she'dve", "she'd've"},
      {"she's", "she's"},
      {"shouldve", "should've"},
      {"shouldnt", "shouldn't"},
      {"shouldnt've", "shouldn't've"},
      {"shouldn'tve", "shouldn't've"},
      {"somebody'd", "somebodyd"},
      {"somebodyd've", "somebody'd've"},
      {"somebody'dve", "somebody'd've"},
      {"somebodyll", "somebody'll"},
      {"somebodys", "somebody's"},
      {"someoned", "someone'd"},
      {"someoned've", "someone'd've"},
      {"someone'dve", "someone'd've"},
      {"someonell", "someone'll"},
      {"someones", "someone's"},
      {"somethingd", "something'd"},
      {"somethingd've", "something'd've"},
      {"something'dve", "something'd've"},
      {"somethingll", "something'll"},
      {"thats", "that's"},
      {"thered", "there'd"},
      {"thered've", "there'd've"},
      {"there'dve", "there'd've"},
      {"therere", "there're"},
      {"theres", "there's"},
      {"theyd", "they'd"},
      {"theyd've", "they'd've"},
      {"they'dve", "they'd've"},
      {"theyll", "they'll"},
      {"theyre", "they're"},
      {"theyve", "they've"},
      {"twas", "'twas"},
      {"wasnt", "wasn't"},
      {"wed've", "we'd've"},
      {"we'dve", "we'd've"},
      {"weve", "we've"},
      {"werent", "weren't"},
      {"whatll", "what'll"},
      {"whatre", "what're"},
      {"whats", "what's"},
      {"whatve", "what've"},
      {"whens", "when's"},
      {"whered", "where'd"},
      {"wheres", "where's"},
      {"whereve", "where've"},
      {"whod", "who'd"},
      {"whod've", "who'd've"},
      {"who'dve", "who'd've"},
      {"wholl", "who'll"},
      {"whos", "who's"},
      {"whove", "who've"},
      {"whyll", "why'll"},
      {"whyre", "why're"},
      {"whys", "why's"},
      {"wont", "won't"},
      {"wouldve", "would've"},
      {"wouldnt", "wouldn't"},
      {"wouldnt've", "wouldn't've"},
      {"wouldn'tve", "wouldn't've"},
      {"yall", "y'all"},
      {"yall'll", "y'all'll"},
      {"y'allll", "y'all'll"},
      {"yall'd've", "y'all'd've"},
      {"y'alld've", "y'all'd've"},
      {"y'all'dve", "y'all'd've"},
      {"youd", "you'd"},
      {"youd've", "you'd've"},
      {"you'dve", "you'd've"},
      {"youll", "you'll"},
      {"youre", "you're"},
      {"youve", "you've"},
  };
  return m;
}

const std::unordered_map<std::string, std::string>& number_words() {
  static const std::unordered_map<std::string, std::string> m = {
      {"none", "0"}, {"zero", "0"}, {"one", "1"},   {"two", "2"},   {"three", "3"}, {"four", "4"},
      {"five", "5"}, {"six", "6"},  {"seven", "7"}, {"eight", "8"}, {"nine", "9"},  {"ten", "10"},
  };
  return m;
}

constexpr std::string_view kPunct[] = {";",  "/", "[", "]", "\"", "{", "}", "(", ")", "=", "+",
                                       "\\", "_", "-", ">", "<",  "@", "`", ",", "?", "!"};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
// Python's str.split() / str.strip() whitespace, ASCII part.
bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); }

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
}

bool has_digit_comma_digit(std::string_view s) {
  for (size_t i = 1; i + 1 < s.size(); ++i)
    if (s[i] == ',' && is_digit(s[i - 1]) && is_digit(s[i + 1])) return true;
  return false;
}

std::string clean_whitespace(std::string_view text) {
  std::string s(text);
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\t', ' ');
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

}  // namespace

VqaGtNormalization parse_vqa_gt_normalization(const std::string& value, const std::string& key) {
  if (value == "openflamingo") return VqaGtNormalization::kOpenFlamingo;
  if (value == "official") return VqaGtNormalization::kOfficial;
  throw Error(ErrorKind::kConfig,
              "unknown VQA ground-truth normalization '" + value + "' (openflamingo | official)",
              at_key(key));
}

std::string vqa_process_punctuation(std::string_view text) {
  const bool digit_comma = has_digit_comma_digit(text);
  std::string out(text);
  for (std::string_view p : kPunct) {
    std::string before = std::string(p) + " ", after = " " + std::string(p);
    bool touches =
        text.find(before) != std::string_view::npos || text.find(after) != std::string_view::npos;
    replace_all(out, p, touches || digit_comma ? "" : " ");
  }
  std::string stripped;
  stripped.reserve(out.size());
  int removed = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '.' && removed < 32 && !(i + 1 < out.size() && is_digit(out[i + 1]))) {
      ++removed;
      continue;
    }
    stripped += out[i];
  }
  return stripped;
}

std::string vqa_process_digit_article(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    auto it = number_words().find(word);
    if (it != number_words().end()) word = it->second;
    if (word != "a" && word != "an" && word != "the") words.push_back(word);
    word.clear();
  };
  for (char c : text) {
    if (is_space(c)) {
      flush();
    } else {
      word += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
  }
  flush();
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    auto it = contractions().find(words[i]);
    if (i) out += ' ';
    out += it == contractions().end() ? words[i] : it->second;
  }
  return out;
}

std::string vqa_normalize(std::string_view text) {
  return vqa_process_digit_article(vqa_process_punctuation(clean_whitespace(text)));
}

double vqa_accuracy(std::string_view prediction, const std::vector<std::string>& answers,
                    VqaGtNormalization mode) {
  if (answers.empty()) throw Error(ErrorKind::kData, "VQA accuracy: a question has no answers");
  const std::string pred = vqa_normalize(prediction);
  std::vector<std::string> gt;
  gt.reserve(answers.size());
  if (mode == VqaGtNormalization::kOpenFlamingo) {
    for (const auto& a : answers) gt.push_back(vqa_normalize(a));
  } else {
    const bool differ = std::set<std::string>(answers.begin(), answers.end()).size() > 1;
    for (const auto& a : answers) gt.push_back(differ ? vqa_process_punctuation(a) : a);
  }
  double total = 0.0;
  for (size_t left_out = 0; left_out < gt.size(); ++left_out) {
    int matches = 0;
    for (size_t j = 0; j < gt.size(); ++j)
      if (j != left_out && gt[j] == pred) ++matches;
    total += std::min(1.0, matches / 3.0);
  }
  return total / static_cast<double>(gt.size());
}

}  // namespace flam::eval
