#!/usr/bin/env node
// tools/check_page.mjs: opens a page that explain_html() wrote (gpt2 --explain, translator translate --explain) in
// headless Chromium and checks that it shows what its data holds, through the DOM contract written at the top of
// include/eigenformer/inspect/explain_page.hpp. Fails (exit 1, one line on stderr) on an uncaught exception, a console
// error or warning, a request for anything but a file: or data: URL, or a count or behaviour that differs from the
// data: sections, row and column labels per view, layer and head options, the colour of every cell of the map at the
// first layer and head, at another layer, another head and the average of heads, the tooltip's weight, the marked row,
// the steps and their bars (scrolled to, as they are drawn when near the window), the slider's panel, the residual map.
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

// One view's weights as integers k [L][H][T][S] (w = k / view.weight_scale), decoded from its string (layer l from
// layer_starts[l]): for each head and query, the count n of keys kept, then n weights; each number in characters of
// the base64 alphabet, 5 bits each, most significant first, bit 32 of a character's index saying that another follows.
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
function decodeWeights(view) {
  const T = view.queries.length, S = view.keys.length, H = view.heads;
  const starts = view.layer_starts;
  check(typeof view.weights === "string" && Array.isArray(starts) && starts.length === view.layers &&
        starts.every((x, l) => Number.isInteger(x) && x >= (l ? starts[l - 1] : 0) && x <= view.weights.length) && starts[0] === 0,
        `view '${view.name}': its weights are not one string with the starts of its ${view.layers} layers`);
  check(Number.isInteger(view.weight_scale) && view.weight_scale > 0, `view '${view.name}': weight_scale is ${view.weight_scale}`);
  const k = new Uint16Array(view.layers * H * T * S);
  starts.forEach((start, l) => {
    const text = view.weights.slice(start, l + 1 < view.layers ? starts[l + 1] : view.weights.length);
    let at = 0;
    const next = () => {
      let value = 0, digit;
      do {
        check(at < text.length, `view '${view.name}', layer ${l}: the weights end early, at character ${at}`);
        digit = ALPHABET.indexOf(text[at++]);
        check(digit >= 0, `view '${view.name}', layer ${l}: character ${at - 1} ('${text[at - 1]}') is not base64`);
        value = value * 32 + (digit & 31);
      } while (digit & 32);
      return value;
    };
    for (let row = 0; row < H * T; row++) {
      const kept = next();
      check(kept <= S, `view '${view.name}', layer ${l}: a row keeps ${kept} keys of ${S}`);
      for (let j = 0; j < kept; j++) {
        const value = next();
        check(value <= view.weight_scale, `view '${view.name}', layer ${l}: a weight of ${value} / ${view.weight_scale}`);
        k[((l * H * T) + row) * S + j] = value;
      }
    }
    check(at === text.length, `view '${view.name}', layer ${l}: ${text.length - at} characters after the last row`);
  });
  return k;
}
// The map the page shows for a layer and a head (a number, or "average"), [T][S], computed as the page does.
function shownMap(k, view, layer, head) {
  const size = view.queries.length * view.keys.length, map = new Float64Array(size);
  const heads = head === "average" ? [...Array(view.heads).keys()] : [head];
  for (const h of heads) {
    const start = (layer * view.heads + h) * size;
    for (let c = 0; c < size; c++) map[c] += k[start + c];
  }
  for (let c = 0; c < size; c++) map[c] /= view.weight_scale * heads.length;
  return map;
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
// The page's colour of a weight (explain_page_assets.hpp, PALETTE): square-root scale, 256 steps from white through
// (107, 174, 214) to (8, 48, 107).
function weightColour(w) {
  const i = Math.round(Math.sqrt(Math.min(1, Math.max(0, w))) * 255), f = i / 255;
  const [a, b, t] = f < 0.5 ? [[255, 255, 255], [107, 174, 214], f / 0.5] : [[107, 174, 214], [8, 48, 107], (f - 0.5) / 0.5];
  return a.map((x, c) => Math.round(x + (b[c] - x) * t));
}

// ---- The checks of one attention view ----
async function checkView(page, data, i, options) {
  const view = data.views[i], name = `view ${i} '${view.name}'`;
  const T = view.queries.length, S = view.keys.length;
  const sectionSelector = `section.attention[data-view="${i}"]`;
  const shape = await page.evaluate(index => {
    const s = document.querySelectorAll("section.attention")[index];
    const canvas = s.querySelector("div.heatmap canvas.cells"), at = canvas && canvas.getBoundingClientRect();
    const numbers = list => [...list].map(e => Number(e.dataset.query ?? e.dataset.key));
    return { canvas: canvas ? { width: canvas.width, height: canvas.height, cell: Number(canvas.dataset.cell),
                                shownWidth: at.width, shownHeight: at.height } : null,
             queries: numbers(s.querySelectorAll("div.heatmap svg.labels text.query-label")),
             keys: numbers(s.querySelectorAll("div.heatmap svg.labels text.key-label")),
             layers: s.querySelectorAll("select.layer option").length,
             heads: s.querySelectorAll("select.head option").length };
  }, i);
  const inOrder = (list, n) => list.length === n && list.every((x, j) => x === j);
  check(shape.canvas !== null, `${name}: no canvas.cells in its div.heatmap`);
  const c = shape.canvas;
  check(c.width === S && c.height === T, `${name}: canvas.cells is ${c.width} x ${c.height} pixels; expected one per key and query (${S} x ${T})`);
  check(c.cell >= 1 && c.shownWidth === S * c.cell && c.shownHeight === T * c.cell,
        `${name}: canvas.cells is shown ${c.shownWidth} x ${c.shownHeight} px; expected ${S} x ${T} cells of ${c.cell} px`);
  check(inOrder(shape.queries, T), `${name}: ${shape.queries.length} text.query-label; expected one per query (${T}), data-query 0..${T - 1}`);
  check(inOrder(shape.keys, S), `${name}: ${shape.keys.length} text.key-label; expected one per key (${S}), data-key 0..${S - 1}`);
  check(shape.layers === view.layers, `${name}: select.layer has ${shape.layers} options; its data has ${view.layers} layers`);
  check(shape.heads === view.heads + 1,
        `${name}: select.head has ${shape.heads} options; expected ${view.heads + 1} (${view.heads} heads and "average")`);
  if (options.layers !== null)
    check(view.layers === options.layers, `${name}: ${view.layers} layers; --layers says ${options.layers}`);
  if (options.heads !== null)
    check(view.heads === options.heads, `${name}: ${view.heads} heads; --heads says ${options.heads}`);

  // Every cell's colour on the canvas against the colour of its weight in the data, for the layer and head chosen.
  const k = decodeWeights(view);
  const checkCells = async (layer, head, what) => {
    const shown = await page.evaluate(index => {
      const box = document.querySelectorAll("section.attention")[index].querySelector("div.heatmap");
      // Read through a copy: reading the page's own canvas again and again makes Chromium warn on the console.
      const canvas = box.querySelector("canvas.cells"), copy = document.createElement("canvas");
      copy.width = canvas.width;
      copy.height = canvas.height;
      const context = copy.getContext("2d", { willReadFrequently: true });
      context.drawImage(canvas, 0, 0);
      return { layer: box.dataset.layer, head: box.dataset.head,
               pixels: [...context.getImageData(0, 0, copy.width, copy.height).data] };
    }, i);
    check(shown.layer === String(layer) && shown.head === String(head),
          `${name}: after ${what}, div.heatmap says layer ${shown.layer}, head ${shown.head}; expected ${layer}, ${head}`);
    const map = shownMap(k, view, layer, head);
    for (let cell = 0; cell < T * S; cell++) {
      const want = weightColour(map[cell]), got = shown.pixels.slice(4 * cell, 4 * cell + 4);
      check(got[0] === want[0] && got[1] === want[1] && got[2] === want[2] && got[3] === 255,
            `${name}: after ${what}, cell (${Math.floor(cell / S)}, ${cell % S}) at layer ${layer}, head ${head} is ` +
            `rgba(${got}); its weight ${map[cell].toFixed(4)} is rgb(${want})`);
    }
  };
  const selected = () => page.evaluate(index => {
    const s = document.querySelectorAll("section.attention")[index];
    return [Number(s.querySelector("select.layer").value), s.querySelector("select.head").value];
  }, i);
  let [layer, head] = await selected();
  check(head !== "average", `${name}: the page opens on the average of heads; expected a single head`);
  head = Number(head);
  await checkCells(layer, head, "opening");

  // Another layer, same head: the one whose map differs most from the current one; then another head.
  if (view.layers > 1) {
    const others = [...Array(view.layers).keys()].filter(l => l !== layer);
    [layer] = mostDifferent(others, l => shownMap(k, view, l, head), shownMap(k, view, layer, head));
    await page.select(`${sectionSelector} select.layer`, String(layer));
    await checkCells(layer, head, `choosing layer ${layer}`);
  }
  if (view.heads > 1) {
    const others = [...Array(view.heads).keys()].filter(h => h !== head);
    [head] = mostDifferent(others, h => shownMap(k, view, layer, h), shownMap(k, view, layer, head));
    await page.select(`${sectionSelector} select.head`, String(head));
    await checkCells(layer, head, `choosing head ${head}`);
  }

  // The tooltip of the largest weight shown says that weight, to 4 decimals; the mouse at the middle of its cell.
  const map = shownMap(k, view, layer, head);
  let cell = 0;
  for (let c = 1; c < map.length; c++) if (map[c] > map[cell]) cell = c;
  const q = Math.floor(cell / S), key = cell % S;
  const canvasSelector = `${sectionSelector} div.heatmap canvas.cells`;
  await page.$eval(canvasSelector, e => e.scrollIntoView({ block: "center" }));
  const at = await page.$eval(canvasSelector, e => { const r = e.getBoundingClientRect(); return { x: r.left, y: r.top }; });
  await page.mouse.move(at.x + (key + 0.5) * c.cell, at.y + (q + 0.5) * c.cell);
  const tip = await page.$eval("#tooltip", t => ({ hidden: t.hidden, text: t.textContent }));
  check(!tip.hidden, `${name}: hovering cell (${q}, ${key}) showed no tooltip`);
  const shownWeight = /weight (\d+\.\d{4})/.exec(tip.text);
  check(shownWeight !== null, `${name}: the tooltip of cell (${q}, ${key}) shows no weight: '${tip.text.split("\n")[0]}'`);
  check(shownWeight[1] === map[cell].toFixed(4),
        `${name}: the tooltip of cell (${q}, ${key}) at layer ${layer}, head ${head} says ${shownWeight[1]}; the data says ${map[cell].toFixed(4)}`);
  check(tip.text.includes(`query ${q}:`) && tip.text.includes(`key   ${key}:`),
        `${name}: the tooltip of cell (${q}, ${key}) names another cell: '${tip.text.replace(/\n/g, " | ")}'`);

  // A row label marks its row (div.heatmap[data-highlight], the outline path.row-mark shown on it); "average" draws
  // every cell as the mean of the heads.
  await page.hover(`${sectionSelector} svg.labels text.query-label[data-query="${q}"]`);
  const marked = await page.evaluate(index => {
    const box = document.querySelectorAll("section.attention")[index].querySelector("div.heatmap");
    const mark = box.querySelector("path.row-mark");
    return { highlight: box.dataset.highlight, query: mark && mark.dataset.query, visible: mark && mark.getAttribute("visibility") !== "hidden" };
  }, i);
  check(marked.highlight === String(q) && marked.query === String(q) && marked.visible,
        `${name}: hovering the label of query ${q} marked row ${marked.highlight} (path.row-mark: row ${marked.query}, ` +
        `${marked.visible ? "shown" : "hidden"}); expected row ${q}, shown`);
  await page.select(`${sectionSelector} select.head`, "average");
  await checkCells(layer, "average", "choosing the average of heads");
}

// ---- The checks of the next-token steps ----
// Scrolls each element of `selector` into view in turn and waits until it holds `drawn` (the page draws what is below
// the window when it comes near).
async function reveal(page, selector, drawn, what) {
  const n = await page.$$eval(selector, e => e.length);
  for (let i = 0; i < n; i++) {
    await page.evaluate((sel, i) => document.querySelectorAll(sel)[i].scrollIntoView({ block: "center" }), selector, i);
    try {
      await page.waitForFunction((sel, i, inner) => document.querySelectorAll(sel)[i].querySelector(inner) !== null,
                                 { timeout: 5000 }, selector, i, drawn);
    } catch (e) {
      throw new CheckFailure(`${what} ${i} (${selector}) scrolled into view did not draw its ${drawn} within 5 s`);
    }
  }
}

async function checkSteps(page, data, options) {
  const steps = data.steps;
  await reveal(page, "div.step", "svg.bars", "step");
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
  if (expected > 0) await reveal(page, "section.residual", "svg.residual", "the residual section");
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
    const paint = await page.evaluate(() => new Promise(resolve => {
      new PerformanceObserver(list => {
        const entry = list.getEntries().find(e => e.name === "first-contentful-paint");
        if (entry) resolve(Math.round(entry.startTime));
      }).observe({ type: "paint", buffered: true });
      setTimeout(() => resolve(null), 5000);
    }));
    for (let i = 0; i < data.views.length; i++) await checkView(page, data, i, options);
    await checkSteps(page, data, options);
    await checkResidual(page, data);
    firstProblem();
    if (options.screenshot) {
      // The top of the page (title, the first map, the first steps): the steps further down are drawn only when
      // scrolled to (content-visibility), so a full-page picture would show them empty. The checks above scrolled to
      // the bottom: back to the top, and two frames for the steps there to be laid out again.
      await page.mouse.move(0, 0);
      await page.evaluate(() => new Promise(resolve => {
        window.scrollTo(0, 0);
        requestAnimationFrame(() => requestAnimationFrame(resolve));
      }));
      const height = await page.evaluate(() => document.documentElement.scrollHeight);
      await page.screenshot({ path: options.screenshot, clip: { x: 0, y: 0, width: 1280, height: Math.min(height, 1400) } });
    }

    const views = data.views.map(v => `${v.name} ${v.layers}x${v.heads} heads ${v.queries.length}x${v.keys.length}`);
    const residual = data.residual.layers.length ? `, residual ${data.residual.layers.length}x${data.residual.tokens.length}` : "";
    const viewList = views.length ? ` (${views.join("; ")})` : "";
    console.log(`${where} ok: ${data.views.length} view(s)${viewList}, ${data.steps.length} steps${residual}, ` +
                `rendered in ${rendered} ms, first paint at ${paint === null ? "?" : paint} ms, ${size(fs.statSync(file).size)}`);
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
