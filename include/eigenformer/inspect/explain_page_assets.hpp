// inspect/explain_page_assets.hpp: the stylesheet and the script of the page that explain_html() writes
// (inspect/explain_page.hpp has the data it reads and the DOM contract it keeps). Plain JavaScript with no library:
// it parses <script id="data">, decodes the attention weights (base64 of little-endian uint16, w = q / 65535) and
// draws inline SVG. Every text from the data goes in through textContent, never as HTML.
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
svg.heatmap, svg.residual { display: block; }
svg text.active { font-weight: bold; fill: #c0392b; }
svg .query-label, svg .key-label { cursor: default; }
g.row.highlight rect.cell { stroke: #e4572e; stroke-width: 1; }
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
// ---- 1. The data: the JSON block, and the attention weights decoded from base64 ----
const data = JSON.parse(document.getElementById("data").textContent);
const SVG_NS = "http://www.w3.org/2000/svg";

// A view's weights: base64 of little-endian uint16 q (w = q / 65535), each row of S keys cut after its last nonzero
// weight (rowLengths says how many it kept) -> Uint16Array [L][H][T][S], the cut keys 0.
function decodeWeights(view) {
  const S = view.keys.length;
  let bytes;
  if (Uint8Array.fromBase64) {
    bytes = Uint8Array.fromBase64(view.weights);
  } else {
    const binary = atob(view.weights);
    bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  }
  const stream = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const q = new Uint16Array(view.row_lengths.length * S);
  let read = 0;
  view.row_lengths.forEach((kept, row) => {
    for (let j = 0; j < kept; j++, read += 2) q[row * S + j] = stream.getUint16(read, true);
  });
  return q;
}

// ---- 2. Helpers: elements, token labels, colours, the tooltip ----
function html(tag, attributes, parent, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
function svg(tag, attributes, parent, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attributes || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

// A token as a label: whitespace made visible (a space as "·", a newline as "↵", a tab as "→", other control
// characters as their Unicode pictures), an empty token as "∅".
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
// The same, cut to at most `max` characters with "…" (the tooltip shows the whole token).
function shortText(token, max) {
  const chars = Array.from(tokenText(token));
  return chars.length > max ? chars.slice(0, max - 1).join("") + "\u2026" : chars.join("");
}

// Attention weights are coloured on a square-root scale, white (0) to dark blue (1): with 84 keys a spread-out
// row has weights near 0.01, which a linear scale would leave white. 256 colours, made once.
function mix(a, b, f) { return a.map((x, i) => Math.round(x + (b[i] - x) * f)); }
const PALETTE = [];
for (let i = 0; i < 256; i++) {
  const f = i / 255, white = [255, 255, 255], mid = [107, 174, 214], dark = [8, 48, 107];
  const c = f < 0.5 ? mix(white, mid, f / 0.5) : mix(mid, dark, (f - 0.5) / 0.5);
  PALETTE.push("rgb(" + c.join(",") + ")");
}
function weightColour(w) { return PALETTE[Math.round(Math.sqrt(Math.min(1, Math.max(0, w))) * 255)]; }

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
)js",

R"js(
// ---- 3. Attention: one section per view, the map of the chosen layer and head ----
// Only the chosen map is drawn: the T x S cells are made once and recoloured when a <select> changes.
function renderAttentionView(view, index, parent) {
  const T = view.queries.length, S = view.keys.length, L = view.layers, H = view.heads;
  const weights = decodeWeights(view);  // [L][H][T][S], uint16: w = q / 65535
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
  const map = svg("svg", {class: "heatmap", width: left + S * cell + 20, height: top + T * cell + 10}, section);
  const keyLabels = [], queryLabels = [];
  for (let j = 0; j < S; j++) {
    const x = left + j * cell + cell / 2, y = top - 4;
    keyLabels.push(svg("text", {class: "key-label", x: x, y: y, transform: `rotate(-60 ${x} ${y})`, "font-size": font},
                       map, shortText(view.keys[j], 12)));
  }
  const labelGroup = svg("g", {class: "query-labels"}, map);
  for (let i = 0; i < T; i++)
    queryLabels.push(svg("text", {class: "query-label", x: left - 4, y: top + i * cell + cell / 2 + font / 3,
                                  "text-anchor": "end", "font-size": font, "data-query": i}, labelGroup,
                         shortText(view.queries[i], 14)));
  // T rows of S cells: one row is made, then cloned for every query (a deep clone is one call, not S of them).
  const rowModel = svg("g", {class: "row"});
  for (let j = 0; j < S; j++)
    svg("rect", {class: "cell", "data-key": j, x: j * cell, width: cell - gap, height: cell - gap}, rowModel);
  const rows = [], cells = [];
  for (let i = 0; i < T; i++) {
    const row = rowModel.cloneNode(true);
    row.setAttribute("data-query", i);
    row.setAttribute("transform", `translate(${left},${top + i * cell})`);
    rows.push(map.appendChild(row));
    cells.push(...row.children);
  }

  // The map shown, [T][S]: one head's block of `weights`, or the mean of the layer's H blocks.
  let shown = new Float32Array(T * S);
  function chosenMap() {
    const l = Number(layerSelect.value), size = T * S, map = new Float32Array(size);
    const heads = headSelect.value === "average" ? [...Array(H).keys()] : [Number(headSelect.value)];
    for (const h of heads) {
      const start = (l * H + h) * size;
      for (let k = 0; k < size; k++) map[k] += weights[start + k] / 65535 / heads.length;
    }
    return map;
  }
  function paint() {
    shown = chosenMap();
    for (let k = 0; k < cells.length; k++) cells[k].setAttribute("fill", weightColour(shown[k]));
  }
  layerSelect.addEventListener("change", paint);
  headSelect.addEventListener("change", paint);
  paint();

  // Hovering: a cell shows its weight and its two tokens, and marks their labels; a row label marks its row.
  let marked = [];
  function unmark() { for (const e of marked) e.classList.remove("active", "highlight"); marked = []; }
  map.addEventListener("mouseover", event => {
    const target = event.target;
    unmark();
    if (target.classList.contains("cell")) {
      const i = Number(target.parentNode.dataset.query), j = Number(target.dataset.key);
      const head = headSelect.value === "average" ? "average of heads" : "head " + headSelect.value;
      marked = [queryLabels[i], keyLabels[j]];
      for (const e of marked) e.classList.add("active");
      showTooltip(event, [`weight ${shown[i * S + j].toFixed(4)}`,
                          `query ${i}: ${tokenText(view.queries[i])}`,
                          `key   ${j}: ${tokenText(view.keys[j])}`,
                          `layer ${layerSelect.value}, ${head}`]);
    } else if (target.classList.contains("query-label")) {
      const i = Number(target.dataset.query);
      marked = [rows[i]];
      rows[i].classList.add("highlight");
      showTooltip(event, [`query ${i}: ${tokenText(view.queries[i])}`]);
    } else if (target.classList.contains("key-label")) {
      const j = keyLabels.indexOf(target);
      showTooltip(event, [`key ${j}: ${tokenText(view.keys[j])}`]);
    } else {
      hideTooltip();
    }
  });
  map.addEventListener("mousemove", moveTooltip);
  map.addEventListener("mouseleave", () => { unmark(); hideTooltip(); });
}
)js",

R"js(
// ---- 4. Next-token probabilities: per step, bars at T = 0.5, 1, 2 and at the slider's temperature ----
// p = softmax(logits / T) over the whole vocabulary (computed in C++): a low T sharpens the distribution towards
// the top token, a high T flattens it. Bars share one scale (1 = the full width), so panels compare directly.
function barsPanel(parent, step, temperatureIndex, sliderPanel) {
  const k = step.top.length, rowHeight = 17, labelWidth = 96, barWidth = 130, width = labelWidth + barWidth + 60;
  const attributes = {class: sliderPanel ? "bars slider" : "bars", width: width, height: 24 + k * rowHeight + 20};
  if (!sliderPanel) attributes["data-temperature"] = String(data.temperatures[temperatureIndex]);
  const box = svg("svg", attributes, parent);
  const title = svg("text", {class: "title", x: 4, y: 14}, box);
  const bars = [], values = [];
  step.top.forEach((choice, r) => {
    const y = 24 + r * rowHeight;
    svg("text", {x: labelWidth - 4, y: y + 12, "text-anchor": "end"}, box, shortText(choice.token, 13));
    const bar = svg("rect", {class: choice.id === step.chosen_id ? "bar chosen" : "bar", x: labelWidth, y: y + 2,
                             height: rowHeight - 4, width: 0, "data-rank": r}, box);
    bars.push(bar);
    values.push(svg("text", {x: labelWidth + 4, y: y + 12}, box));
  });
  const rest = svg("text", {x: 4, y: 24 + k * rowHeight + 14, fill: "#666"}, box);

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
    const panels = html("div", {class: "panels"}, block);
    for (const t of [0.5, 1, 2]) barsPanel(panels, step, temperatures.indexOf(t), false);
    updates.push(barsPanel(panels, step, start, true));
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
  let low = Infinity, high = 0;
  for (const row of r.norms) for (const x of row) if (x > 0) { low = Math.min(low, x); high = Math.max(high, x); }
  if (!(high > 0)) { low = 1; high = 1; }
  const span = Math.log(high) - Math.log(low);
  const fraction = x => (x > 0 && span > 0 ? (Math.log(x) - Math.log(low)) / span : x > 0 ? 1 : 0);
  const colourOf = f => PALETTE[Math.round(Math.sqrt(f) * 255)];
  const middle = Math.sqrt(low * high), label = x => formatNumber(x, x < 10 ? 2 : 0);
  legend(section, colourOf, [[0, label(low)], [0.5, label(middle)], [1, label(high)]], "norm (log scale)");

  const cols = r.tokens.length, cell = Math.max(6, Math.min(22, Math.floor(840 / cols)));
  const left = 70, top = 80, font = Math.min(11, cell);
  const box = svg("svg", {class: "residual", width: left + cols * cell + 20, height: top + r.layers.length * cell + 10}, section);
  r.tokens.forEach((token, j) => {
    const x = left + j * cell + cell / 2, y = top - 4;
    svg("text", {x: x, y: y, transform: `rotate(-60 ${x} ${y})`, "font-size": font}, box, shortText(token, 12));
  });
  r.layers.forEach((layer, i) => {
    svg("text", {x: left - 4, y: top + i * cell + cell / 2 + font / 3, "text-anchor": "end", "font-size": font}, box, layer);
    r.norms[i].forEach((x, j) => {
      svg("rect", {class: "norm", "data-layer": i, "data-token": j, x: left + j * cell, y: top + i * cell,
                   width: cell - (cell > 8 ? 1 : 0), height: cell - (cell > 8 ? 1 : 0), fill: colourOf(fraction(x))}, box);
    });
  });
  box.addEventListener("mouseover", event => {
    const d = event.target.dataset;
    if (d.layer === undefined) { hideTooltip(); return; }
    const i = Number(d.layer), j = Number(d.token);
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
  void document.body.offsetHeight;  // lay the page out, so that the time below includes it
  document.body.dataset.rendered = String(Math.round(performance.now()));
}
render();
)js",
};

}  // namespace detail
}  // namespace eigenformer
