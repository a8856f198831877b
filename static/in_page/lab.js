// The Latent lab's editor computed in the page: a click on the code flips one spike, the
// decoder step graph (sae/io/browser_model.py) decodes the edited code here, and the answer
// is drawn at once.  The app hears of the edit afterwards (one rerun, for the link, the
// captions and the operation count), never in between.  Mounted by explorer/in_page.py.
//
// Siblings are imported with this module's own version query (see explore.js).

const version = new URL(import.meta.url).search;
const load = (name) => import(new URL(`./${name}.js${version}`, import.meta.url).href);
const [page, figures, network] = await Promise.all(["page", "figures", "network"].map(load));

const WRITE_BACK_MS = 400; // after the last click: a burst of clicks is one rerun
const STATE_NAMES = ["silent", "spike", "spike you added", "spike you removed"];

class LabView {
  constructor(root) {
    this.root = root;
    this.figure = Object.fromEntries([...root.querySelectorAll("[data-fig]")].map((el) => [el.dataset.fig, el]));
    this.grid = root.querySelector("[data-grid]");
    this.timings = new page.Timings(); // click -> decoded image painted
    this.frames = 0;
    this.request = page.latestWins((request) => this.compute(request), (error) => page.reportFailure(this, error));
    this.grid.addEventListener("click", (event) => {
      if (this.data && this.data.locked) return; // a lesson link locks the code: it is shown, not edited
      const cell = event.target.closest("[data-n]");
      if (cell) this.flip(Number(cell.dataset.n), Number(cell.dataset.t), event.timeStamp);
    });
  }

  /** The code as a grid of cells (neurons down, steps across): the server's editor, as HTML,
   * because a click changes one cell and Plotly would redraw the whole figure for it. */
  buildGrid(neurons, steps) {
    if (this.gridShape === `${neurons}x${steps}`) return;
    this.gridShape = `${neurons}x${steps}`;
    const every = neurons <= 32 ? 1 : 8; // row labels
    this.grid.style.gridTemplateColumns = `2.2em repeat(${steps}, minmax(0.8rem, 2.2rem))`;
    this.grid.replaceChildren();
    this.cells = [];
    for (let n = 0; n < neurons; n++) {
      const label = document.createElement("div");
      label.className = "sae-label";
      label.textContent = n % every === 0 ? n : "";
      this.grid.append(label);
      for (let t = 0; t < steps; t++) {
        const cell = document.createElement("div");
        Object.assign(cell.dataset, { n, t });
        cell.className = "sae-cell";
        cell.setAttribute("role", "gridcell");
        this.grid.append(cell);
        this.cells.push(cell);
      }
    }
    this.grid.append(document.createElement("div"));
    for (let t = 0; t < steps; t++) {
      const step = document.createElement("div");
      step.className = "sae-step";
      step.textContent = steps <= 20 || t % 5 === 4 ? t + 1 : "";
      this.grid.append(step);
    }
  }

  drawGrid() {
    const { neurons, steps } = this.data;
    this.buildGrid(neurons, steps);
    let edits = 0;
    this.cells.forEach((cell, i) => {
      const state = this.code[i] === this.own[i] ? this.code[i] : this.code[i] > this.own[i] ? 2 : 3;
      edits += state >= 2;
      cell.className = `sae-cell s${state}`;
      cell.title = `latent neuron ${cell.dataset.n}, step ${Number(cell.dataset.t) + 1}: ${STATE_NAMES[state]} (click to flip)`;
    });
    this.root.querySelector("[data-edits]").textContent = edits ? `(${edits} cells edited)` : "";
  }

  status(text) {
    const line = this.root.querySelector("[data-status]");
    line.textContent = text;
    line.hidden = !text;
  }

  async open(component) {
    this.component = component;
    const data = (this.data = component.data);
    this.look = figures.theme(this.root);
    // Neuron-major codes: code[n * steps + t].  Clicks not yet sent to the app win over the
    // app's copy, which is about to catch up with them.
    if (!this.writeBack || this.code?.length !== data.code.length) this.code = Uint8Array.from(data.code);
    this.own = Uint8Array.from(data.own);
    if (!this.ready) this.status("Loading the decoder into your browser…");
    const loaded = await page.loadAll(data, figures, network);
    if (this.component !== component) return;
    Object.assign(this, loaded, { ready: true });
    this.status("");
    this.request({ start: performance.now(), kind: "open" });
  }

  /** Flip the spike of ``neuron`` at ``step`` (0-based) and redraw from the page's own decode. */
  flip(neuron, step, start) {
    const { neurons, steps } = this.data;
    if (!(neuron >= 0 && neuron < neurons && step >= 0 && step < steps)) return;
    this.code[neuron * steps + step] ^= 1;
    this.request({ start, kind: "click" });
    clearTimeout(this.writeBack);
    this.writeBack = setTimeout(() => {
      this.writeBack = null;
      this.component.setTriggerValue("code", Array.from(this.code));
    }, WRITE_BACK_MS);
  }

  async compute(request) {
    if (!this.ready) return;
    const { steps, thresh, beta } = this.data;
    let image = null;
    await this.network.decode(this.code, steps, thresh, beta, (name, spikes, mem) => {
      if (name === "output") image = mem;
    });
    this.draw(image);
    this.timings.add(request.start, await page.afterPaint(), request.kind);
    this.frames += 1;
  }

  draw(image) {
    const [h, w] = this.network.shapes.output.slice(1);
    const input = Float32Array.from(this.data.input), own = Float32Array.from(this.data.own_recon);
    const error = image.map((v, i) => v - input[i]);
    const mse = (a) => a.reduce((sum, v, i) => sum + (v - input[i]) ** 2, 0) / input.length;
    const grid = (values) => figures.grid(values, h, w);
    this.drawGrid();
    this.Plotly.react(this.figure.decoded, ...figures.decodedComparison(this.look, grid(input), grid(own), grid(image), grid(error), mse(own), mse(image)),
      figures.config("decoded_code"));
  }

  /** For the real-browser tests: decode ``code`` (neuron-major 0/1) and return the image as base64 float32. */
  async decodeCode({ code, steps, thresh, beta }) {
    let image = null;
    await this.network.decode(Uint8Array.from(code), steps, thresh, beta, (name, spikes, mem) => {
      if (name === "output") image = mem;
    });
    return page.toBase64(image);
  }
}

export default function mount(component) {
  const root = component.parentElement.querySelector(".sae-in-page");
  root.view = root.view || new LabView(root);
  page.expose("lab", root.view);
  root.view.open(component).catch((error) => page.reportFailure(root.view, error));
  return () => clearTimeout(root.view.writeBack);
}
