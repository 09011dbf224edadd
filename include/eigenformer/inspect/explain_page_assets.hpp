// inspect/explain_page_assets.hpp: the stylesheet and the script of the page that explain_html() writes
// (inspect/explain_page.hpp has the data it reads and the DOM contract it keeps). Plain JavaScript with no library:
// it parses <script id="data">, decodes the attention weights of the layer shown (integers k, w = k / 10^4), paints
// each map on a canvas of one pixel per cell and draws the rest as inline SVG, the steps' bars and the residual map
// only when they come near the window. Every text from the data goes in through textContent, never as HTML. ASCII only.
// The script is in parts of under 16 KB, each one string literal (a limit of some compilers), joined in order.
#pragma once

namespace eigenformer {
namespace detail {

inline const char* const explain_page_css = R"css(
body { font-family: system-ui, "DejaVu Sans", sans-serif; margin: 1.5em 2em; color: #222; background: #fff; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin: 1.6em 0 0.3em; border-bottom: 1px solid #ddd; }
p.subtitle { color: #555; margin-top: 0; }
p.note { color: #555; font-size: 0.9em; max-width: 60em; }
.controls { margin: 0.5em 0; display: flex; gap: 1.2em; align-items: center; flex-wrap: wrap; }
.controls label { font-size: 0.9em; }
svg text { font-size: 11px; fill: #222; }
svg.residual { display: block; }
div.heatmap { position: relative; }
div.heatmap canvas.cells { position: absolute; image-rendering: crisp-edges; image-rendering: pixelated; }
div.heatmap svg.labels { position: absolute; left: 0; top: 0; }
svg path.gaps, svg path.row-mark { pointer-events: none; }
svg path.row-mark { fill: none; stroke: #e4572e; stroke-width: 1; }
svg text.active { font-weight: bold; fill: #c0392b; }
svg .query-label, svg .key-label { cursor: default; }
div.step { border: 1px solid #e3e3e3; border-radius: 6px; padding: 0.4em 0.8em; margin: 0.6em 0; }
/* Steps and the residual map below the window are laid out only when scrolled to: the first render stays fast. */
div.step { content-visibility: auto; contain-intrinsic-size: auto 260px; }
section.residual { content-visibility: auto; contain-intrinsic-size: auto 400px; }
div.step h3 { font-size: 0.95em; font-weight: normal; margin: 0.2em 0; }
div.step h3 .token { font-family: "DejaVu Sans Mono", monospace; background: #f1f1f1; padding: 0 0.25em; border-radius: 3px; }
.panels { display: flex; flex-wrap: wrap; gap: 0.8em; }
svg.bars .title { font-weight: bold; }
rect.bar { fill: #6b9fd4; }
rect.bar.chosen { fill: #e4572e; }
svg.slider { background: #fbf7ea; }
section.next-token > .controls { position: sticky; top: 0; z-index: 5; background: #fff; padding: 0.3em 0; }
#tooltip { position: fixed; z-index: 10; pointer-events: none; white-space: pre; font: 12px "DejaVu Sans Mono", monospace;
           background: #222; color: #fff; padding: 4px 7px; border-radius: 4px; }
#tooltip[hidden] { display: none; }
)css";

// The script, part by part (their comments number the sections).
inline const char* const explain_page_script[] = {
R"js("use strict";
// ---- 1. The data: the JSON block; attention weights decoded a layer at a time, when first shown ----
const data = JSON.parse(document.getElementById("data").textContent);
const SVG_NS = "http://www.w3.org/2000/svg";

// A view's weights are integers k (w = k / view.weight_scale) in one string, layer after layer (layer l from
// view.layer_starts[l]): for each head, then each query, the count n of keys kept (the row's tail of zeros is cut), then
// k for keys 0 .. n - 1. A number is one or more characters of the base64 alphabet, 5 bits each, most significant
// first; a character whose index has bit 32 set is followed by another. decodeLayer(view, l) -> Uint16Array [H][T][S]
// of k, the cut keys 0; made once per layer, when first shown. (The loop reads bytes, not characters: it runs once,
// before the JIT has compiled it, and this way it takes half the time.)
const DIGITS = new Int8Array(256).fill(-1);
Array.from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", (c, i) => { DIGITS[c.charCodeAt(0)] = i; });
function decodeLayer(view, l) {
  view.decoded = view.decoded || [];
  if (view.decoded[l]) return view.decoded[l];
  const end = l + 1 < view.layers ? view.layer_starts[l + 1] : view.weights.length;
  const codes = new TextEncoder().encode(view.weights.slice(view.layer_starts[l], end)), n = codes.length;
  const S = view.keys.length, rows = view.heads * view.queries.length, k = new Uint16Array(rows * S);
  let at = 0, seen = 0, digit, row = 0;  // seen: every digit or-ed together, negative if one was not a digit
  for (let base = 0; row < rows && at < n; row++, base += S) {
    let kept = 0;
    while ((digit = DIGITS[codes[at++]]) & 32) { kept = kept << 5 | digit & 31; seen |= digit; }
    kept = kept << 5 | digit;
    seen |= digit;
    if (kept > S) throw new Error(`view '${view.name}', layer ${l}: row ${row} keeps ${kept} keys of ${S}`);
    for (let j = base; j < base + kept; j++) {
      let value = 0;
      while ((digit = DIGITS[codes[at++]]) & 32) { value = value << 5 | digit & 31; seen |= digit; }
      k[j] = value << 5 | digit;
      seen |= digit;
    }
  }
  if (seen < 0 || at !== n || row !== rows) throw new Error(`view '${view.name}', layer ${l}: its weights do not decode (${n} characters)`);
  return (view.decoded[l] = k);
}

// ---- 2. Helpers: elements, token labels, colours, the tooltip ----
function html(tag, attributes, parent, text) {
  return fill(document.createElement(tag), attributes, parent, text);
}
function svg(tag, attributes, parent, text) {
  return fill(document.createElementNS(SVG_NS, tag), attributes, parent, text);
}
function fill(e, attributes, parent, text) {
  for (const k in attributes) e.setAttribute(k, attributes[k]);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

// A token as a label: whitespace made visible (a space as U+00B7 middle dot, a newline as U+21B5, a tab as U+2192, other
// control characters as their Unicode pictures), an empty token as U+2205. (The page is ASCII: see explain_page.hpp.)
function tokenText(token) {
  let out = "";
  for (const ch of token) {
    const c = ch.codePointAt(0);
    if (ch === " ") out += "\u00b7";
    else if (ch === "\n") out += "\u21b5";
    else if (ch === "\t") out += "\u2192";
    else if (c < 0x20) out += String.fromCodePoint(0x2400 + c);
    else if (c === 0x7f) out += "\u2421";
    else out += ch;
  }
  return out === "" ? "\u2205" : out;
}
// The same, cut to at most `max` characters with an ellipsis (the tooltip shows the whole token).
function shortText(token, max) {
  const chars = Array.from(tokenText(token));
  return chars.length > max ? chars.slice(0, max - 1).join("") + "\u2026" : chars.join("");
}

// Attention weights are coloured on a square-root scale, white (0) to dark blue (1): with 84 keys a spread-out
// row has weights near 0.01, which a linear scale would leave white. 256 colours, made once.
function mix(a, b, f) { return a.map((x, i) => Math.round(x + (b[i] - x) * f)); }
// PALETTE_RGB holds the same colours as [r, g, b], for the canvas.
const PALETTE = [], PALETTE_RGB = [];
for (let i = 0; i < 256; i++) {
  const f = i / 255, white = [255, 255, 255], mid = [107, 174, 214], dark = [8, 48, 107];
  const c = f < 0.5 ? mix(white, mid, f / 0.5) : mix(mid, dark, (f - 0.5) / 0.5);
  PALETTE.push("rgb(" + c.join(",") + ")");
  PALETTE_RGB.push(c);
}
function weightIndex(w) { return Math.round(Math.sqrt(Math.min(1, Math.max(0, w))) * 255); }

// A colour legend: `steps` swatches of colourOf(position in [0, 1]) with ticks at the given positions.
function legend(parent, colourOf, ticks, caption) {
  const width = 240, steps = 64, box = svg("svg", {class: "scale", width: width + 40, height: 42}, parent);
  svg("text", {x: 0, y: 10}, box, caption);
  for (let i = 0; i < steps; i++)
    svg("rect", {x: 10 + i * width / steps, y: 14, width: width / steps + 0.5, height: 10, fill: colourOf(i / (steps - 1))}, box);
  svg("rect", {x: 10, y: 14, width: width, height: 10, fill: "none", stroke: "#999"}, box);
  for (const [position, label] of ticks) {
    const x = 10 + position * width;
    svg("line", {x1: x, x2: x, y1: 24, y2: 28, stroke: "#555"}, box);
    svg("text", {x: x, y: 38, "text-anchor": "middle"}, box, label);
  }
  return box;
}

// The one tooltip: lines of text, set as text, near the mouse and inside the window.
const tooltip = document.getElementById("tooltip");
function showTooltip(event, lines) {
  tooltip.textContent = lines.join("\n");
  tooltip.hidden = false;
  moveTooltip(event);
}
function moveTooltip(event) {
  if (tooltip.hidden) return;
  const x = Math.min(event.clientX + 14, window.innerWidth - tooltip.offsetWidth - 4);
  const y = Math.min(event.clientY + 14, window.innerHeight - tooltip.offsetHeight - 4);
  tooltip.style.left = Math.max(0, x) + "px";
  tooltip.style.top = Math.max(0, y) + "px";
}
function hideTooltip() { tooltip.hidden = true; }
function formatNumber(x, digits) { return x === null ? "-inf" : x.toFixed(digits); }

// What lies below the window is drawn when it comes within a window's height of the visible part: whenNear(element,
// draw) runs draw() once, then (an IntersectionObserver's callback, after the frame that shows the page), or at once in
// a browser without IntersectionObserver. The steps' bars and the residual map, two thirds of the page's elements, wait.
const drawWhenNear = new Map();
const nearObserver = window.IntersectionObserver && new IntersectionObserver(entries => {
  for (const entry of entries) {
    if (!entry.isIntersecting || !drawWhenNear.has(entry.target)) continue;
    const draw = drawWhenNear.get(entry.target);
    drawWhenNear.delete(entry.target);
    nearObserver.unobserve(entry.target);
    draw();
  }
}, {rootMargin: "100% 0px"});
function whenNear(element, draw) {
  if (!nearObserver) return draw();
  drawWhenNear.set(element, draw);
  nearObserver.observe(element);
}
)js",

R"js(
// ---- 3. Attention: one section per view, the map of the chosen layer and head ----
// The map is a canvas of one pixel per cell, T x S, drawn `cell` CSS pixels wide with image-rendering: pixelated (so each
// cell is one flat square), and redrawn when a <select> changes: thousands of SVG rects took most of the page's first
// render. On top of it one SVG holds the token labels, the white gaps between cells (one path) and the outline of a
// marked row (one path). Only the chosen layer's weights are decoded.
function renderAttentionView(view, index, parent) {
  const T = view.queries.length, S = view.keys.length, L = view.layers, H = view.heads, scale = view.weight_scale;
  const section = html("section", {class: "attention", "data-view": index}, parent);
  html("h2", {}, section, view.name);
  html("p", {class: "note"}, section,
       "Row i is query token i; its cells show how that token's attention is spread over the key tokens (a row sums " +
       "to 1; a white row had no key it may see). Hover a cell for its weight, a row label to mark the row.");

  const controls = html("div", {class: "controls"}, section);
  const layerLabel = html("label", {}, controls, "Layer ");
  const layerSelect = html("select", {class: "layer"}, layerLabel);
  for (let l = 0; l < L; l++) html("option", {value: l}, layerSelect, String(l));
  const headLabel = html("label", {}, controls, "Head ");
  const headSelect = html("select", {class: "head"}, headLabel);
  for (let h = 0; h < H; h++) html("option", {value: h}, headSelect, String(h));
  html("option", {value: "average"}, headSelect, "average of heads");
  legend(controls, f => PALETTE[Math.round(f * 255)],
         [[0, "0"], [0.1, "0.01"], [Math.sqrt(0.1), "0.1"], [0.5, "0.25"], [1, "1"]], "attention weight (square-root scale)");

  // Geometry: cells of 6 to 22 px, room on the left for query labels and on top for the slanted key labels.
  const cell = Math.max(6, Math.min(22, Math.floor(720 / Math.max(T, S))));
  const gap = cell > 8 ? 1 : 0, left = 120, top = 80, font = Math.min(11, cell);
  const width = left + S * cell + 20, height = top + T * cell + 10;
  const box = html("div", {class: "heatmap", style: `width: ${width}px; height: ${height}px`}, section);
  const canvas = html("canvas", {class: "cells", width: S, height: T, "data-cell": cell,
                                 style: `left: ${left}px; top: ${top}px; width: ${S * cell}px; height: ${T * cell}px`}, box);
  const labels = svg("svg", {class: "labels", width: width, height: height}, box);
  const keyLabels = [], queryLabels = [];
  for (let j = 0; j < S; j++) {
    const x = left + j * cell + cell / 2, y = top - 4;
    keyLabels.push(svg("text", {class: "key-label", x: x, y: y, transform: `rotate(-60 ${x} ${y})`, "font-size": font,
                                "data-key": j}, labels, shortText(view.keys[j], 12)));
  }
  for (let i = 0; i < T; i++)
    queryLabels.push(svg("text", {class: "query-label", x: left - 4, y: top + i * cell + cell / 2 + font / 3,
                                  "text-anchor": "end", "font-size": font, "data-query": i}, labels,
                         shortText(view.queries[i], 14)));
  // The gaps: the last pixel column of each cell and its last pixel row, in white.
  if (gap > 0) {
    let d = "";
    for (let j = 1; j <= S; j++) d += `M${left + j * cell - gap / 2} ${top}v${T * cell}`;
    for (let i = 1; i <= T; i++) d += `M${left} ${top + i * cell - gap / 2}h${S * cell}`;
    svg("path", {class: "gaps", d: d, stroke: "#fff", "stroke-width": gap, fill: "none"}, labels);
  }
  // A marked row: each of its cells outlined (one path, moved to the row).
  let outline = "";
  for (let j = 0; j < S; j++) outline += `M${j * cell} 0h${cell - gap}v${cell - gap}h${gap - cell}Z`;
  const rowMark = svg("path", {class: "row-mark", d: outline, visibility: "hidden"}, labels);

  const context = canvas.getContext("2d");
  const image = context.createImageData(S, T), pixels = new Uint32Array(image.data.buffer);
  // The palette as 32-bit pixels: the bytes r, g, b, 255 in memory, whatever this machine's byte order.
  const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  const colours = PALETTE_RGB.map(([r, g, b]) => (littleEndian ? 255 << 24 | b << 16 | g << 8 | r
                                                               : r << 24 | g << 16 | b << 8 | 255) >>> 0);

  // The map shown, [T][S]: one head's block of the layer, or the mean of its H blocks.
  let shown = new Float64Array(T * S);
  function chosenMap() {
    const l = Number(layerSelect.value), size = T * S, k = decodeLayer(view, l), map = new Float64Array(size);
    if (headSelect.value !== "average") {
      for (let c = 0, start = Number(headSelect.value) * size; c < size; c++) map[c] = k[start + c] / scale;
      return map;
    }
    for (let h = 0; h < H; h++) for (let c = 0, start = h * size; c < size; c++) map[c] += k[start + c];
    for (let c = 0; c < size; c++) map[c] /= scale * H;
    return map;
  }
  function paint() {
    shown = chosenMap();
    for (let c = 0; c < T * S; c++) pixels[c] = colours[weightIndex(shown[c])];
    context.putImageData(image, 0, 0);
    box.dataset.layer = layerSelect.value;
    box.dataset.head = headSelect.value;
  }
  layerSelect.addEventListener("change", paint);
  headSelect.addEventListener("change", paint);
  paint();

  // Hovering: a cell shows its weight and its two tokens, and marks their labels; a row label outlines its row.
  let active = [], on = "";  // what the mouse is on: "", "query i", "key j" or "cell i j"
  function unmark() {
    for (const e of active) e.classList.remove("active");
    active = [];
    on = "";
    rowMark.setAttribute("visibility", "hidden");
    rowMark.removeAttribute("data-query");
    delete box.dataset.highlight;
  }
  function hover(event) {
    const target = event.target, at = canvas.getBoundingClientRect();
    const i = Math.floor((event.clientY - at.top) / cell), j = Math.floor((event.clientX - at.left) / cell);
    const now = target.classList.contains("query-label") ? "query " + target.dataset.query
              : target.classList.contains("key-label") ? "key " + target.dataset.key
              : i >= 0 && i < T && j >= 0 && j < S ? `cell ${i} ${j}` : "";
    if (now !== on) {
      unmark();
      on = now;
      const [kind, a, b] = now.split(" "), q = Number(a), k = Number(b);
      if (kind === "cell") {
        const head = headSelect.value === "average" ? "average of heads" : "head " + headSelect.value;
        active = [queryLabels[q], keyLabels[k]];
        for (const e of active) e.classList.add("active");
        showTooltip(event, [`weight ${shown[q * S + k].toFixed(4)}`,
                            `query ${q}: ${tokenText(view.queries[q])}`,
                            `key   ${k}: ${tokenText(view.keys[k])}`,
                            `layer ${layerSelect.value}, ${head}`]);
      } else if (kind === "query") {
        rowMark.setAttribute("transform", `translate(${left},${top + q * cell})`);
        rowMark.setAttribute("visibility", "visible");
        rowMark.setAttribute("data-query", q);
        box.dataset.highlight = q;
        showTooltip(event, [`query ${q}: ${tokenText(view.queries[q])}`]);
      } else if (kind === "key") {
        showTooltip(event, [`key ${q}: ${tokenText(view.keys[q])}`]);
      } else {
        hideTooltip();
      }
    }
    moveTooltip(event);
  }
  box.addEventListener("mouseover", hover);
  box.addEventListener("mousemove", hover);
  box.addEventListener("mouseleave", () => { unmark(); hideTooltip(); });
}
)js",

R"js(
// ---- 4. Next-token probabilities: per step, bars at T = 0.5, 1, 2 and at the slider's temperature ----
// p = softmax(logits / T) over the whole vocabulary (computed in C++): a low T sharpens the distribution towards
// the top token, a high T flattens it. Bars share one scale (1 = the full width), so panels compare directly.
// A panel's elements are made once per number of bars and cloned (one call instead of 3k + 2), then filled in.
const BAR = {rowHeight: 17, labelWidth: 96, width: 130};
const panelModels = new Map();
function panelModel(k) {
  if (!panelModels.has(k)) {
    const {rowHeight, labelWidth, width} = BAR;
    const box = svg("svg", {width: labelWidth + width + 60, height: 24 + k * rowHeight + 20});
    svg("text", {class: "title", x: 4, y: 14}, box);
    for (let r = 0; r < k; r++) {
      const y = 24 + r * rowHeight;
      svg("text", {x: labelWidth - 4, y: y + 12, "text-anchor": "end"}, box);
      svg("rect", {class: "bar", x: labelWidth, y: y + 2, height: rowHeight - 4, width: 0, "data-rank": r}, box);
      svg("text", {x: labelWidth + 4, y: y + 12}, box);
    }
    svg("text", {x: 4, y: 24 + k * rowHeight + 14, fill: "#666"}, box);
    panelModels.set(k, box);
  }
  return panelModels.get(k);
}
// labels: the k tokens as shown (shortText), the same for the step's four panels.
function barsPanel(parent, step, labels, temperatureIndex, sliderPanel) {
  const k = step.top.length, {labelWidth, width: barWidth} = BAR;
  const box = panelModel(k).cloneNode(true), parts = box.children;
  box.setAttribute("class", sliderPanel ? "bars slider" : "bars");
  if (!sliderPanel) box.setAttribute("data-temperature", String(data.temperatures[temperatureIndex]));
  const title = parts[0], rest = parts[3 * k + 1], bars = [], values = [];
  step.top.forEach((choice, r) => {
    parts[1 + 3 * r].textContent = labels[r];
    bars.push(parts[2 + 3 * r]);
    values.push(parts[3 + 3 * r]);
    if (choice.id === step.chosen_id) bars[r].setAttribute("class", "bar chosen");
  });
  parent.appendChild(box);

  function update(t) {
    temperatureIndex = t;
    title.textContent = (sliderPanel ? "slider: T = " : "T = ") + data.temperatures[t];
    let sum = 0;
    step.top.forEach((choice, r) => {
      const p = choice.p[t], w = p * barWidth;
      sum += p;
      bars[r].setAttribute("width", w.toFixed(2));
      values[r].setAttribute("x", (labelWidth + w + 4).toFixed(2));
      values[r].textContent = (100 * p).toFixed(p >= 0.0995 ? 1 : 2) + "%";
    });
    rest.textContent = "rest of the vocabulary: " + (100 * Math.max(0, 1 - sum)).toFixed(1) + "%";
  }
  update(temperatureIndex);

  box.addEventListener("mouseover", event => {
    const r = event.target.dataset.rank;
    if (r === undefined) { hideTooltip(); return; }
    const choice = step.top[Number(r)];
    showTooltip(event, [`token ${tokenText(choice.token)} (id ${choice.id})`, `logit ${formatNumber(choice.logit, 4)}`,
                        `p at T = ${data.temperatures[temperatureIndex]}: ${choice.p[temperatureIndex].toFixed(4)}`]);
  });
  box.addEventListener("mousemove", moveTooltip);
  box.addEventListener("mouseleave", hideTooltip);
  return update;
}

function renderSteps(parent) {
  if (data.steps.length === 0) return;
  const temperatures = data.temperatures;
  const section = html("section", {class: "next-token"}, parent);
  html("h2", {}, section, "Next-token probabilities");
  html("p", {class: "note"}, section,
       "At each step the model gives every token of its vocabulary a logit; softmax(logits / T) turns them into " +
       "probabilities. Shown: the tokens of highest logit, at temperatures 0.5, 1 and 2, and in the last panel at " +
       "the slider's temperature. The token generated is red; \u00b7 marks a space, \u21b5 a newline.");
  const controls = html("div", {class: "controls"}, section);
  const label = html("label", {for: "temperature"}, controls, "Temperature of the last panel ");
  const start = Math.max(0, temperatures.indexOf(1));
  const slider = html("input", {type: "range", id: "temperature", min: 0, max: temperatures.length - 1, step: 1, value: start}, label);
  const shownValue = html("output", {id: "temperature-value", for: "temperature"}, controls, "T = " + temperatures[start]);

  const updates = [];
  data.steps.forEach((step, s) => {
    const block = html("div", {class: "step", "data-step": s}, section);
    const heading = html("h3", {}, block, `Step ${s + 1} (position ${step.position}): reading `);
    html("span", {class: "token"}, heading, tokenText(step.context));
    if (step.chosen_id >= 0) {
      heading.appendChild(document.createTextNode(", the model generated "));
      html("span", {class: "token"}, heading, tokenText(step.chosen));
      if (!step.top.some(c => c.id === step.chosen_id))
        heading.appendChild(document.createTextNode(` (id ${step.chosen_id}, not among the ${step.top.length} shown)`));
    }
    // The four panels, when the step comes near; until then the row keeps their height.
    const panels = html("div", {class: "panels", style: `min-height: ${24 + step.top.length * BAR.rowHeight + 20}px`}, block);
    whenNear(block, () => {
      const labels = step.top.map(c => shortText(c.token, 13));
      for (const t of [0.5, 1, 2]) barsPanel(panels, step, labels, temperatures.indexOf(t), false);
      updates.push(barsPanel(panels, step, labels, Number(slider.value), true));
    });
  });
  slider.addEventListener("input", () => {
    const t = Number(slider.value);
    shownValue.textContent = "T = " + temperatures[t];
    for (const update of updates) update(t);
  });
}
)js",

R"js(
// ---- 5. The residual stream: the norm of each token's vector after each layer ----
// Colours on a log scale from the smallest to the largest positive norm (GPT-2's grow by orders of magnitude).
function renderResidual(parent) {
  const r = data.residual;
  if (r.layers.length === 0 || r.tokens.length === 0) return;
  const section = html("section", {class: "residual"}, parent);
  html("h2", {}, section, "Residual stream norm");
  html("p", {class: "note"}, section,
       "Each token carries one vector from layer to layer; every layer adds its output to it. A cell is the length " +
       "(L2 norm) of that vector after the layer of its row. Hover a cell for the number.");
  const cols = r.tokens.length, cell = Math.max(6, Math.min(22, Math.floor(840 / cols)));
  const left = 70, top = 80, font = Math.min(11, cell), width = left + cols * cell + 20, height = top + r.layers.length * cell + 10;
  // The legend and the map, when the section comes near; until then a box of their size.
  const map = html("div", {class: "residual-map", style: `min-height: ${42 + height + 4}px`}, section);
  whenNear(section, () => drawResidual(map, cell, left, top, font, width, height));
}
function drawResidual(parent, cell, left, top, font, width, height) {
  const r = data.residual;
  let low = Infinity, high = 0;
  for (const row of r.norms) for (const x of row) if (x > 0) { low = Math.min(low, x); high = Math.max(high, x); }
  if (!(high > 0)) { low = 1; high = 1; }
  const span = Math.log(high) - Math.log(low);
  const fraction = x => (x > 0 && span > 0 ? (Math.log(x) - Math.log(low)) / span : x > 0 ? 1 : 0);
  const colourOf = f => PALETTE[Math.round(Math.sqrt(f) * 255)];
  const middle = Math.sqrt(low * high), label = x => formatNumber(x, x < 10 ? 2 : 0);
  legend(parent, colourOf, [[0, label(low)], [0.5, label(middle)], [1, label(high)]], "norm (log scale)");

  const cols = r.tokens.length, box = svg("svg", {class: "residual", width: width, height: height}, parent);
  r.tokens.forEach((token, j) => {
    const x = left + j * cell + cell / 2, y = top - 4;
    svg("text", {x: x, y: y, transform: `rotate(-60 ${x} ${y})`, "font-size": font}, box, shortText(token, 12));
  });
  // A row of cells (g, data-layer = i) is made once and cloned per layer; then only the colours are set.
  const rowModel = svg("g");
  for (let j = 0; j < cols; j++)
    svg("rect", {class: "norm", "data-token": j, x: j * cell, width: cell - (cell > 8 ? 1 : 0), height: cell - (cell > 8 ? 1 : 0)}, rowModel);
  r.layers.forEach((layer, i) => {
    svg("text", {x: left - 4, y: top + i * cell + cell / 2 + font / 3, "text-anchor": "end", "font-size": font}, box, layer);
    const row = rowModel.cloneNode(true), cells = row.children;
    row.setAttribute("data-layer", i);
    row.setAttribute("transform", `translate(${left},${top + i * cell})`);
    r.norms[i].forEach((x, j) => cells[j].setAttribute("fill", colourOf(fraction(x))));
    box.appendChild(row);
  });
  box.addEventListener("mouseover", event => {
    const d = event.target.dataset;
    if (d.token === undefined) { hideTooltip(); return; }
    const i = Number(event.target.parentNode.dataset.layer), j = Number(d.token);
    showTooltip(event, [`norm ${r.norms[i][j].toFixed(4)}`, `after ${r.layers[i]}`, `token ${j}: ${tokenText(r.tokens[j])}`]);
  });
  box.addEventListener("mousemove", moveTooltip);
  box.addEventListener("mouseleave", hideTooltip);
}

// ---- 6. The page: title, the sections in order, then the time it took ----
function render() {
  const page = document.getElementById("page");
  if (data.title) document.title = data.title;
  html("h1", {}, page, data.title || "Eigenformer: explain");
  if (data.subtitle) html("p", {class: "subtitle"}, page, data.subtitle);
  data.views.forEach((view, i) => renderAttentionView(view, i, page));
  renderSteps(page);
  renderResidual(page);
  void document.body.offsetHeight;  // lay the page out, so that the time below includes it (not what waits, whenNear)
  document.body.dataset.rendered = String(Math.round(performance.now()));
}
render();
)js",
};

}  // namespace detail
}  // namespace eigenformer
