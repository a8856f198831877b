// The Explore page's live view: the neuron settings' sliders beside the figures they drive,
// all computed in the page.  Every slider ``input`` event (while dragging) reruns the network
// here and redraws; only the release (``change``) tells the app, which then updates the URL,
// the sidebar and the other pages.  The app mounts it through explorer/in_page.py.
//
// Siblings are imported with this module's own version query (``?v=<hash of static/in_page>``),
// never as a bare "./x.js", so a browser that kept an older file never mixes it with a newer one.

const version = new URL(import.meta.url).search;
const load = (name) => import(new URL(`./${name}.js${version}`, import.meta.url).href);
const [page, figures, network] = await Promise.all(["page", "figures", "network"].map(load));

const SETTINGS = ["thresh", "beta", "steps"];
const PLAY_MS = 600; // per step, as the server's playback
// Drawn on every frame: the reconstruction, the raster and the numbers.  The other figures take
// turns, one a frame while the slider moves, and all are brought up to date once it rests:
// drawing all of them every frame would make a frame several times longer.
const TAKING_TURNS = ["membrane", "comparison", "layer", "activity"];

class ExploreView {
  constructor(root) {
    this.root = root;
    this.figure = Object.fromEntries([...root.querySelectorAll("[data-fig]")].map((el) => [el.dataset.fig, el]));
    this.sliders = Object.fromEntries(SETTINGS.map((name) => [name, root.querySelector(`input[data-setting=${name}]`)]));
    this.layerSelect = root.querySelector("select[data-layer]");
    this.stepSlider = root.querySelector("input[data-step]");
    this.playButton = root.querySelector("button[data-play]");
    this.timings = new page.Timings(); // slider input event -> reconstruction and raster painted
    this.frames = 0; // traces drawn: tests wait on it
    this.trace = null;
    this.stale = new Set(); // figures of TAKING_TURNS that do not show this.trace yet
    this.turn = 0;
    this.request = page.latestWins((request) => this.compute(request), (error) => page.reportFailure(this, error));
    this.listen();
  }

  status(text) {
    const line = this.root.querySelector("[data-status]");
    line.textContent = text;
    line.hidden = !text;
  }

  listen() {
    for (const slider of Object.values(this.sliders)) {
      // While a thumb is held, the app's copy of the settings is older than the slider's.
      slider.addEventListener("pointerdown", () => { this.holding = true; });
      for (const end of ["pointerup", "pointercancel", "change"]) slider.addEventListener(end, () => { this.holding = false; });
      slider.addEventListener("input", (event) => {
        this.showValues();
        this.request({ start: event.timeStamp, kind: "input" });
      });
      // Released: the app takes the value (URL, sidebar, other pages); one rerun per release.
      slider.addEventListener("change", () => this.component.setTriggerValue("settings", this.settings()));
    }
    this.layerSelect.addEventListener("change", (event) => this.request({ start: event.timeStamp, kind: "layer" }));
    this.stepSlider.addEventListener("input", () => this.drawStep(Number(this.stepSlider.value)));
    this.playButton.addEventListener("click", () => this.togglePlay());
  }

  settings() {
    return { thresh: Number(this.sliders.thresh.value), beta: Number(this.sliders.beta.value), steps: Number(this.sliders.steps.value) };
  }

  showValues() {
    for (const slider of Object.values(this.sliders)) {
      slider.parentElement.querySelector("output").textContent = figures.fmt(Number(slider.value));
    }
  }

  /** Called on every mount and whenever the app sends new data (another digit, model or setting). */
  async open(component) {
    this.component = component;
    const data = (this.data = component.data);
    this.look = figures.theme(this.root);
    if (!this.built) this.build(data);
    for (const name of SETTINGS) {
      const slider = this.sliders[name];
      const range = data.ranges[name];
      Object.assign(slider, { min: range.low, max: range.high, step: range.step });
      if (!this.holding) slider.value = data.settings[name];
      // A lesson link may lock a setting (shown, not movable) or hide it (not drawn at all).
      const state = (data.controls || {})[name] || "shown";
      slider.disabled = state === "locked";
      slider.closest("label").hidden = state === "hidden";
    }
    this.showValues();
    if (!this.ready) this.status("Loading the network into your browser…");
    const loaded = await page.loadAll(data, figures, network);
    if (this.component !== component) return; // newer data arrived while loading
    Object.assign(this, loaded, { ready: true });
    this.status("");
    this.request({ start: performance.now(), kind: "open" });
  }

  build(data) {
    for (const layer of data.layers) this.layerSelect.add(new Option(layer, layer));
    this.layerSelect.value = data.layer;
    this.built = true;
  }

  /** Run the network at the sliders' settings and draw; ``request.start`` is when the user asked. */
  async compute(request) {
    if (!this.ready) return;
    const { thresh, beta, steps } = this.settings();
    const layer = this.layerSelect.value;
    const started = performance.now();
    const trace = (this.trace = await this.run(thresh, beta, steps, layer));
    trace.ms = performance.now() - started;
    this.stopPlay();
    this.drawFirst(trace);
    const painted = await page.afterPaint();
    this.timings.add(request.start, painted, request.kind);
    this.frames += 1;
    this.stale = new Set(TAKING_TURNS);
    // One more figure while the slider moves, unless the next value is already waiting: it goes first.
    if (!this.request.waiting()) this.drawTurn(trace, TAKING_TURNS[this.turn++ % TAKING_TURNS.length]);
    requestAnimationFrame(() => this.catchUp(trace));
  }

  /** Once no newer slider value waits, draw every figure that does not show ``trace`` yet. */
  catchUp(trace) {
    if (this.trace !== trace || this.request.waiting()) return;
    for (const name of [...this.stale]) this.drawTurn(trace, name);
  }

  drawTurn(trace, name) {
    this.stale.delete(name);
    const { Plotly } = this;
    const [h, w] = this.side();
    const rows = (values) => figures.grid(values, this.network.latentDim, trace.steps);
    if (name === "membrane") {
      Plotly.react(this.figure.membrane, ...figures.latentMembrane(this.look, rows(trace.latentMem), rows(trace.latentSpikes), trace.steps, trace.thresh),
        figures.config("latent_membrane"));
    } else if (name === "comparison") {
      const recon = trace.outputs[trace.steps - 1];
      const error = recon.map((v, i) => v - trace.input[i]);
      Plotly.react(this.figure.comparison, ...figures.comparison(this.look, figures.grid(trace.input, h, w), figures.grid(recon, h, w),
        figures.grid(error, h, w), trace.stepMse[trace.steps - 1]), figures.config("input_reconstruction_error"));
    } else if (name === "activity") {
      const layers = network.SPIKING_LAYERS;
      Plotly.react(this.figure.activity, ...figures.activity(this.look, layers, layers.map((n) => trace.counts[n]),
        layers.map((n) => this.network.neurons(n)), trace.steps), figures.config("spikes_per_layer"));
    } else if (name === "layer") {
      this.drawLayer(trace, trace.steps);
    }
  }

  async run(thresh, beta, steps, layer) {
    const net = this.network;
    const input = Float32Array.from(this.data.image);
    const dim = net.latentDim;
    const trace = {
      thresh, beta, steps, layer, input,
      outputs: [],
      latentSpikes: new Float32Array(dim * steps), // neuron-major: [n * steps + t]
      latentMem: new Float32Array(dim * steps),
      layerMem: [],
      layerCounts: new Float32Array(net.neurons(layer)),
      counts: Object.fromEntries(network.SPIKING_LAYERS.map((n) => [n, 0])),
    };
    await net.run(input, 1, thresh, beta, steps, (name, spikes, mem, t) => {
      if (name in trace.counts) {
        let total = 0;
        for (let i = 0; i < spikes.length; i++) total += spikes[i];
        trace.counts[name] += total;
      }
      if (name === "latent") {
        for (let n = 0; n < dim; n++) {
          trace.latentSpikes[n * steps + t] = spikes[n];
          trace.latentMem[n * steps + t] = mem[n];
        }
      }
      if (name === layer) {
        trace.layerMem.push(mem);
        for (let i = 0; i < spikes.length; i++) trace.layerCounts[i] += spikes[i];
      }
      if (name === "output") trace.outputs.push(mem);
    });
    trace.stepMse = trace.outputs.map((out) => mse(out, input));
    return trace;
  }

  side() {
    return this.network.shapes.output.slice(1);
  }

  /** What the benchmark times: the reconstruction, the raster and the numbers. */
  drawFirst(trace) {
    const { Plotly } = this;
    const [h, w] = this.side();
    const dim = this.network.latentDim;
    this.stepSlider.max = trace.steps;
    this.stepSlider.value = trace.steps;
    this.stepSlider.parentElement.querySelector("output").textContent = trace.steps;
    this.range = outputRange(trace.outputs);
    const last = trace.steps;
    Plotly.react(this.figure.playback, ...figures.reconstruction(this.look, figures.grid(trace.outputs[last - 1], h, w), this.range, last, last, trace.stepMse[last - 1]),
      figures.config("reconstruction_per_step"));
    const rows = (values) => figures.grid(values, dim, trace.steps);
    Plotly.react(this.figure.raster, ...figures.latentRaster(this.look, rows(trace.latentSpikes), rows(trace.latentMem), trace.steps), figures.config("latent_raster"));
    this.drawNumbers(trace);
  }

  drawNumbers(trace) {
    const dim = this.network.latentDim;
    let fired = 0;
    for (let n = 0; n < dim; n++) {
      let any = 0;
      for (let t = 0; t < trace.steps; t++) any += trace.latentSpikes[n * trace.steps + t];
      if (any > 0) fired += 1;
    }
    const total = Object.values(trace.counts).reduce((a, b) => a + b, 0);
    const set = (name, text) => { this.root.querySelector(`[data-number=${name}] [data-value]`).textContent = text; };
    set("mse", trace.stepMse[trace.steps - 1].toFixed(4));
    set("spikes", Math.round(total).toLocaleString("en"));
    set("latent", `${fired} of ${dim}`);
    set("ms", `${trace.ms.toFixed(1)} ms`);
  }

  drawLayer(trace, step) {
    const shape = this.network.shapes[trace.layer];
    const memTiles = figures.tileMaps(trace.layerMem[step - 1], shape);
    const countTiles = figures.tileMaps(trace.layerCounts, shape);
    this.Plotly.react(this.figure.layer, ...figures.layerFigure(this.look, trace.layer, shape.length === 3, memTiles, countTiles, trace.thresh, trace.steps, step),
      figures.config(`membrane_${trace.layer}`));
  }

  /** The playback: the reconstruction and the chosen layer after step ``step``. */
  drawStep(step) {
    const trace = this.trace;
    if (!trace) return;
    const [h, w] = this.side();
    this.stepSlider.value = step;
    this.stepSlider.parentElement.querySelector("output").textContent = step;
    this.Plotly.react(this.figure.playback, ...figures.reconstruction(this.look, figures.grid(trace.outputs[step - 1], h, w), this.range, step, trace.steps,
      trace.stepMse[step - 1]), figures.config("reconstruction_per_step"));
    this.drawLayer(trace, step);
  }

  togglePlay() {
    if (this.playing) return this.stopPlay();
    const trace = this.trace;
    if (!trace) return;
    let step = 0;
    this.playButton.textContent = "❚❚ pause";
    this.playing = setInterval(() => {
      step += 1;
      if (step > trace.steps || this.trace !== trace) return this.stopPlay();
      this.drawStep(step);
    }, PLAY_MS);
  }

  stopPlay() {
    clearInterval(this.playing);
    this.playing = null;
    this.playButton.textContent = "▶ play";
  }

  /**
   * For the real-browser tests: run ``batch`` images (base64 float32, batch x H x W) and return
   * every spiking layer's spikes (base64 uint8, [T, batch, ...]) and the output membrane
   * (base64 float32, [T, batch, H, W]).
   */
  async runBatch({ images, batch, thresh, beta, steps }) {
    const spikes = {}, outputs = [];
    await this.network.run(page.fromBase64(images, Float32Array), batch, thresh, beta, steps, (name, s, mem) => {
      if (network.SPIKING_LAYERS.includes(name)) (spikes[name] = spikes[name] || []).push(Uint8Array.from(s));
      if (name === "output") outputs.push(Float32Array.from(mem));
    });
    const joined = (parts, Type) => {
      const all = new Type(parts.reduce((n, p) => n + p.length, 0));
      parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
      return page.toBase64(all);
    };
    return { spikes: Object.fromEntries(Object.entries(spikes).map(([n, parts]) => [n, joined(parts, Uint8Array)])), outputs: joined(outputs, Float32Array) };
  }
}

function mse(output, input) {
  let sum = 0;
  for (let i = 0; i < input.length; i++) sum += (output[i] - input[i]) ** 2;
  return sum / input.length;
}

/** The playback's colour range: the server's (sae.plots.inside.reconstruction_playback). */
function outputRange(outputs) {
  let low = 0, high = 1;
  for (const out of outputs) for (const v of out) { if (v < low) low = v; if (v > high) high = v; }
  return [low, high];
}

export default function mount(component) {
  const root = component.parentElement.querySelector(".sae-in-page");
  root.view = root.view || new ExploreView(root);
  page.expose("explore", root.view);
  root.view.open(component).catch((error) => page.reportFailure(root.view, error));
  return () => root.view.stopPlay();
}
