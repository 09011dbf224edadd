#!/usr/bin/env node
// tools/check_page.mjs: opens a page that explain_html() wrote (gpt2 --explain, translator translate --explain) in
// headless Chromium and checks that it shows what its data holds, through the DOM contract written at the top of
// include/eigenformer/inspect/explain_page.hpp. Fails (exit 1, one line on stderr) on an uncaught exception, a console
// error or warning, a request for anything but a file: or data: URL, or a count or behaviour that differs from the
// data: sections, rows and cells per view, layer and head options, the map changing with the layer and the head,
// the tooltip's weight, the steps and their bars, the slider's panel, the residual map.
//
//   node tools/check_page.mjs PAGE.html [--views N] [--layers L] [--heads H] [--steps S] [--screenshot OUT.png]
//
// --layers and --heads apply to every view. Needs puppeteer-core in .deps/npm and /usr/bin/chromium (./setup.sh
// installs both; --chromium PATH or $CHROMIUM for another browser).
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const usage = "usage: node tools/check_page.mjs PAGE.html [--views N] [--layers L] [--heads H] [--steps S] " +
              "[--screenshot OUT.png] [--chromium PATH]";

class CheckFailure extends Error {}
function check(condition, message) {
  if (!condition) throw new CheckFailure(message);
}

// ---- The command line ----
function parseArguments(argv) {
  const options = { page: null, views: null, layers: null, heads: null, steps: null, screenshot: null,
                    chromium: process.env.CHROMIUM || "/usr/bin/chromium" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const count = () => {
      const v = value();
      if (!/^\d+$/.test(v)) throw new Error(`${a} takes a count, not '${v}'`);
      return Number(v);
    };
    if (a === "--views") options.views = count();
    else if (a === "--layers") options.layers = count();
    else if (a === "--heads") options.heads = count();
    else if (a === "--steps") options.steps = count();
    else if (a === "--screenshot") options.screenshot = value();
    else if (a === "--chromium") options.chromium = value();
    else if (a === "-h" || a === "--help") { console.log(usage); process.exit(0); }
    else if (a.startsWith("-")) throw new Error(`unknown option ${a}`);
    else if (options.page === null) options.page = a;
    else throw new Error(`one page only, and '${a}' is a second`);
  }
  if (options.page === null) throw new Error("no page given");
  return options;
}

// puppeteer-core from .deps/npm beside this repository, wherever the command runs from.
function loadPuppeteer() {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  const require = createRequire(path.join(root, ".deps", "npm", "package.json"));
  try {
    return require("puppeteer-core");
  } catch (e) {
    throw new CheckFailure(`puppeteer-core not found in ${path.join(root, ".deps", "npm")}; run ./setup.sh`);
  }
}

// One view's weights [L][H][T][S] as the page decodes them: little-endian uint16 q, w = q / 65535 (as a float32),
// each row stored up to its last nonzero weight (row_lengths), the rest 0.
function decodeWeights(view) {
  const bytes = Buffer.from(view.weights, "base64"), S = view.keys.length;
  const w = new Float32Array(view.row_lengths.length * S);
  let read = 0;
  view.row_lengths.forEach((kept, row) => {
    for (let j = 0; j < kept; j++, read += 2) w[row * S + j] = bytes.readUInt16LE(read) / 65535;
  });
  check(read === bytes.length, `view '${view.name}': its rows hold ${read} bytes of weights; the data has ${bytes.length}`);
  return w;
}
function block(weights, view, layer, head) {
  const size = view.queries.length * view.keys.length, start = (layer * view.heads + head) * size;
  return weights.subarray(start, start + size);
}
function maxDifference(a, b) {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
// The candidate whose map differs most from `current` (by the largest single weight change), and that change.
function mostDifferent(candidates, mapOf, current) {
  let best = null, bestDifference = -1;
  for (const c of candidates) {
    const d = maxDifference(mapOf(c), current);
    if (d > bestDifference) { best = c; bestDifference = d; }
  }
  return [best, bestDifference];
}
// A change of at least this much in one weight moves its colour by several of the page's 256 steps.
const visibleChange = 0.05;

// ---- The checks of one attention view ----
async function checkView(page, data, i, options) {
  const view = data.views[i], name = `view ${i} '${view.name}'`;
  const T = view.queries.length, S = view.keys.length;
  const sectionSelector = `section.attention[data-view="${i}"]`;
  const shape = await page.evaluate(index => {
    const s = document.querySelectorAll("section.attention")[index];
    const rows = [...s.querySelectorAll("svg.heatmap g.row")];
    return { rows: rows.length, cells: rows.map(r => r.querySelectorAll("rect.cell").length),
             layers: s.querySelectorAll("select.layer option").length,
             heads: s.querySelectorAll("select.head option").length };
  }, i);
  check(shape.rows === T, `${name}: ${shape.rows} g.row in its heatmap; expected one per query (${T})`);
  const wrongRow = shape.cells.findIndex(n => n !== S);
  check(wrongRow < 0, `${name}: row ${wrongRow} has ${shape.cells[wrongRow]} rect.cell; expected one per key (${S})`);
  check(shape.layers === view.layers, `${name}: select.layer has ${shape.layers} options; its data has ${view.layers} layers`);
  check(shape.heads === view.heads + 1,
        `${name}: select.head has ${shape.heads} options; expected ${view.heads + 1} (${view.heads} heads and "average")`);
  if (options.layers !== null)
    check(view.layers === options.layers, `${name}: ${view.layers} layers; --layers says ${options.layers}`);
  if (options.heads !== null)
    check(view.heads === options.heads, `${name}: ${view.heads} heads; --heads says ${options.heads}`);

  const weights = decodeWeights(view);
  const fills = () => page.evaluate(index => [...document.querySelectorAll("section.attention")[index]
                                               .querySelectorAll("rect.cell")].map(c => c.getAttribute("fill")), i);
  const differ = (a, b) => a.some((f, k) => f !== b[k]);
  const selected = () => page.evaluate(index => {
    const s = document.querySelectorAll("section.attention")[index];
    return [Number(s.querySelector("select.layer").value), s.querySelector("select.head").value];
  }, i);
  let [layer, head] = await selected();
  check(head !== "average", `${name}: the page opens on the average of heads; expected a single head`);
  head = Number(head);

  // Another layer, same head: the one whose map differs most from the current one.
  const notes = [];
  if (view.layers > 1) {
    const others = [...Array(view.layers).keys()].filter(l => l !== layer);
    const [other, change] = mostDifferent(others, l => block(weights, view, l, head), block(weights, view, layer, head));
    const before = await fills();
    await page.select(`${sectionSelector} select.layer`, String(other));
    if (change >= visibleChange)
      check(differ(before, await fills()), `${name}: choosing layer ${other} left the heatmap as it was`);
    else notes.push(`${view.name}: layers alike`);
    layer = other;
  }
  // Another head, same layer.
  if (view.heads > 1) {
    const others = [...Array(view.heads).keys()].filter(h => h !== head);
    const [other, change] = mostDifferent(others, h => block(weights, view, layer, h), block(weights, view, layer, head));
    const before = await fills();
    await page.select(`${sectionSelector} select.head`, String(other));
    if (change >= visibleChange)
      check(differ(before, await fills()), `${name}: choosing head ${other} left the heatmap as it was`);
    else notes.push(`${view.name}: heads alike`);
    head = other;
  }

  // The tooltip of the largest weight shown says that weight, to 4 decimals.
  const map = block(weights, view, layer, head);
  let cell = 0;
  for (let k = 1; k < map.length; k++) if (map[k] > map[cell]) cell = k;
  const q = Math.floor(cell / S), k = cell % S;
  await page.hover(`${sectionSelector} svg.heatmap g.row[data-query="${q}"] rect.cell[data-key="${k}"]`);
  const tip = await page.$eval("#tooltip", t => ({ hidden: t.hidden, text: t.textContent }));
  check(!tip.hidden, `${name}: hovering cell (${q}, ${k}) showed no tooltip`);
  const shown = /weight (\d+\.\d{4})/.exec(tip.text);
  check(shown !== null, `${name}: the tooltip of cell (${q}, ${k}) shows no weight: '${tip.text.split("\n")[0]}'`);
  check(shown[1] === map[cell].toFixed(4),
        `${name}: the tooltip of cell (${q}, ${k}) at layer ${layer}, head ${head} says ${shown[1]}; the data says ${map[cell].toFixed(4)}`);

  // A row label marks its row; "average" draws without error.
  await page.hover(`${sectionSelector} svg.heatmap text.query-label[data-query="${q}"]`);
  const marked = await page.evaluate(index => [...document.querySelectorAll("section.attention")[index]
                                                .querySelectorAll("g.row.highlight")].map(r => r.dataset.query), i);
  check(marked.length === 1 && marked[0] === String(q),
        `${name}: hovering the label of query ${q} marked rows [${marked}]; expected [${q}]`);
  await page.select(`${sectionSelector} select.head`, "average");
  check((await fills()).every(f => f && f.startsWith("rgb(")), `${name}: the average of heads left cells without a colour`);
  return notes;
}

// ---- The checks of the next-token steps ----
async function checkSteps(page, data, options) {
  const steps = data.steps;
  const blocks = await page.evaluate(() => [...document.querySelectorAll("div.step")].map(step =>
    [...step.querySelectorAll("svg.bars")].map(panel => ({ temperature: panel.dataset.temperature ?? null,
                                                           slider: panel.classList.contains("slider"),
                                                           bars: panel.querySelectorAll("rect.bar").length }))));
  check(blocks.length === steps.length, `${blocks.length} div.step; the data has ${steps.length} steps`);
  if (options.steps !== null) check(steps.length === options.steps, `${steps.length} steps; --steps says ${options.steps}`);
  if (steps.length === 0) return;
  blocks.forEach((panels, s) => {
    check(panels.length === 4, `step ${s}: ${panels.length} svg.bars; expected 4 (T = 0.5, 1, 2 and the slider's)`);
    ["0.5", "1", "2"].forEach((t, p) =>
      check(panels[p].temperature === t && !panels[p].slider, `step ${s}: panel ${p} is not the fixed T = ${t} panel`));
    check(panels[3].slider, `step ${s}: its 4th svg.bars is not the slider's panel (class "slider")`);
    const k = steps[s].top.length;
    panels.forEach((panel, p) =>
      check(panel.bars === k, `step ${s}, panel ${p}: ${panel.bars} rect.bar; expected one per token shown (${k})`));
  });

  // The slider: moving it to the other end changes the 4th panels; at T = 2 they equal the fixed T = 2 panels.
  const widths = selector => page.evaluate(sel => [...document.querySelectorAll("div.step")].map(step =>
    [...step.querySelector(sel).querySelectorAll("rect.bar")].map(b => b.getAttribute("width"))), selector);
  const temperatures = data.temperatures;
  const start = Number(await page.$eval("input#temperature", s => s.value));
  const end = start > (temperatures.length - 1) / 2 ? 0 : temperatures.length - 1;
  const before = await widths("svg.bars.slider");
  await page.focus("input#temperature");
  await page.keyboard.press(end === 0 ? "Home" : "End");
  const moved = Number(await page.$eval("input#temperature", s => s.value));
  check(moved === end, `input#temperature is at ${moved} after the key; expected ${end}`);
  const expectChange = steps.some(step => step.top.some(c => Math.abs(c.p[start] - c.p[end]) > 1e-3));
  if (expectChange) {
    const after = await widths("svg.bars.slider");
    check(after.some((row, s) => row.some((w, r) => w !== before[s][r])),
          `moving input#temperature from T = ${temperatures[start]} to ${temperatures[end]} left the 4th panels as they were`);
  }
  await page.$eval("input#temperature", (s, t) => { s.value = t; s.dispatchEvent(new Event("input", { bubbles: true })); },
                   temperatures.indexOf(2));
  const atTwo = await widths("svg.bars.slider"), fixedTwo = await widths('svg.bars[data-temperature="2"]');
  check(JSON.stringify(atTwo) === JSON.stringify(fixedTwo), "the slider's panels at T = 2 differ from the fixed T = 2 panels");
}

// ---- The residual map ----
async function checkResidual(page, data) {
  const r = data.residual, expected = r.layers.length * r.tokens.length;
  const norms = await page.evaluate(() => {
    const box = document.querySelector("svg.residual");
    return box ? box.querySelectorAll("rect.norm").length : -1;
  });
  if (expected === 0) return;
  check(norms >= 0, `no svg.residual; the data has norms for ${r.layers.length} layers`);
  check(norms === expected, `svg.residual has ${norms} rect.norm; expected ${r.layers.length} layers x ${r.tokens.length} tokens`);
}

function size(bytes) {
  return bytes >= 1e6 ? (bytes / 1e6).toFixed(1) + " MB" : (bytes / 1e3).toFixed(1) + " KB";
}

// ---- Main: open the page, collect every problem it reports, check, report one line ----
async function main() {
  let options;
  try {
    options = parseArguments(process.argv.slice(2));
  } catch (e) {
    console.error(`check_page: ${e.message}\n${usage}`);
    return 2;
  }
  const file = path.resolve(options.page), where = `check_page: ${options.page}`;
  let browser = null;
  try {
    check(fs.existsSync(file), "no such file");
    check(fs.existsSync(options.chromium), `no browser at ${options.chromium}; run ./setup.sh or give --chromium PATH`);
    const puppeteer = loadPuppeteer();
    const args = ["--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update"];
    if (process.getuid && process.getuid() === 0) args.push("--no-sandbox");  // Chromium refuses its sandbox as root
    browser = await puppeteer.launch({ executablePath: options.chromium, headless: true, args });
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });

    const problems = [];
    page.on("pageerror", e => problems.push(`uncaught exception: ${String(e.message || e).split("\n")[0]}`));
    page.on("console", m => {
      if (["error", "warn", "warning", "assert"].includes(m.type())) problems.push(`console ${m.type()}: ${m.text()}`);
    });
    await page.setRequestInterception(true);
    page.on("request", request => {
      const url = request.url();
      if (url.startsWith("file:") || url.startsWith("data:")) return request.continue();
      problems.push(`the page requested ${url}`);
      return request.abort();
    });
    const firstProblem = () => check(problems.length === 0, problems[0]);

    await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
    try {
      await page.waitForSelector("body[data-rendered]", { timeout: 20000 });
    } catch (e) {
      firstProblem();
      throw new CheckFailure("body[data-rendered] was not set within 20 s: the page did not finish rendering");
    }
    firstProblem();
    const rendered = Number(await page.$eval("body", b => b.dataset.rendered));
    const data = JSON.parse(await page.$eval("script#data", s => s.textContent));

    const sections = await page.$$eval("section.attention", s => s.length);
    if (options.views !== null) check(sections === options.views, `${sections} section.attention; --views says ${options.views}`);
    check(sections === data.views.length, `${sections} section.attention; the data has ${data.views.length} views`);
    const notes = [];
    for (let i = 0; i < data.views.length; i++) notes.push(...await checkView(page, data, i, options));
    await checkSteps(page, data, options);
    await checkResidual(page, data);
    firstProblem();
    if (options.screenshot) {
      // The top of the page (title, the first map, the first steps): the steps further down are drawn only when
      // scrolled to (content-visibility), so a full-page picture would show them empty.
      await page.mouse.move(0, 0);
      const height = await page.evaluate(() => document.documentElement.scrollHeight);
      await page.screenshot({ path: options.screenshot, clip: { x: 0, y: 0, width: 1280, height: Math.min(height, 1400) } });
    }

    const views = data.views.map(v => `${v.name} ${v.layers}x${v.heads} heads ${v.queries.length}x${v.keys.length}`);
    const residual = data.residual.layers.length ? `, residual ${data.residual.layers.length}x${data.residual.tokens.length}` : "";
    const viewList = views.length ? ` (${views.join("; ")})` : "";
    console.log(`${where} ok: ${data.views.length} view(s)${viewList}, ${data.steps.length} steps${residual}, ` +
                `rendered in ${rendered} ms, ${size(fs.statSync(file).size)}` + (notes.length ? ` (not compared: ${notes.join(", ")})` : ""));
    return 0;
  } catch (e) {
    const message = e instanceof CheckFailure ? e.message : `${e.name}: ${String(e.message).split("\n")[0]}`;
    console.error(`${where}: ${message}`);
    return 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
}

process.exitCode = await main();
