// examples/translator/toy_corpus.hpp: a toy English -> Spanish parallel corpus, drawn from a small lexicon and a few
// grammar rules, for a Transformer to learn from scratch in minutes (docs/toy_corpus.md has the rules and examples).
// The rules make the model translate, not copy words one by one: the adjective follows the noun in Spanish; articles,
// determiners and adjectives agree with the noun in gender and number; verbs take person and tense (present, past);
// English "does not" / "did not" is Spanish "no" before the verb; irregular forms on both sides (ser, ir, tener, hacer,
// venir; men, mice, lápices, jardines); a + el = al, de + el = del, and the personal "a" before a person as object.
// make_corpus() draws sentences with eigenformer::Random, so a seed gives the same corpus on every platform, and splits
// them: the (noun, adjective) and (subject, verb) combinations of held_out_noun_adjective and held_out_subject_verb
// never occur in a training pair, every test pair holds at least one of them, and every word of the test pairs occurs
// in the training pairs. A test pair is a new combination of known words: it measures generalisation, not memory.
// Files hold one "english<TAB>spanish" pair a line (write_pairs, read_pairs, write_corpus: train.tsv and test.tsv).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include <eigenformer/core/bounded_reader.hpp>
#include <eigenformer/core/error.hpp>
#include <eigenformer/core/output_file.hpp>
#include <eigenformer/core/random.hpp>
#include <eigenformer/text/utf8.hpp>

namespace toy_corpus {

using Pair = std::pair<std::string, std::string>;  // (english, spanish)

// ---------------------------------------------------------------------------------------------------------------------
// The lexicon. English words are lowercase ("i" too); Spanish keeps its accents (UTF-8).

// What a noun can be: the verbs and adjectives that go with it are chosen by these bits.
namespace kind {
inline constexpr unsigned person = 1u << 0;     // subject of every verb; as object it takes the personal "a"
inline constexpr unsigned animal = 1u << 1;     // subject of eat, see, find, break, look for, go, come
inline constexpr unsigned thing = 1u << 2;      // object of buy, sell, have, see, find, look for
inline constexpr unsigned food = 1u << 3;       // object of eat
inline constexpr unsigned vehicle = 1u << 4;    // fast or slow
inline constexpr unsigned place = 1u << 5;      // where one goes to and comes from
inline constexpr unsigned openable = 1u << 6;   // object of open, close
inline constexpr unsigned writable = 1u << 7;   // object of write
inline constexpr unsigned washable = 1u << 8;   // object of wash
inline constexpr unsigned makeable = 1u << 9;   // object of make
inline constexpr unsigned breakable = 1u << 10; // object of break
inline constexpr unsigned any = ~0u;
}  // namespace kind

enum class Gender { masculine, feminine };

struct Noun {
  const char* english;
  const char* english_plural;
  const char* spanish;
  const char* spanish_plural;
  Gender gender;   // of the Spanish noun: "la moto" is feminine, "el mapa" masculine
  unsigned kinds;  // kind:: bits
};

inline constexpr Noun nouns[] = {
    // people
    {"boy", "boys", "niño", "niños", Gender::masculine, kind::person},
    {"girl", "girls", "niña", "niñas", Gender::feminine, kind::person},
    {"man", "men", "hombre", "hombres", Gender::masculine, kind::person},
    {"woman", "women", "mujer", "mujeres", Gender::feminine, kind::person},
    {"king", "kings", "rey", "reyes", Gender::masculine, kind::person},
    {"queen", "queens", "reina", "reinas", Gender::feminine, kind::person},
    {"brother", "brothers", "hermano", "hermanos", Gender::masculine, kind::person},
    {"sister", "sisters", "hermana", "hermanas", Gender::feminine, kind::person},
    {"person", "people", "persona", "personas", Gender::feminine, kind::person},
    // animals
    {"dog", "dogs", "perro", "perros", Gender::masculine, kind::animal},
    {"cat", "cats", "gato", "gatos", Gender::masculine, kind::animal},
    {"horse", "horses", "caballo", "caballos", Gender::masculine, kind::animal},
    {"bird", "birds", "pájaro", "pájaros", Gender::masculine, kind::animal},
    {"cow", "cows", "vaca", "vacas", Gender::feminine, kind::animal},
    {"mouse", "mice", "ratón", "ratones", Gender::masculine, kind::animal},
    // things
    {"car", "cars", "coche", "coches", Gender::masculine, kind::thing | kind::vehicle | kind::washable},
    {"motorcycle", "motorcycles", "moto", "motos", Gender::feminine, kind::thing | kind::vehicle | kind::washable},
    {"train", "trains", "tren", "trenes", Gender::masculine, kind::thing | kind::vehicle},
    {"book", "books", "libro", "libros", Gender::masculine, kind::thing | kind::openable | kind::writable},
    {"letter", "letters", "carta", "cartas", Gender::feminine, kind::thing | kind::openable | kind::writable},
    {"box", "boxes", "caja", "cajas", Gender::feminine, kind::thing | kind::openable | kind::makeable | kind::breakable},
    {"door", "doors", "puerta", "puertas", Gender::feminine, kind::thing | kind::openable | kind::breakable},
    {"window", "windows", "ventana", "ventanas", Gender::feminine, kind::thing | kind::openable | kind::washable | kind::breakable},
    {"table", "tables", "mesa", "mesas", Gender::feminine, kind::thing | kind::makeable | kind::breakable},
    {"chair", "chairs", "silla", "sillas", Gender::feminine, kind::thing | kind::makeable | kind::breakable},
    {"pencil", "pencils", "lápiz", "lápices", Gender::masculine, kind::thing | kind::breakable},
    {"map", "maps", "mapa", "mapas", Gender::masculine, kind::thing},
    {"photo", "photos", "foto", "fotos", Gender::feminine, kind::thing},
    {"bag", "bags", "bolsa", "bolsas", Gender::feminine, kind::thing | kind::openable},
    {"plate", "plates", "plato", "platos", Gender::masculine, kind::thing | kind::washable | kind::breakable},
    {"key", "keys", "llave", "llaves", Gender::feminine, kind::thing},
    {"shirt", "shirts", "camisa", "camisas", Gender::feminine, kind::thing | kind::washable},
    {"hat", "hats", "sombrero", "sombreros", Gender::masculine, kind::thing},
    {"flower", "flowers", "flor", "flores", Gender::feminine, kind::thing},
    // food
    {"apple", "apples", "manzana", "manzanas", Gender::feminine, kind::thing | kind::food},
    {"orange", "oranges", "naranja", "naranjas", Gender::feminine, kind::thing | kind::food},
    {"cake", "cakes", "pastel", "pasteles", Gender::masculine, kind::thing | kind::food | kind::makeable},
    {"egg", "eggs", "huevo", "huevos", Gender::masculine, kind::thing | kind::food},
    {"cookie", "cookies", "galleta", "galletas", Gender::feminine, kind::thing | kind::food | kind::makeable},
    {"tomato", "tomatoes", "tomate", "tomates", Gender::masculine, kind::thing | kind::food},
    // places ("house" is a thing too: one buys, paints and sees it)
    {"house", "houses", "casa", "casas", Gender::feminine, kind::place | kind::thing},
    {"park", "parks", "parque", "parques", Gender::masculine, kind::place},
    {"market", "markets", "mercado", "mercados", Gender::masculine, kind::place},
    {"school", "schools", "escuela", "escuelas", Gender::feminine, kind::place},
    {"beach", "beaches", "playa", "playas", Gender::feminine, kind::place},
    {"city", "cities", "ciudad", "ciudades", Gender::feminine, kind::place},
    {"garden", "gardens", "jardín", "jardines", Gender::masculine, kind::place},
    {"river", "rivers", "río", "ríos", Gender::masculine, kind::place},
    {"forest", "forests", "bosque", "bosques", Gender::masculine, kind::place},
    {"church", "churches", "iglesia", "iglesias", Gender::feminine, kind::place},
};

// Spanish forms are indexed by agreement(): masculine singular, feminine singular, masculine plural, feminine plural.
inline int agreement(Gender gender, bool plural) { return (plural ? 2 : 0) + (gender == Gender::feminine ? 1 : 0); }

struct Adjective {
  const char* english;
  const char* spanish[4];  // by agreement()
  unsigned fits;           // kind:: bits of the nouns it describes
};

inline constexpr Adjective adjectives[] = {
    {"red", {"rojo", "roja", "rojos", "rojas"}, kind::thing},
    {"white", {"blanco", "blanca", "blancos", "blancas"}, kind::thing | kind::animal},
    {"black", {"negro", "negra", "negros", "negras"}, kind::thing | kind::animal},
    {"yellow", {"amarillo", "amarilla", "amarillos", "amarillas"}, kind::thing},
    {"green", {"verde", "verde", "verdes", "verdes"}, kind::thing},
    {"blue", {"azul", "azul", "azules", "azules"}, kind::thing},
    {"big", {"grande", "grande", "grandes", "grandes"}, kind::thing | kind::animal | kind::place},
    {"small", {"pequeño", "pequeña", "pequeños", "pequeñas"}, kind::thing | kind::animal | kind::place | kind::person},
    {"new", {"nuevo", "nueva", "nuevos", "nuevas"}, kind::thing | kind::place},
    {"old", {"viejo", "vieja", "viejos", "viejas"}, kind::thing | kind::place | kind::person | kind::animal},
    {"young", {"joven", "joven", "jóvenes", "jóvenes"}, kind::person | kind::animal},
    {"tall", {"alto", "alta", "altos", "altas"}, kind::person},
    {"fast", {"rápido", "rápida", "rápidos", "rápidas"}, kind::vehicle | kind::animal | kind::person},
    {"slow", {"lento", "lenta", "lentos", "lentas"}, kind::vehicle | kind::animal | kind::person},
    {"beautiful", {"bonito", "bonita", "bonitos", "bonitas"}, kind::thing | kind::animal | kind::place},
    {"heavy", {"pesado", "pesada", "pesados", "pesadas"}, kind::thing},
    {"cheap", {"barato", "barata", "baratos", "baratas"}, kind::thing},
    {"expensive", {"caro", "cara", "caros", "caras"}, kind::thing},
    {"strong", {"fuerte", "fuerte", "fuertes", "fuertes"}, kind::person | kind::animal},
};

struct Determiner {
  const char* english_singular;  // nullptr: not used with a singular noun
  const char* english_plural;    // nullptr: not used with a plural noun
  const char* spanish[4];        // by agreement(); nullptr where the English is
  int weight_singular, weight_plural;  // how often it is drawn, in percent of the noun phrases of that number
};

inline constexpr Determiner determiners[] = {
    {"the", "the", {"el", "la", "los", "las"}, 45, 45},
    {"a", "some", {"un", "una", "unos", "unas"}, 20, 12},  // "a" is "an" before a vowel
    {"this", "these", {"este", "esta", "estos", "estas"}, 8, 8},
    {"that", "those", {"ese", "esa", "esos", "esas"}, 7, 7},
    {"my", "my", {"mi", "mi", "mis", "mis"}, 4, 4},
    {"your", "your", {"tu", "tu", "tus", "tus"}, 4, 4},
    {"his", "his", {"su", "su", "sus", "sus"}, 3, 3},
    {"her", "her", {"su", "su", "sus", "sus"}, 3, 3},
    {"our", "our", {"nuestro", "nuestra", "nuestros", "nuestras"}, 3, 3},
    {"their", "their", {"su", "su", "sus", "sus"}, 3, 3},
    {nullptr, "two", {nullptr, nullptr, "dos", "dos"}, 0, 4},
    {nullptr, "three", {nullptr, nullptr, "tres", "tres"}, 0, 4},
};

namespace detail {
constexpr int determiner_weights(bool plural) {
  int sum = 0;
  for (const Determiner& d : determiners) sum += plural ? d.weight_plural : d.weight_singular;
  return sum;
}
}  // namespace detail
static_assert(detail::determiner_weights(false) == 100 && detail::determiner_weights(true) == 100,
              "the sampler draws determiners from weights that add up to 100");

// Persons, as the columns of the verb tables: 0 I, 1 you (singular, "tú"), 2 he / she / a singular noun,
// 3 we, 4 they / a plural noun / two nouns joined by "and".
struct Pronoun {
  const char* english;
  const char* spanish;
  int person;
  Gender gender;  // of an adjective after "be": "we", "they", "i" and "you" take the masculine, Spanish's default
};

inline constexpr Pronoun pronouns[] = {
    {"i", "yo", 0, Gender::masculine},        {"you", "tú", 1, Gender::masculine},       {"he", "él", 2, Gender::masculine},
    {"she", "ella", 2, Gender::feminine},     {"we", "nosotros", 3, Gender::masculine},  {"they", "ellos", 4, Gender::masculine},
};

struct Verb {
  const char* english;          // base form, after "to", "do not", "did not": "look"
  const char* english_third;    // present, he / she: "looks"
  const char* english_past;     // "looked"
  const char* english_particle; // a word after the verb: "look for", "go to", "come from"; "" for none
  const char* spanish_present[5];
  const char* spanish_past[5];  // the preterite
  const char* spanish_preposition;  // before the object: "ir a", "venir de"; "" for none (then a person takes "a")
  unsigned subjects;            // kind:: bits of a noun that may be its subject (pronouns always may)
  unsigned objects;             // kind:: bits of its object
};

inline constexpr Verb verbs[] = {
    {"eat", "eats", "ate", "", {"como", "comes", "come", "comemos", "comen"}, {"comí", "comiste", "comió", "comimos", "comieron"}, "",
     kind::person | kind::animal, kind::food},
    {"buy", "buys", "bought", "", {"compro", "compras", "compra", "compramos", "compran"},
     {"compré", "compraste", "compró", "compramos", "compraron"}, "", kind::person, kind::thing | kind::animal},
    {"sell", "sells", "sold", "", {"vendo", "vendes", "vende", "vendemos", "venden"}, {"vendí", "vendiste", "vendió", "vendimos", "vendieron"},
     "", kind::person, kind::thing | kind::animal},
    {"have", "has", "had", "", {"tengo", "tienes", "tiene", "tenemos", "tienen"}, {"tuve", "tuviste", "tuvo", "tuvimos", "tuvieron"}, "",
     kind::person, kind::thing | kind::animal},
    {"see", "sees", "saw", "", {"veo", "ves", "ve", "vemos", "ven"}, {"vi", "viste", "vio", "vimos", "vieron"}, "",
     kind::person | kind::animal, kind::thing | kind::person | kind::place},
    {"open", "opens", "opened", "", {"abro", "abres", "abre", "abrimos", "abren"}, {"abrí", "abriste", "abrió", "abrimos", "abrieron"}, "",
     kind::person, kind::openable},
    {"close", "closes", "closed", "", {"cierro", "cierras", "cierra", "cerramos", "cierran"},
     {"cerré", "cerraste", "cerró", "cerramos", "cerraron"}, "", kind::person, kind::openable},
    {"write", "writes", "wrote", "", {"escribo", "escribes", "escribe", "escribimos", "escriben"},
     {"escribí", "escribiste", "escribió", "escribimos", "escribieron"}, "", kind::person, kind::writable},
    {"wash", "washes", "washed", "", {"lavo", "lavas", "lava", "lavamos", "lavan"}, {"lavé", "lavaste", "lavó", "lavamos", "lavaron"}, "",
     kind::person, kind::washable},
    {"find", "finds", "found", "", {"encuentro", "encuentras", "encuentra", "encontramos", "encuentran"},
     {"encontré", "encontraste", "encontró", "encontramos", "encontraron"}, "", kind::person | kind::animal, kind::thing | kind::person},
    {"make", "makes", "made", "", {"hago", "haces", "hace", "hacemos", "hacen"}, {"hice", "hiciste", "hizo", "hicimos", "hicieron"}, "",
     kind::person, kind::makeable},
    {"break", "breaks", "broke", "", {"rompo", "rompes", "rompe", "rompemos", "rompen"}, {"rompí", "rompiste", "rompió", "rompimos", "rompieron"},
     "", kind::person | kind::animal, kind::breakable},
    {"help", "helps", "helped", "", {"ayudo", "ayudas", "ayuda", "ayudamos", "ayudan"}, {"ayudé", "ayudaste", "ayudó", "ayudamos", "ayudaron"},
     "", kind::person, kind::person},
    {"look", "looks", "looked", "for", {"busco", "buscas", "busca", "buscamos", "buscan"}, {"busqué", "buscaste", "buscó", "buscamos", "buscaron"},
     "", kind::person | kind::animal, kind::thing | kind::person},
    {"go", "goes", "went", "to", {"voy", "vas", "va", "vamos", "van"}, {"fui", "fuiste", "fue", "fuimos", "fueron"}, "a",
     kind::person | kind::animal, kind::place},
    {"come", "comes", "came", "from", {"vengo", "vienes", "viene", "venimos", "vienen"}, {"vine", "viniste", "vino", "vinimos", "vinieron"},
     "de", kind::person | kind::animal, kind::place},
};

// "be" + adjective, Spanish "ser". Its past is the imperfect ("era"), the tense Spanish uses for what something was
// like, not the preterite ("fue").
inline constexpr const char* be_present[5] = {"am", "are", "is", "are", "are"};
inline constexpr const char* be_past[5] = {"was", "were", "was", "were", "were"};
inline constexpr const char* ser_present[5] = {"soy", "eres", "es", "somos", "son"};
inline constexpr const char* ser_past[5] = {"era", "eras", "era", "éramos", "eran"};

// The combinations reserved for the test split, by English lemma. A noun and an adjective combine when the adjective
// describes the noun ("the red car", "el coche rojo") or is said of it ("the cars are not red"); a subject (a pronoun,
// or the noun of a subject) and a verb when it is that verb's subject ("she goes to", "the boy and the cat saw").
struct Combination {
  const char* first;   // the noun, or the subject
  const char* second;  // the adjective, or the verb (base form: "look" for "look for")
};

inline constexpr Combination held_out_noun_adjective[] = {
    {"car", "red"},      {"apple", "yellow"}, {"house", "white"},     {"dog", "black"},       {"girl", "tall"},   {"man", "old"},
    {"woman", "young"},  {"book", "new"},     {"city", "beautiful"},  {"motorcycle", "fast"}, {"map", "old"},     {"mouse", "white"},
    {"garden", "big"},   {"pencil", "blue"},  {"cow", "small"},       {"photo", "beautiful"},
};
inline constexpr Combination held_out_subject_verb[] = {
    {"she", "go"},  {"he", "have"},   {"they", "eat"},  {"boy", "see"},
    {"girl", "buy"}, {"woman", "write"}, {"king", "help"}, {"dog", "come"},
};

// At most this many words on either side of a pair: BOS + 12 + EOS = 14 positions.
inline constexpr std::size_t max_words = 12;

// The index of the entry whose English is `english` in nouns, adjectives, verbs, pronouns or determiners (singular
// or plural form); RangeError if there is none.
template <typename Table>
int index_of(const Table& table, std::string_view english, const char* what) {
  for (std::size_t i = 0; i < std::size(table); ++i) {
    const auto& entry = table[i];
    if constexpr (std::is_same_v<std::decay_t<decltype(entry)>, Determiner>) {
      if ((entry.english_singular && english == entry.english_singular) || (entry.english_plural && english == entry.english_plural))
        return static_cast<int>(i);
    } else if (english == entry.english) {
      return static_cast<int>(i);
    }
  }
  throw eigenformer::RangeError(std::string("toy_corpus: no ") + what + " " + eigenformer::quote(english) + " in the lexicon");
}
inline int noun(std::string_view english) { return index_of(nouns, english, "noun"); }
inline int adjective(std::string_view english) { return index_of(adjectives, english, "adjective"); }
inline int verb(std::string_view english) { return index_of(verbs, english, "verb"); }
inline int pronoun(std::string_view english) { return index_of(pronouns, english, "pronoun"); }
inline int determiner(std::string_view english) { return index_of(determiners, english, "determiner"); }

// ---------------------------------------------------------------------------------------------------------------------
// One sentence, as indices into the lexicon, and its two renderings.

struct NounPhrase {
  int noun = 0;           // nouns[]
  bool plural = false;
  int determiner = 0;     // determiners[]: "the"
  int adjective = -1;     // adjectives[]; -1 for none
  bool very = false;      // "very" before the adjective, "muy"
};

struct Clause {
  int pronoun = -1;                  // pronouns[]; -1: the subject is `subjects`
  std::vector<NounPhrase> subjects;  // one noun phrase, or two joined by "and" / "y"
  int verb = -1;                     // verbs[]; -1: "be" + `predicate`
  bool past = false;
  bool negated = false;
  NounPhrase object;                 // the verb's object or place (verb >= 0)
  int predicate = -1;                // adjectives[]: what the subject is (verb == -1)
  bool predicate_very = false;
};

namespace detail {

inline bool starts_with_vowel(std::string_view word) { return !word.empty() && std::strchr("aeiou", word[0]) != nullptr; }

template <typename Table>
const auto& entry(const Table& table, int i, const char* what) {
  if (i < 0 || static_cast<std::size_t>(i) >= std::size(table))
    throw eigenformer::RangeError(std::string("toy_corpus::render: ") + what + " index " + std::to_string(i) + " is outside [0, " +
                                  std::to_string(std::size(table)) + ")");
  return table[i];
}

// "the very old men" -> words of `english`; "los hombres muy viejos" -> words of `spanish`.
inline void render_noun_phrase(const NounPhrase& np, std::vector<std::string>& english, std::vector<std::string>& spanish) {
  const Noun& n = entry(nouns, np.noun, "noun");
  const Determiner& d = entry(determiners, np.determiner, "determiner");
  const char* det = np.plural ? d.english_plural : d.english_singular;
  if (!det)
    throw eigenformer::RangeError(std::string("toy_corpus::render: the determiner ") +
                                  (d.english_singular ? d.english_singular : d.english_plural) + " takes no " +
                                  (np.plural ? "plural" : "singular") + " noun");
  const Adjective* a = np.adjective >= 0 ? &entry(adjectives, np.adjective, "adjective") : nullptr;
  const int agree = agreement(n.gender, np.plural);
  const std::string next = np.very ? "very" : a ? a->english : np.plural ? n.english_plural : n.english;
  english.push_back(std::string_view(det) == "a" && starts_with_vowel(next) ? "an" : det);
  if (np.very) english.push_back("very");
  if (a) english.push_back(a->english);
  english.push_back(np.plural ? n.english_plural : n.english);
  spanish.push_back(d.spanish[agree]);
  spanish.push_back(np.plural ? n.spanish_plural : n.spanish);
  if (np.very) spanish.push_back("muy");
  if (a) spanish.push_back(a->spanish[agree]);
}

inline std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

}  // namespace detail

// The English and Spanish of a clause. RangeError for an index outside its table, a determiner in the wrong number
// ("two" with a singular noun) or a clause without a subject; the semantic choices (which verb takes which object)
// are the sampler's, not checked here.
inline Pair render(const Clause& c) {
  std::vector<std::string> en, es;
  int person = 2;
  Gender gender = Gender::masculine;
  bool plural = false;
  if (c.pronoun >= 0) {
    const Pronoun& p = detail::entry(pronouns, c.pronoun, "pronoun");
    en.push_back(p.english);
    es.push_back(p.spanish);
    person = p.person;
    gender = p.gender;
    plural = person >= 3;
  } else {
    if (c.subjects.empty()) throw eigenformer::RangeError("toy_corpus::render: the clause has no subject");
    gender = Gender::feminine;  // two nouns are feminine together only if both are
    for (std::size_t i = 0; i < c.subjects.size(); ++i) {
      if (i > 0) {
        en.push_back("and");
        es.push_back("y");
      }
      detail::render_noun_phrase(c.subjects[i], en, es);
      if (nouns[c.subjects[i].noun].gender == Gender::masculine) gender = Gender::masculine;
    }
    plural = c.subjects.size() > 1 || c.subjects[0].plural;
    person = plural ? 4 : 2;
  }
  if (c.negated) es.push_back("no");  // Spanish: "no" right before the verb, whatever the tense
  if (c.verb < 0) {
    const Adjective& a = detail::entry(adjectives, c.predicate, "adjective");
    en.push_back(c.past ? be_past[person] : be_present[person]);
    if (c.negated) en.push_back("not");
    es.push_back(c.past ? ser_past[person] : ser_present[person]);
    if (c.predicate_very) {
      en.push_back("very");
      es.push_back("muy");
    }
    en.push_back(a.english);
    es.push_back(a.spanish[agreement(gender, plural)]);
  } else {
    const Verb& v = detail::entry(verbs, c.verb, "verb");
    if (c.negated) {  // English: do-support, "does not see", "did not see"
      en.push_back(c.past ? "did" : person == 2 ? "does" : "do");
      en.push_back("not");
      en.push_back(v.english);
    } else {
      en.push_back(c.past ? v.english_past : person == 2 ? v.english_third : v.english);
    }
    if (*v.english_particle) en.push_back(v.english_particle);
    es.push_back(c.past ? v.spanish_past[person] : v.spanish_present[person]);
    std::vector<std::string> object;
    detail::render_noun_phrase(c.object, en, object);
    std::string preposition = v.spanish_preposition;
    if (preposition.empty() && (nouns[c.object.noun].kinds & kind::person)) preposition = "a";  // the personal "a"
    if (!preposition.empty()) {
      if (object[0] == "el") object[0] = preposition + "l";  // a + el = al, de + el = del
      else es.push_back(preposition);
    }
    es.insert(es.end(), object.begin(), object.end());
  }
  return {detail::join(en), detail::join(es)};
}

// Whether a clause (one render() accepts) holds a combination of held_out_noun_adjective or held_out_subject_verb.
inline bool holds_held_out(const Clause& c) {
  auto noun_adjective = [](int n, int a) {
    if (a < 0) return false;
    for (const Combination& h : held_out_noun_adjective)
      if (std::string_view(nouns[n].english) == h.first && std::string_view(adjectives[a].english) == h.second) return true;
    return false;
  };
  auto subject_verb = [&c](const char* subject) {
    if (c.verb < 0) return false;
    for (const Combination& h : held_out_subject_verb)
      if (std::string_view(subject) == h.first && std::string_view(verbs[c.verb].english) == h.second) return true;
    return false;
  };
  if (c.pronoun >= 0 && subject_verb(pronouns[c.pronoun].english)) return true;
  for (const NounPhrase& s : c.subjects) {
    if (noun_adjective(s.noun, s.adjective) || subject_verb(nouns[s.noun].english)) return true;
    if (c.verb < 0 && noun_adjective(s.noun, c.predicate)) return true;
  }
  return c.verb >= 0 && noun_adjective(c.object.noun, c.object.adjective);
}

// ---------------------------------------------------------------------------------------------------------------------
// Drawing clauses. Every choice is one call of eigenformer::Random, so the stream of clauses depends on the seed only.

class Sampler {
 public:
  explicit Sampler(std::uint64_t seed) : rng_(seed) {}

  // 30% "be" + adjective, 70% one of the 16 verbs; past half the time, negated 30% of the time.
  Clause clause() {
    Clause c;
    c.past = chance(0.5);
    c.negated = chance(0.3);
    if (chance(0.3)) {
      subject(c, kind::any);
      std::vector<int> fitting;  // adjectives said of every subject noun, and not already before one of them
      for (int a = 0; a < static_cast<int>(std::size(adjectives)); ++a) {
        bool ok = true;
        if (c.pronoun >= 0) ok = (adjectives[a].fits & kind::person) != 0;
        for (const NounPhrase& s : c.subjects) ok = ok && (adjectives[a].fits & nouns[s.noun].kinds) && s.adjective != a;
        if (ok) fitting.push_back(a);
      }
      // Never empty: nouns of one sort share at least three adjectives (a test checks), and at most two are excluded.
      c.predicate = fitting[static_cast<std::size_t>(pick(fitting.size()))];
      c.predicate_very = chance(0.15);
    } else {
      c.verb = pick(std::size(verbs));
      subject(c, verbs[c.verb].subjects);
      c.object = noun_phrase(verbs[c.verb].objects, 0.5, -1);
    }
    return c;
  }

 private:
  bool chance(double p) { return rng_.uniform() < p; }
  int pick(std::size_t n) { return static_cast<int>(rng_.integer(0, static_cast<std::int64_t>(n))); }

  // A pronoun (35%, when people may be the subject), or a noun phrase, joined by a second one of the same sort
  // (person, animal, thing or place) 12% of the time.
  void subject(Clause& c, unsigned kinds) {
    if ((kinds & kind::person) && chance(0.35)) {
      c.pronoun = pick(std::size(pronouns));
      return;
    }
    c.subjects.push_back(noun_phrase(kinds, 0.35, -1));
    if (chance(0.12)) {
      const unsigned sort = nouns[c.subjects[0].noun].kinds & (kind::person | kind::animal | kind::thing | kind::place);
      c.subjects.push_back(noun_phrase(kinds & sort, 0.35, c.subjects[0].noun));
    }
  }

  // A noun with one of `kinds`, not `other`; singular 60%; an adjective that fits it with probability p_adjective.
  NounPhrase noun_phrase(unsigned kinds, double p_adjective, int other) {
    NounPhrase np;
    std::vector<int> candidates;
    for (int n = 0; n < static_cast<int>(std::size(nouns)); ++n)
      if ((nouns[n].kinds & kinds) && n != other) candidates.push_back(n);
    np.noun = candidates[static_cast<std::size_t>(pick(candidates.size()))];
    np.plural = chance(0.4);
    int r = pick(100);  // the determiners' weights add up to 100 in either number
    for (np.determiner = 0;; ++np.determiner) {
      const Determiner& d = determiners[np.determiner];
      r -= np.plural ? d.weight_plural : d.weight_singular;
      if (r < 0) break;
    }
    if (chance(p_adjective)) {
      std::vector<int> fitting;
      for (int a = 0; a < static_cast<int>(std::size(adjectives)); ++a)
        if (adjectives[a].fits & nouns[np.noun].kinds) fitting.push_back(a);
      np.adjective = fitting[static_cast<std::size_t>(pick(fitting.size()))];
      np.very = chance(0.15);
    }
    return np;
  }

  eigenformer::Random rng_;
};

// ---------------------------------------------------------------------------------------------------------------------
// The corpus.

struct Options {
  std::uint64_t seed = 0;
  std::size_t train_pairs = 30000;
  std::size_t test_pairs = 1000;
};

// The most pairs make_corpus gives in either split; far below what the grammar holds.
inline constexpr std::size_t max_pairs = 2000000;

struct Corpus {
  std::vector<Pair> train, test;
};

namespace detail {

inline std::vector<std::string_view> words(std::string_view sentence) {
  std::vector<std::string_view> out;
  for (std::size_t start = 0; start <= sentence.size();) {
    std::size_t end = sentence.find(' ', start);
    if (end == std::string_view::npos) end = sentence.size();
    if (end > start) out.push_back(sentence.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace detail

// Draws clauses until options.train_pairs distinct pairs without a held-out combination are found (the training split,
// in the order drawn), then takes the test split from the drawn pairs that hold one, keeping only those whose every
// word, on both sides, occurs in the training split. Pairs longer than max_words on either side are drawn again. No
// English sentence occurs twice in the two splits (so neither does a pair: the English decides the Spanish).
// RangeError if a split is asked for more than max_pairs, or if the draws run out (100 per pair asked, and a million).
inline Corpus make_corpus(const Options& options = {}) {
  if (options.train_pairs > max_pairs || options.test_pairs > max_pairs)
    throw eigenformer::RangeError("toy_corpus::make_corpus: asked for " + std::to_string(options.train_pairs) + " training and " +
                                  std::to_string(options.test_pairs) + " test pairs; at most " + std::to_string(max_pairs) + " each");
  const std::uint64_t max_draws = 100 * static_cast<std::uint64_t>(options.train_pairs + options.test_pairs) + 1000000;
  Sampler sampler(options.seed);
  std::uint64_t draws = 0;
  // One new pair, or false if the clause drawn makes a pair too long or already drawn.
  std::unordered_set<std::string> seen_english;
  auto draw = [&](Pair& pair, bool& held_out) {
    if (++draws > max_draws)
      throw eigenformer::RangeError("toy_corpus::make_corpus: " + std::to_string(max_draws) + " sentences drawn gave only " +
                                    std::to_string(seen_english.size()) + " distinct pairs; asked for " +
                                    std::to_string(options.train_pairs) + " training and " + std::to_string(options.test_pairs) + " test pairs");
    const Clause c = sampler.clause();
    pair = render(c);
    if (detail::words(pair.first).size() > max_words || detail::words(pair.second).size() > max_words) return false;
    held_out = holds_held_out(c);
    return seen_english.insert(pair.first).second;
  };

  Corpus corpus;
  std::vector<Pair> candidates;  // held-out pairs drawn while the training split fills
  std::unordered_set<std::string> english_words, spanish_words;  // of the training split
  while (corpus.train.size() < options.train_pairs) {
    Pair pair;
    bool held_out = false;
    if (!draw(pair, held_out)) continue;
    if (held_out) {
      candidates.push_back(std::move(pair));
      continue;
    }
    for (std::string_view w : detail::words(pair.first)) english_words.emplace(w);
    for (std::string_view w : detail::words(pair.second)) spanish_words.emplace(w);
    corpus.train.push_back(std::move(pair));
  }
  auto known = [&](const Pair& pair) {
    for (std::string_view w : detail::words(pair.first))
      if (!english_words.count(std::string(w))) return false;
    for (std::string_view w : detail::words(pair.second))
      if (!spanish_words.count(std::string(w))) return false;
    return true;
  };
  for (std::size_t next = 0; corpus.test.size() < options.test_pairs;) {
    Pair pair;
    bool held_out = false;
    if (next < candidates.size()) {
      pair = std::move(candidates[next++]);
    } else if (!draw(pair, held_out) || !held_out) {
      continue;
    }
    if (known(pair)) corpus.test.push_back(std::move(pair));
  }
  return corpus;
}

// ---------------------------------------------------------------------------------------------------------------------
// Files: one pair a line, "english<TAB>spanish\n", UTF-8.

// The largest file read_pairs reads, and its longest line; both far above what make_corpus writes (2 MB for 30,000
// pairs, lines under 200 bytes).
inline constexpr std::uint64_t max_file_bytes = std::uint64_t(256) << 20;
inline constexpr std::uint64_t max_line_bytes = std::uint64_t(64) << 10;

// Writes `pairs` to `path` (through eigenformer::write_file_atomically: a temporary renamed at the end, so that a
// failure leaves no half-written file; a directory, FIFO or device at `path` refused by name). RangeError for a pair with an empty side, a tab or a line break, which would not read back; IoError when the
// file cannot be written.
inline void write_pairs(const std::string& path, const std::vector<Pair>& pairs) {
  std::string text;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    for (const std::string* side : {&pairs[i].first, &pairs[i].second}) {
      if (side->empty() || side->find_first_of("\t\r\n") != std::string::npos)
        throw eigenformer::RangeError(eigenformer::detail::printable(path) + ": pair " + std::to_string(i + 1) + " has the side " +
                                      eigenformer::quote(*side) + "; expected a non-empty sentence without tab or line break");
    }
    text += pairs[i].first + '\t' + pairs[i].second + '\n';
  }
  eigenformer::write_file_atomically(path, text);
}

// The pairs of a file that write_pairs wrote, or a person: FormatError "<path>: line N: ..." for a line that is not
// valid UTF-8, ends in a carriage return, holds no tab or more than one, or has an empty side, and for a file without
// pairs; IoError and the caps of eigenformer::BoundedReader (max_file_bytes, max_line_bytes).
inline std::vector<Pair> read_pairs(const std::string& path) {
  eigenformer::BoundedReader in = eigenformer::BoundedReader::open_file(path, "a corpus file", max_file_bytes);
  const std::string name = eigenformer::detail::printable(path);
  std::vector<Pair> pairs;
  for (std::string line; in.read_line(line, max_line_bytes);) {
    const std::string where = name + ": line " + std::to_string(in.lines()) + ": ";
    const std::size_t bad = eigenformer::find_invalid_utf8(line);
    if (bad != line.size()) throw eigenformer::FormatError(where + eigenformer::utf8_error_message(line, bad));
    if (!line.empty() && line.back() == '\r')
      throw eigenformer::FormatError(where + "ends in a carriage return (a Windows line end); expected lines ending in \\n alone");
    const std::size_t tabs = static_cast<std::size_t>(std::count(line.begin(), line.end(), '\t'));
    if (tabs != 1)
      throw eigenformer::FormatError(where + (tabs == 0 ? std::string("no tab") : std::to_string(tabs) + " tabs") +
                                     "; expected english<TAB>spanish, with exactly one tab");
    const std::size_t tab = line.find('\t');
    if (tab == 0) throw eigenformer::FormatError(where + "the English side (before the tab) is empty");
    if (tab + 1 == line.size()) throw eigenformer::FormatError(where + "the Spanish side (after the tab) is empty");
    pairs.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }
  if (pairs.empty()) throw eigenformer::FormatError(name + ": holds no pairs; expected english<TAB>spanish lines");
  return pairs;
}

// DIR/train.tsv and DIR/test.tsv, creating DIR if needed. IoError if either file exists and !overwrite (checked before
// anything is written), or if DIR cannot be created or a file written.
inline void write_corpus(const std::string& dir, const Corpus& corpus, bool overwrite) {
  const std::string train = dir + "/train.tsv", test = dir + "/test.tsv";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw eigenformer::IoError(eigenformer::detail::printable(dir) + ": cannot create the directory: " + ec.message());
  for (const std::string& path : {train, test}) {
    if (!overwrite && std::filesystem::symlink_status(path, ec).type() != std::filesystem::file_type::not_found)
      throw eigenformer::IoError(eigenformer::detail::printable(path) + ": exists already; not overwritten");
    eigenformer::check_output_path(path);  // overwriting: a file only, never a directory, FIFO or device
  }
  write_pairs(train, corpus.train);
  write_pairs(test, corpus.test);
}

}  // namespace toy_corpus
