// Plotly figures drawn in the page, in the look of the server's (sae/plots/inside.py and
// sae/plots/latent.py): the same colours, titles, axes and hover text, so a student sees the
// same charts whichever side computed them.  Data in, Plotly traces and layouts out.

export const INK = [[0, "#000000"], [1, "#ffffff"]]; // plotly.py's "gray": black is no ink
const RDBU_R = ["rgb(5,48,97)", "rgb(33,102,172)", "rgb(67,147,195)", "rgb(146,197,222)", "rgb(209,229,240)", "rgb(247,247,247)",
  "rgb(253,219,199)", "rgb(244,165,130)", "rgb(214,96,77)", "rgb(178,24,43)", "rgb(103,0,31)"].map((c, i, all) => [i / (all.length - 1), c]);
const BELOW = "#2166ac", AT = "#f7f7f7", ABOVE = "#b2182b"; // blue under the threshold, white at it, red above: red fires
const MARGIN = { l: 60, r: 10, t: 50, b: 50 }; // room for the axis titles without automargin's extra layout pass
export const LAYER_TITLES = {
  enc1: "encoder conv 1 (32 maps, 16x16)",
  enc2: "encoder conv 2 (64 maps, 8x8)",
  enc3: "encoder conv 3 (128 maps, 4x4)",
  latent: "latent code",
  linear: "decoder linear layer",
  dec0: "decoder unflatten (128 maps, 4x4)",
  dec1: "decoder deconv 1 (64 maps, 8x8)",
  dec2: "decoder deconv 2 (32 maps, 16x16)",
  output: "output layer (never fires: its membrane is the image)",
};

let plotly = null;

/** plotly.js (a classic script that sets window.Plotly), loaded once per page. */
export function loadPlotly(url) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotly) {
    plotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = url;
      script.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("plotly.js did not start")));
      script.onerror = () => reject(new Error("plotly.js could not be loaded"));
      document.head.appendChild(script);
    });
    plotly.catch(() => { plotly = null; });
  }
  return plotly;
}

/** Streamlit's text colour and font, read from the CSS variables it gives a component. */
export function theme(element) {
  const style = getComputedStyle(element);
  const read = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  return { font: { family: read("--st-font", "sans-serif"), color: read("--st-text-color", "#31333f"), size: 12 } };
}

export function config(filename) {
  return { displaylogo: false, responsive: true, toImageButtonOptions: { format: "png", filename, scale: 2 } };
}

function layout(look, extra) {
  return { ...extra, font: look.font, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", template: "none" };
}

const axis = (title) => (title ? { title: { text: title }, constrain: "domain" } : { constrain: "domain" });
const imageYAxis = (title, anchor) => ({ ...axis(title), autorange: "reversed", scaleanchor: anchor });
const panelTitle = (text, x) => ({ text, x, y: 1.0, xref: "paper", yref: "paper", xanchor: "center", yanchor: "bottom", showarrow: false });

/** Rows of a flat array: ``rows`` x ``cols`` arrays of numbers, as Plotly's heatmap z. */
export function grid(values, rows, cols, offset = 0) {
  const z = new Array(rows);
  for (let r = 0; r < rows; r++) z[r] = Array.from(values.subarray(offset + r * cols, offset + (r + 1) * cols));
  return z;
}

function extent(z) {
  let low = Infinity, high = -Infinity;
  for (const row of z) for (const v of row) if (v === v) { if (v < low) low = v; if (v > high) high = v; }
  return [low, high];
}

/** A blue-white-red colorscale whose white sits exactly at ``thresh`` (sae.plots.inside._threshold_scale). */
export function thresholdScale(low, high, thresh) {
  let zmin = Math.min(low, 0);
  const zmax = Math.max(high, thresh * 1.05);
  if (zmin >= thresh) zmin = thresh - 1;
  const mid = (thresh - zmin) / (zmax - zmin);
  return { zmin, zmax, colorscale: [[0, BELOW], [mid, AT], [1, ABOVE]] };
}

function thresholdColorbar(zmin, zmax, thresh) {
  const round = (v) => Math.round(v * 100) / 100;
  const ticks = [...new Set([round(zmin), 0, thresh, round(zmax)])].sort((a, b) => a - b);
  return {
    title: { text: "membrane potential (same units as thresh)", side: "right" },
    tickmode: "array", tickvals: ticks, ticktext: ticks.map((v) => (v === thresh ? `θ = ${fmt(v)} (thresh)` : fmt(v))),
  };
}

export const fmt = (v) => String(Number(v.toPrecision(6))); // Python's "%g" for the values shown here

/** The output membrane after step ``step`` (1-based), with its MSE. */
export function reconstruction(look, image, range, step, steps, mse) {
  const heat = {
    type: "heatmap", z: image, colorscale: INK, zmin: range[0], zmax: range[1],
    colorbar: { title: { text: "output membrane (≈ intensity)", side: "right" } },
    hovertemplate: "row %{y}, column %{x}<br>value %{z:.3f}<extra></extra>",
  };
  return [[heat], layout(look, {
    title: { text: `reconstruction after step ${step} of ${steps} (MSE ${mse.toFixed(4)})` }, height: 400, margin: MARGIN,
    xaxis: axis("column (pixel)"), yaxis: imageYAxis("row (pixel)", "x"),
  })];
}

/** Input, final reconstruction and their difference on one pixel grid. */
export function comparison(look, input, recon, error, mse) {
  const limit = Math.max(...extent(error).map(Math.abs), 1e-6);
  const pixel = "row %{y}, column %{x}<br>";
  const data = [
    { type: "heatmap", z: input, colorscale: INK, zmin: 0, zmax: 1, showscale: false, hovertemplate: pixel + "input %{z:.3f}<extra></extra>" },
    { type: "heatmap", z: recon, colorscale: INK, zmin: 0, zmax: 1, showscale: false, xaxis: "x2", yaxis: "y2",
      hovertemplate: pixel + "reconstruction %{z:.3f}<extra></extra>" },
    { type: "heatmap", z: error, colorscale: RDBU_R, zmin: -limit, zmax: limit, xaxis: "x3", yaxis: "y3",
      colorbar: { title: { text: "reconstruction − input", side: "right" } }, hovertemplate: pixel + "reconstruction − input %{z:.3f}<extra></extra>" },
  ];
  const spec = { height: 300, margin: MARGIN, annotations: [] };
  ["input", "final reconstruction", `error (MSE ${mse.toFixed(4)})`].forEach((title, i) => {
    const start = [0.0, 0.33, 0.66][i], suffix = i === 0 ? "" : String(i + 1);
    spec["xaxis" + suffix] = { ...axis("column (pixel)"), domain: [start, start + 0.27], anchor: "y" + suffix };
    spec["yaxis" + suffix] = { ...imageYAxis(i === 0 ? "row (pixel)" : null, "x" + suffix), anchor: "x" + suffix };
    spec.annotations.push(panelTitle(title, start + 0.135));
  });
  return [data, layout(look, spec)];
}

const rowsHeight = (rows) => Math.min(900, Math.max(300, 90 + 14 * rows));
const steps1 = (steps) => Array.from({ length: steps }, (_, t) => t + 1);
const stepAxis = (steps) => ({ title: { text: "time step" }, dtick: steps <= 20 ? 1 : null });

/** Latent spikes, neurons x steps (``spikes`` and ``mem`` as rows per neuron). */
export function latentRaster(look, spikes, mem, steps) {
  const heat = {
    type: "heatmap", z: spikes, x: steps1(steps), y: spikes.map((_, i) => i), customdata: mem,
    colorscale: [[0, "#ffffff"], [1, "#111111"]], zmin: 0, zmax: 1, showscale: false, xgap: 1, ygap: 1,
    hovertemplate: "step %{x}, latent neuron %{y}<br>spike %{z:.0f}<br>membrane %{customdata:.3f}<extra></extra>",
  };
  return [[heat], layout(look, {
    title: { text: "latent spike raster (black = spike)" }, height: rowsHeight(spikes.length), margin: MARGIN,
    xaxis: stepAxis(steps), yaxis: { title: { text: "latent neuron" }, autorange: "reversed" },
  })];
}

export function latentMembrane(look, mem, spikes, steps, thresh) {
  const { zmin, zmax, colorscale } = thresholdScale(...extent(mem), thresh);
  const heat = {
    type: "heatmap", z: mem, x: steps1(steps), y: mem.map((_, i) => i), colorscale, zmin, zmax, customdata: spikes,
    xgap: 1, ygap: 1, colorbar: thresholdColorbar(zmin, zmax, thresh),
    hovertemplate: "step %{x}, latent neuron %{y}<br>membrane %{z:.3f}<br>spike %{customdata}<extra></extra>",
  };
  return [[heat], layout(look, {
    title: { text: `latent membrane potential (white = thresh ${fmt(thresh)})` }, height: rowsHeight(mem.length), margin: MARGIN,
    xaxis: stepAxis(steps), yaxis: { title: { text: "latent neuron" }, autorange: "reversed" },
  })];
}

/** Spikes per layer: firing rate bars with the count on each (sae.plots.inside.layer_activity). */
export function activity(look, layers, counts, neurons, steps) {
  const colors = layers.map((n) => (n.startsWith("enc") ? "#4c78a8" : n === "latent" ? "#f58518" : "#54a24b"));
  const bar = {
    type: "bar", x: layers, y: layers.map((n, i) => (100 * counts[i]) / (neurons[i] * steps)), text: counts.map((c) => c.toLocaleString("en")),
    textposition: "outside", marker: { color: colors }, customdata: layers.map((n, i) => [counts[i], neurons[i]]),
    hovertemplate: `%{x}<br>%{customdata[0]:,} spikes from %{customdata[1]:,} neurons over ${steps} steps<br>firing rate %{y:.2f}%<extra></extra>`,
  };
  return [[bar], layout(look, {
    title: { text: "spikes per layer (number = spike count)" }, height: 340, margin: MARGIN,
    xaxis: axis("layer (encoder blue, latent orange, decoder green)"),
    yaxis: { title: { text: "firing rate (% of neuron-steps that spiked)" }, rangemode: "tozero" },
  })];
}

// --- a layer's neurons as one picture (sae.plots.inside.tile_maps) ---------------------------

function tiles(count) {
  const rows = count > 1 ? 2 ** Math.floor(Math.floor(Math.log2(count)) / 2) : 1;
  return [rows, Math.ceil(count / rows)];
}

/** Feature maps [C, H, W] tiled into one image with blank (NaN) lines between; a vector wrapped into a block. */
export function tileMaps(values, shape) {
  if (shape.length === 1) {
    const [rows, cols] = tiles(shape[0]);
    const z = Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, k) => (r * cols + k < shape[0] ? values[r * cols + k] : NaN)));
    return z;
  }
  const [channels, height, width] = shape;
  const [rows, cols] = tiles(channels);
  const z = Array.from({ length: rows * (height + 1) - 1 }, () => new Array(cols * (width + 1) - 1).fill(NaN));
  for (let c = 0; c < channels; c++) {
    const r = Math.floor(c / cols), k = c % cols;
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) z[r * (height + 1) + y][k * (width + 1) + x] = values[(c * height + y) * width + x];
  }
  return z;
}

/** One layer: membrane at the chosen step beside its spike count per neuron over all steps. */
export function layerFigure(look, layer, isMaps, memTiles, countTiles, thresh, steps, step) {
  const isOutput = layer === "output";
  const [low, high] = extent(memTiles);
  const scale = isOutput ? { zmin: low, zmax: high, colorscale: INK } : thresholdScale(low, high, thresh);
  const colorbar = isOutput ? { title: { text: "membrane", side: "right" }, x: 0.42 }
    : { ...thresholdColorbar(scale.zmin, scale.zmax, thresh), x: 0.42, title: { text: "membrane", side: "right" } };
  const data = [
    { type: "heatmap", z: memTiles, ...scale, colorbar, hovertemplate: "membrane %{z:.3f}<extra></extra>" },
    { type: "heatmap", z: countTiles, colorscale: "Viridis", zmin: 0, zmax: Math.max(steps, 1), xaxis: "x2", yaxis: "y2",
      colorbar: { title: { text: "spikes", side: "right" }, x: 1.0 }, hovertemplate: "%{z:.0f} spikes<extra></extra>" },
  ];
  const unit = isMaps ? "feature maps, tiled" : "neurons, wrapped into rows";
  return [data, layout(look, {
    title: { text: LAYER_TITLES[layer] || layer }, height: 420, margin: { ...MARGIN, t: 80 },
    xaxis: { ...axis(unit), domain: [0, 0.4], showticklabels: false }, yaxis: { ...imageYAxis(null, "x"), showticklabels: false },
    xaxis2: { ...axis(unit), domain: [0.58, 0.96], showticklabels: false, anchor: "y2" },
    yaxis2: { ...imageYAxis(null, "x2"), showticklabels: false, anchor: "x2" },
    annotations: [panelTitle(`membrane at step ${step}`, 0.2), panelTitle(`spikes per neuron over all ${steps} steps`, 0.77)],
  })];
}

// --- the Latent lab (sae.plots.latent) ----------------------------------------------------

/** Square image panels side by side on one hidden pair of axes: axes are most of Plotly's time
 * for small heatmaps (sae.plots.latent._image_panels).  ``panels``: [z, title, colorscale, zmin, zmax, hover]. */
export function imagePanels(look, panels, height, gap = 4) {
  const width = Math.max(...panels.map(([z]) => z[0].length));
  const data = [], annotations = [];
  panels.forEach(([z, title, colorscale, zmin, zmax, hover], i) => {
    const x0 = i * (width + gap);
    data.push({ type: "heatmap", z, x0, colorscale, zmin, zmax, showscale: false, customdata: z.map((row) => row.map((_, c) => c)),
      hovertemplate: `row %{y}, column %{customdata}<br>${hover}<extra></extra>` });
    annotations.push({ text: title, x: x0 + (width - 1) / 2, y: -0.5, xref: "x", yref: "y", yanchor: "bottom", showarrow: false, font: { size: 12 } });
  });
  return [data, layout(look, {
    height, margin: { ...MARGIN, l: 10, b: 10, t: 60 }, annotations,
    xaxis: { visible: false, range: [-0.5, panels.length * (width + gap) - gap - 0.5], constrain: "domain" },
    yaxis: { visible: false, autorange: "reversed", scaleanchor: "x", constrain: "domain" },
  })];
}

/** Input | the digit's own reconstruction | decoded from your code | its error against the input. */
export function decodedComparison(look, input, own, edited, error, ownMse, editedMse) {
  const limit = Math.max(...extent(error).map(Math.abs), 1e-6);
  return imagePanels(look, [
    [input, "input", INK, 0, 1, "input %{z:.3f}"],
    [own, `the own code's<br>reconstruction (MSE ${ownMse.toFixed(4)})`, INK, 0, 1, "own code %{z:.3f}"],
    [edited, "decoded from<br>your code", INK, 0, 1, "your code %{z:.3f}"],
    [error, `error: yours − input<br>(MSE ${editedMse.toFixed(4)})`, RDBU_R, -limit, limit, "yours − input %{z:.3f}"],
  ], 300);
}
