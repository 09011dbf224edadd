#!/usr/bin/env node
// tools/time_pages.mjs: how long explain pages (gpt2 --explain, translator translate --explain) take to open, each
// load in a freshly started headless Chromium. Round r opens every page once, in turn (the first page first in round
// 1, the second first in round 2, ...), so that a busy machine slows all of them alike; then the medians, every value,
// and each page's ratio to the first one's median. Two times per load, from navigation start: body[data-rendered] (the
// page's own, end of its first render; what tools/check_page.mjs reports) and first-contentful-paint (the browser's:
// the first frame with the page's content on screen). One load of the first page before round 1 is not counted: the
// first start of Chromium after a while reads it from disk.
//
//   node tools/time_pages.mjs [--rounds N] PAGE.html...      (N: 5 unless given)
//
// Needs puppeteer-core in .deps/npm and /usr/bin/chromium, as check_page.mjs does (--chromium PATH or $CHROMIUM).
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const usage = "usage: node tools/time_pages.mjs [--rounds N] [--chromium PATH] PAGE.html...";

function parseArguments(argv) {
  const options = { rounds: 5, pages: [], chromium: process.env.CHROMIUM || "/usr/bin/chromium" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--rounds" || a === "--chromium") {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      const v = argv[++i];
      if (a === "--chromium") options.chromium = v;
      else if (/^[1-9]\d*$/.test(v)) options.rounds = Number(v);
      else throw new Error(`--rounds takes a count, not '${v}'`);
    } else if (a === "-h" || a === "--help") {
      console.log(usage);
      process.exit(0);
    } else if (a.startsWith("-")) {
      throw new Error(`unknown option ${a}`);
    } else {
      options.pages.push(path.resolve(a));
    }
  }
  if (options.pages.length === 0) throw new Error("no page given");
  return options;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const puppeteer = createRequire(path.join(root, ".deps", "npm", "package.json"))("puppeteer-core");

// One load: [data-rendered, first-contentful-paint] in ms.
async function open(file, chromium) {
  const args = ["--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update"];
  if (process.getuid && process.getuid() === 0) args.push("--no-sandbox");
  const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
    await page.waitForSelector("body[data-rendered]", { timeout: 30000 });
    return await page.evaluate(() => new Promise((resolve, reject) => {
      const rendered = Number(document.body.dataset.rendered);
      new PerformanceObserver(list => {
        const paint = list.getEntries().find(e => e.name === "first-contentful-paint");
        if (paint) resolve([rendered, Math.round(paint.startTime)]);
      }).observe({ type: "paint", buffered: true });
      setTimeout(() => reject(new Error("no first-contentful-paint within 10 s")), 10000);
    }));
  } finally {
    await browser.close();
  }
}

function median(values) {
  const s = [...values].sort((a, b) => a - b), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

async function main() {
  let options;
  try {
    options = parseArguments(process.argv.slice(2));
  } catch (e) {
    console.error(`time_pages: ${e.message}\n${usage}`);
    return 2;
  }
  const { pages, rounds, chromium } = options;
  const times = pages.map(() => ({ rendered: [], paint: [] }));
  await open(pages[0], chromium);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < pages.length; k++) {
      const p = (r + k) % pages.length;
      const [rendered, paint] = await open(pages[p], chromium);
      times[p].rendered.push(rendered);
      times[p].paint.push(paint);
      console.log(`round ${r + 1}: ${path.basename(pages[p])} rendered ${rendered} ms, first paint ${paint} ms`);
    }
  }
  const first = times[0];
  pages.forEach((page, p) => {
    const t = times[p], ratio = (a, b) => (median(a) / median(b)).toFixed(2);
    console.log(`${page}: rendered median ${median(t.rendered)} ms [${t.rendered.join(", ")}], ` +
                `first paint median ${median(t.paint)} ms [${t.paint.join(", ")}]` +
                (p > 0 ? `; / first page: ${ratio(t.rendered, first.rendered)} and ${ratio(t.paint, first.paint)}` : ""));
  });
  return 0;
}

process.exitCode = await main();
