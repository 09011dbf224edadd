// tests/test_toy_corpus.cpp: examples/translator/toy_corpus.hpp. Sentences the grammar must render exactly, and the
// properties of the corpus that make its test split a test of generalisation, each checked on the text of the pairs
// (read by a small analysis of the English written here, not by the generator's own bookkeeping).
#include "translator/toy_corpus.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "support/temp_file.hpp"

using namespace eigenformer;
using toy_corpus::Clause;
using toy_corpus::NounPhrase;
using toy_corpus::Pair;

namespace {

NounPhrase np(const char* noun, bool plural, const char* determiner, const char* adjective = nullptr, bool very = false) {
  NounPhrase p;
  p.noun = toy_corpus::noun(noun);
  p.plural = plural;
  p.determiner = toy_corpus::determiner(determiner);
  p.adjective = adjective ? toy_corpus::adjective(adjective) : -1;
  p.very = very;
  return p;
}

// "be" + adjective.
Clause be(std::vector<NounPhrase> subjects, const char* adjective, bool past = false, bool negated = false) {
  Clause c;
  c.subjects = std::move(subjects);
  c.predicate = toy_corpus::adjective(adjective);
  c.past = past;
  c.negated = negated;
  return c;
}
Clause be(const char* pronoun, const char* adjective, bool past = false, bool negated = false) {
  Clause c = be(std::vector<NounPhrase>{}, adjective, past, negated);
  c.pronoun = toy_corpus::pronoun(pronoun);
  return c;
}
Clause act(std::vector<NounPhrase> subjects, const char* verb, NounPhrase object, bool past = false, bool negated = false) {
  Clause c;
  c.subjects = std::move(subjects);
  c.verb = toy_corpus::verb(verb);
  c.object = object;
  c.past = past;
  c.negated = negated;
  return c;
}
Clause act(const char* pronoun, const char* verb, NounPhrase object, bool past = false, bool negated = false) {
  Clause c = act(std::vector<NounPhrase>{}, verb, object, past, negated);
  c.pronoun = toy_corpus::pronoun(pronoun);
  return c;
}

std::vector<std::string> words_of(const std::string& s) {
  std::vector<std::string> out;
  for (std::string_view w : toy_corpus::detail::words(s)) out.emplace_back(w);
  return out;
}

// What an English sentence of the corpus combines, read from its words alone: the subjects (pronouns and nouns)
// stand before the verb, the first word that is a form of a verb, of "be" or of "do"; an adjective describes the noun
// right after it, and an adjective after "be" is said of every subject noun.
struct Analysis {
  std::set<std::pair<std::string, std::string>> noun_adjective, subject_verb;
};

class English {
 public:
  English() {
    for (const auto& n : toy_corpus::nouns) noun_[n.english] = noun_[n.english_plural] = n.english;
    for (const auto& a : toy_corpus::adjectives) adjective_.insert(a.english);
    for (const auto& p : toy_corpus::pronouns) pronoun_.insert(p.english);
    for (const auto& v : toy_corpus::verbs) verb_[v.english] = verb_[v.english_third] = verb_[v.english_past] = v.english;
    for (const char* w : toy_corpus::be_present) verb_[w] = "be";
    for (const char* w : toy_corpus::be_past) verb_[w] = "be";
  }
  bool is_noun(const std::string& w) const { return noun_.count(w) > 0; }
  bool is_verb(const std::string& w) const { return verb_.count(w) > 0; }
  bool is_adjective(const std::string& w) const { return adjective_.count(w) > 0; }
  bool is_pronoun(const std::string& w) const { return pronoun_.count(w) > 0; }

  Analysis analyse(const std::string& sentence) const {
    const std::vector<std::string> w = words_of(sentence);
    std::size_t k = 0;
    while (k < w.size() && !is_verb(w[k]) && w[k] != "do" && w[k] != "does" && w[k] != "did") ++k;
    REQUIRE(k < w.size());
    std::string verb;
    if (is_verb(w[k])) {
      verb = verb_.at(w[k]);
    } else {
      REQUIRE(k + 2 < w.size());
      CHECK(w[k + 1] == "not");
      verb = verb_.at(w[k + 2]);
    }
    Analysis a;
    std::vector<std::string> subject_nouns;
    for (std::size_t i = 0; i < k; ++i) {
      if (is_pronoun(w[i]) && verb != "be") a.subject_verb.emplace(w[i], verb);
      if (!is_noun(w[i])) continue;
      subject_nouns.push_back(noun_.at(w[i]));
      if (verb != "be") a.subject_verb.emplace(noun_.at(w[i]), verb);
    }
    for (std::size_t i = 0; i + 1 < w.size(); ++i)
      if (is_adjective(w[i]) && is_noun(w[i + 1])) a.noun_adjective.emplace(noun_.at(w[i + 1]), w[i]);
    if (verb == "be") {
      REQUIRE(is_adjective(w.back()));
      for (const std::string& n : subject_nouns) a.noun_adjective.emplace(n, w.back());
    }
    return a;
  }

 private:
  std::map<std::string, std::string> noun_, verb_;  // form -> lemma
  std::set<std::string> adjective_, pronoun_;
};

// The held-out combinations a sentence holds, as "noun+adjective" and "subject+verb".
std::set<std::string> held_out_in(const English& english, const std::string& sentence) {
  const Analysis a = english.analyse(sentence);
  std::set<std::string> found;
  for (const auto& h : toy_corpus::held_out_noun_adjective)
    if (a.noun_adjective.count({h.first, h.second})) found.insert(std::string(h.first) + "+" + h.second);
  for (const auto& h : toy_corpus::held_out_subject_verb)
    if (a.subject_verb.count({h.first, h.second})) found.insert(std::string(h.first) + "+" + h.second);
  return found;
}

// Lowercase words of letters (Spanish: with á é í ó ú ü ñ), single spaces, at most max_words of them.
bool well_formed(const std::string& side, bool spanish) {
  const std::vector<std::string> w = words_of(side);
  if (w.empty() || w.size() > toy_corpus::max_words) return false;
  std::string rejoined;
  for (const std::string& word : w) {
    rejoined += (rejoined.empty() ? "" : " ") + word;
    for (std::size_t i = 0; i < word.size();) {
      if (word[i] >= 'a' && word[i] <= 'z') {
        ++i;
        continue;
      }
      bool accented = false;
      for (const char* letter : {"á", "é", "í", "ó", "ú", "ü", "ñ"})
        if (spanish && word.compare(i, 2, letter) == 0) accented = true;
      if (!accented) return false;
      i += 2;
    }
  }
  return rejoined == side;
}

}  // namespace

TEST_CASE("toy_corpus::render: word order, agreement, person and tense, negation, contractions") {
  using toy_corpus::render;
  CHECK(render(be({np("car", true, "the", "red")}, "fast", false, true)) == Pair{"the red cars are not fast", "los coches rojos no son rápidos"});
  CHECK(render(act("she", "eat", np("apple", true, "the", "green"), true)) == Pair{"she ate the green apples", "ella comió las manzanas verdes"});
  // Gender from the noun, not its ending: la moto, el mapa.
  CHECK(render(be({np("motorcycle", false, "the")}, "fast")) == Pair{"the motorcycle is fast", "la moto es rápida"});
  CHECK(render(be({np("map", true, "this")}, "old", true)) == Pair{"these maps were old", "estos mapas eran viejos"});
  // Two nouns: plural, feminine only if both are.
  CHECK(render(be({np("boy", false, "the"), np("girl", false, "the")}, "tall")) == Pair{"the boy and the girl are tall", "el niño y la niña son altos"});
  CHECK(render(be({np("girl", false, "the"), np("queen", false, "the")}, "tall", true, true)) ==
        Pair{"the girl and the queen were not tall", "la niña y la reina no eran altas"});
  // ser, present and imperfect; pronouns take the masculine but "she".
  CHECK(render(be("i", "young")) == Pair{"i am young", "yo soy joven"});
  CHECK(render(be("we", "young", true)) == Pair{"we were young", "nosotros éramos jóvenes"});
  CHECK(render(be("she", "strong", false, true)) == Pair{"she is not strong", "ella no es fuerte"});
  CHECK(render(be("you", "small", true)) == Pair{"you were small", "tú eras pequeño"});
  // a + el = al, de + el = del; not before another determiner.
  CHECK(render(act("he", "go", np("park", false, "the"), true)) == Pair{"he went to the park", "él fue al parque"});
  CHECK(render(act("we", "come", np("market", false, "the", "old"), true)) == Pair{"we came from the old market", "nosotros vinimos del mercado viejo"});
  CHECK(render(act("they", "go", np("beach", true, "those"))) == Pair{"they go to those beaches", "ellos van a esas playas"});
  CHECK(render(act("you", "come", np("city", false, "the"), false, true)) == Pair{"you do not come from the city", "tú no vienes de la ciudad"});
  // The personal "a" before a person as object, and only there.
  CHECK(render(act("i", "see", np("boy", false, "the"), true)) == Pair{"i saw the boy", "yo vi al niño"});
  CHECK(render(act({np("woman", true, "the")}, "help", np("person", true, "the"), true, true)) ==
        Pair{"the women did not help the people", "las mujeres no ayudaron a las personas"});
  CHECK(render(act("she", "see", np("house", false, "the"))) == Pair{"she sees the house", "ella ve la casa"});
  // do-support, irregular plurals, "an", "very", two-word verbs, stem changes.
  CHECK(render(act({np("sister", false, "my")}, "have", np("mouse", true, "two", "white"), false, true)) ==
        Pair{"my sister does not have two white mice", "mi hermana no tiene dos ratones blancos"});
  CHECK(render(act({np("man", false, "a", "old")}, "look", np("key", false, "a", "expensive", true), true)) ==
        Pair{"an old man looked for a very expensive key", "un hombre viejo buscó una llave muy cara"});
  CHECK(render(act({np("man", false, "a")}, "eat", np("egg", false, "a"))) == Pair{"a man eats an egg", "un hombre come un huevo"});
  CHECK(render(act("you", "close", np("door", true, "the"))) == Pair{"you close the doors", "tú cierras las puertas"});
  CHECK(render(act("we", "find", np("pencil", true, "our", "blue"), true)) == Pair{"we found our blue pencils", "nosotros encontramos nuestros lápices azules"});
  CHECK(render(act("i", "make", np("cake", true, "some"), true)) == Pair{"i made some cakes", "yo hice unos pasteles"});
  CHECK(render(act({np("garden", true, "the")}, "eat", np("apple", false, "the"))).first == "the gardens eat the apple");  // the sampler's job, not render's
}

TEST_CASE("toy_corpus::render and the lexicon lookups refuse what is not in the lexicon or not grammatical") {
  CHECK_THROWS_WITH_AS(toy_corpus::noun("unicorn"), "toy_corpus: no noun 'unicorn' in the lexicon", RangeError);
  CHECK_THROWS_WITH_AS(toy_corpus::render(be({np("car", false, "two")}, "red")), "toy_corpus::render: the determiner two takes no singular noun",
                       RangeError);
  CHECK_THROWS_WITH_AS(toy_corpus::render(be(std::vector<NounPhrase>{}, "red")), "toy_corpus::render: the clause has no subject", RangeError);
  Clause c = be("i", "tall");
  c.predicate = 99;
  CHECK_THROWS_WITH_AS(toy_corpus::render(c), "toy_corpus::render: adjective index 99 is outside [0, 19)", RangeError);
}

TEST_CASE("toy_corpus: the lexicon can be read back from the English alone, and the held-out combinations can occur") {
  const English english;
  // No word is two things, so the analysis above is unambiguous.
  for (const auto& n : toy_corpus::nouns) {
    for (const char* w : {n.english, n.english_plural}) {
      CAPTURE(w);
      CHECK_FALSE(english.is_verb(w));
      CHECK_FALSE(english.is_adjective(w));
      CHECK_FALSE(english.is_pronoun(w));
    }
  }
  for (const auto& h : toy_corpus::held_out_noun_adjective) {
    CAPTURE(h.first);
    CAPTURE(h.second);
    CHECK((toy_corpus::adjectives[toy_corpus::adjective(h.second)].fits & toy_corpus::nouns[toy_corpus::noun(h.first)].kinds) != 0);
  }
  for (const auto& h : toy_corpus::held_out_subject_verb) {
    CAPTURE(h.first);
    const unsigned subjects = toy_corpus::verbs[toy_corpus::verb(h.second)].subjects;
    if (english.is_pronoun(h.first)) {
      CHECK((subjects & toy_corpus::kind::person) != 0);
      CHECK(std::string(h.first) != "i");  // "yo", "tú", "nosotros" and their verb forms go with one pronoun each:
      CHECK(std::string(h.first) != "you");  // held out, the forms would never be seen in training
      CHECK(std::string(h.first) != "we");
    } else {
      CHECK((subjects & toy_corpus::nouns[toy_corpus::noun(h.first)].kinds) != 0);
    }
  }
  // The sampler's "be" needs a third adjective for two nouns of one sort that have one each.
  const unsigned sorts[] = {toy_corpus::kind::person, toy_corpus::kind::animal, toy_corpus::kind::thing, toy_corpus::kind::place};
  for (const auto& a : toy_corpus::nouns) {
    for (const auto& b : toy_corpus::nouns) {
      bool same_sort = false;
      for (unsigned s : sorts) same_sort = same_sort || ((a.kinds & s) && (b.kinds & s));
      if (!same_sort) continue;
      int shared = 0;
      for (const auto& adj : toy_corpus::adjectives) shared += (adj.fits & a.kinds) && (adj.fits & b.kinds);
      CAPTURE(a.english);
      CAPTURE(b.english);
      CHECK(shared >= 3);
    }
  }
}

TEST_CASE("toy_corpus::make_corpus: the default corpus, its held-out split and its vocabulary") {
  const toy_corpus::Corpus corpus = toy_corpus::make_corpus();
  REQUIRE(corpus.train.size() == 30000);
  REQUIRE(corpus.test.size() == 1000);
  const English english;

  std::map<std::string, std::string> spanish_of;  // every English sentence once, in both splits together
  std::set<std::string> english_words, spanish_words;
  for (const auto& [en, es] : corpus.train) {
    CHECK(spanish_of.emplace(en, es).second);
    for (const std::string& w : words_of(en)) english_words.insert(w);
    for (const std::string& w : words_of(es)) spanish_words.insert(w);
  }
  std::set<std::string> held_out_seen;
  for (const Pair& pair : corpus.test) {
    const std::string& en = pair.first;
    const std::string& es = pair.second;
    CHECK(spanish_of.emplace(en, es).second);  // neither in the training split nor twice in the test split
    for (const std::string& w : words_of(en)) CHECK(english_words.count(w) == 1);
    for (const std::string& w : words_of(es)) CHECK(spanish_words.count(w) == 1);
    const std::set<std::string> held_out = held_out_in(english, en);
    CAPTURE(en);
    CHECK_FALSE(held_out.empty());
    held_out_seen.insert(held_out.begin(), held_out.end());
  }
  // Every held-out combination is tested.
  CHECK(held_out_seen.size() == std::size(toy_corpus::held_out_noun_adjective) + std::size(toy_corpus::held_out_subject_verb));

  std::size_t longest_english = 0, longest_spanish = 0;
  for (const Pair& pair : corpus.train) {
    const std::string& en = pair.first;
    const std::string& es = pair.second;
    CAPTURE(en);
    CHECK(held_out_in(english, en).empty());
    CHECK(well_formed(en, false));
    CHECK(well_formed(es, true));
    longest_english = std::max(longest_english, words_of(en).size());
    longest_spanish = std::max(longest_spanish, words_of(es).size());
  }
  for (const auto& [en, es] : corpus.test) {
    CHECK(well_formed(en, false));
    CHECK(well_formed(es, true));
  }
  // The Spanish side too: no held-out adjective right after its noun ("coche rojo", "coches muy rojos").
  for (const auto& h : toy_corpus::held_out_noun_adjective) {
    const auto& n = toy_corpus::nouns[toy_corpus::noun(h.first)];
    const auto& a = toy_corpus::adjectives[toy_corpus::adjective(h.second)];
    std::vector<std::string> phrases;
    for (const char* noun : {n.spanish, n.spanish_plural})
      for (const char* adjective : a.spanish)
        for (const char* very : {" ", " muy "}) phrases.push_back(std::string(" ") + noun + very + adjective + " ");
    std::size_t found = 0;
    for (const auto& [en, es] : corpus.train)
      for (const std::string& phrase : phrases) found += (" " + es + " ").find(phrase) != std::string::npos;
    CAPTURE(h.first);
    CHECK(found == 0);
  }
  // Small enough to learn in minutes (the figures of docs/toy_corpus.md).
  CHECK(english_words.size() == 203);
  CHECK(spanish_words.size() == 368);
  CHECK(longest_english == toy_corpus::max_words);
  CHECK(longest_spanish == toy_corpus::max_words);
}

TEST_CASE("toy_corpus::make_corpus: one corpus for a seed, another for another seed") {
  toy_corpus::Options options;
  options.train_pairs = 2000;
  options.test_pairs = 100;
  const toy_corpus::Corpus a = toy_corpus::make_corpus(options);
  const toy_corpus::Corpus b = toy_corpus::make_corpus(options);
  CHECK(a.train == b.train);
  CHECK(a.test == b.test);
  CHECK(a.train.size() == 2000);
  CHECK(a.test.size() == 100);
  options.seed = 1;
  const toy_corpus::Corpus c = toy_corpus::make_corpus(options);
  CHECK(c.train != a.train);
  CHECK(c.test != a.test);
  // The seed's first pairs, pinned: the sampler draws the same on every platform (core/random.hpp).
  CHECK(a.train[0] == Pair{"the egg is very small", "el huevo es muy pequeño"});
  CHECK(a.train[1] == Pair{"those people are not strong", "esas personas no son fuertes"});
}

TEST_CASE("toy_corpus::make_corpus: a small corpus too tests only words it trains, and no pair twice") {
  // 300 training pairs hold 290 of the 368 Spanish words of the default corpus: many held-out pairs drawn have a word
  // they lack, and are left out.
  toy_corpus::Options options;
  options.train_pairs = 300;
  options.test_pairs = 100;
  const toy_corpus::Corpus corpus = toy_corpus::make_corpus(options);
  REQUIRE(corpus.test.size() == 100);
  std::set<std::string> english_words, spanish_words, english;
  for (const auto& [en, es] : corpus.train) {
    for (const std::string& w : words_of(en)) english_words.insert(w);
    for (const std::string& w : words_of(es)) spanish_words.insert(w);
    english.insert(en);
  }
  CHECK(spanish_words.size() < 300);
  const English analysis;
  for (const Pair& pair : corpus.test) {
    const std::string& en = pair.first;
    const std::string& es = pair.second;
    CAPTURE(en);
    for (const std::string& w : words_of(en)) CHECK(english_words.count(w) == 1);
    for (const std::string& w : words_of(es)) CHECK(spanish_words.count(w) == 1);
    CHECK_FALSE(held_out_in(analysis, en).empty());
    english.insert(en);
  }
  CHECK(english.size() == 400);
}

TEST_CASE("toy_corpus::make_corpus: refuses more pairs than it gives") {
  toy_corpus::Options options;
  options.train_pairs = toy_corpus::max_pairs + 1;
  CHECK_THROWS_WITH_AS(toy_corpus::make_corpus(options),
                       "toy_corpus::make_corpus: asked for 2000001 training and 1000 test pairs; at most 2000000 each", RangeError);
}

TEST_CASE("toy_corpus::write_pairs and read_pairs: one english<TAB>spanish pair a line, read back the same") {
  toy_corpus::Options options;
  options.train_pairs = 50;
  options.test_pairs = 10;
  const toy_corpus::Corpus corpus = toy_corpus::make_corpus(options);
  const testing::TempDir dir;
  toy_corpus::write_corpus(dir.path() + "/corpus", corpus, false);
  CHECK(toy_corpus::read_pairs(dir.path() + "/corpus/train.tsv") == corpus.train);
  CHECK(toy_corpus::read_pairs(dir.path() + "/corpus/test.tsv") == corpus.test);
  const std::string text = testing::read_text_file(dir.path() + "/corpus/test.tsv");
  CHECK(text.rfind(corpus.test[0].first + "\t" + corpus.test[0].second + "\n", 0) == 0);
  CHECK(std::count(text.begin(), text.end(), '\n') == 10);
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/corpus/test.tsv.tmp"));
  // Either file there already: refused before anything is written, unless overwriting is asked for.
  const std::string train = dir.path() + "/corpus/train.tsv";
  CHECK_THROWS_WITH_AS(toy_corpus::write_corpus(dir.path() + "/corpus", corpus, false), (train + ": exists already; not overwritten").c_str(), IoError);
  toy_corpus::Corpus other = corpus;
  other.train.resize(3);
  toy_corpus::write_corpus(dir.path() + "/corpus", other, true);
  CHECK(toy_corpus::read_pairs(train).size() == 3);
  CHECK_THROWS_WITH_AS(toy_corpus::write_pairs(train, {{"a\tb", "c"}}),
                       (train + ": pair 1 has the side 'a\\tb'; expected a non-empty sentence without tab or line break").c_str(), RangeError);
  CHECK_THROWS_WITH_AS(toy_corpus::write_pairs(train, {{"a", "b"}, {"c", ""}}),
                       (train + ": pair 2 has the side ''; expected a non-empty sentence without tab or line break").c_str(), RangeError);
  CHECK(toy_corpus::read_pairs(train).size() == 3);  // left as it was
}

TEST_CASE("toy_corpus::read_pairs: a malformed line is refused with the file and its line number") {
  const testing::TempFile f;
  const std::string p = f.path();
  auto error = [&](const std::string& text) {
    f.write(text);
    try {
      toy_corpus::read_pairs(p);
    } catch (const FormatError& e) {
      return std::string(e.what());
    }
    return std::string("no FormatError");
  };
  const std::string good = "the car\tel coche\n";
  CHECK(error(good + "the dog el perro\n") == p + ": line 2: no tab; expected english<TAB>spanish, with exactly one tab");
  CHECK(error(good + good + "a\tb\tc\n") == p + ": line 3: 2 tabs; expected english<TAB>spanish, with exactly one tab");
  CHECK(error(good + "\n") == p + ": line 2: no tab; expected english<TAB>spanish, with exactly one tab");
  CHECK(error("\tel perro\n") == p + ": line 1: the English side (before the tab) is empty");
  CHECK(error(good + "the dog\t") == p + ": line 2: the Spanish side (after the tab) is empty");
  CHECK(error(good + "the dog\tel perro\r\n") ==
        p + ": line 2: ends in a carriage return (a Windows line end); expected lines ending in \\n alone");
  CHECK(error(good + "the fish\tel pez \xff\n") == p + ": line 2: invalid UTF-8 at byte 16 (0xff); 0xff never occurs in UTF-8");
  CHECK(error("") == p + ": holds no pairs; expected english<TAB>spanish lines");
  f.write(good + "the red cars\tlos coches rojos");  // no newline at the end: still a line
  CHECK(toy_corpus::read_pairs(p) == std::vector<Pair>{{"the car", "el coche"}, {"the red cars", "los coches rojos"}});
  CHECK_THROWS_WITH_AS(toy_corpus::read_pairs(p + ".missing"), (p + ".missing: cannot open: No such file or directory").c_str(), IoError);
}
