// A PTB-style tokenizer for caption evaluation: what pycocoevalcap's PTBTokenizer produces (the
// Stanford CoreNLP 3.4.1 PTBTokenizer with -preserveLines -lowerCase, then the punctuation tokens
// of its PUNCTUATIONS list dropped), written for the text captions are made of.
//
// Covered exactly (tests/eval/metrics_oracle.py checks against the Java tokenizer): lower case;
// punctuation split off words ("dog." -> dog), kept inside numbers and words ("3.5", "5,000",
// "10:30", "e-mail", "a/b", "u.s"); word-final periods kept on acronyms, single letters and the
// lexer's abbreviations ("u.s.", "a.", "mr.", "etc."); clitics split ('s 're 've 'll 'd 'm n't:
// "isn't" -> is n't, "can't" -> ca n't), "cannot" -> can not, "gonna" -> gon na and the like;
// quotes to `` '' ` ' and brackets to -lrb- -rrb- -lsb- -rsb- -lcb- -rcb- (lower-cased, so not in
// pycocoevalcap's list and kept, as there); $ % * = & # + split as CoreNLP does; typographic
// quotes, apostrophes, dashes and the ellipsis character mapped as CoreNLP maps them.
// Not covered (each listed with its cause in tests/eval/metrics_oracle.py): HTML entities, SGML
// tags, URLs and e-mail addresses, "y'all" / "rock'n'roll"-style inner apostrophes,
// sentence-final abbreviations followed by another rule of the lexer, and lower-casing beyond
// Latin-1. One difference is not ours to fix:
// pycocoevalcap tokenizes all captions as one file, so CoreNLP splits the period off a final
// "A." when the NEXT caption starts upper-case; we tokenize each caption alone.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace flam::eval {

// UTF-8 text (one caption; newlines are spaces) -> its tokens, punctuation tokens dropped.
std::vector<std::string> ptb_tokenize(std::string_view text);

// The tokens joined by single spaces: what pycocoevalcap hands to its scorers.
std::string ptb_tokenize_joined(std::string_view text);

}  // namespace flam::eval
