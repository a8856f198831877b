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

class LabView {
  constructor(root) {
    this.root = root;
    this.figure = Object.fromEntries([...root.querySelectorAll("[data-fig]")].map((el) => [el.dataset.fig, el]));
    this.timings = new page.Timings(); // click -> decoded image painted
    this.frames = 0;
    this.request = page.latestWins((request) => this.compute(request), (error) => page.reportFailure(this, error));
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
    const { Plotly } = this;
    const { neurons, steps } = this.data;
    const [h, w] = this.network.shapes.output.slice(1);
    const input = Float32Array.from(this.data.input), own = Float32Array.from(this.data.own_recon);
    const error = image.map((v, i) => v - input[i]);
    const mse = (a) => a.reduce((sum, v, i) => sum + (v - input[i]) ** 2, 0) / input.length;
    const grid = (values) => figures.grid(values, h, w);
    Plotly.react(this.figure.editor, ...figures.codeEditor(this.look, figures.editorStates(this.code, this.own, neurons, steps), steps),
      { ...figures.config("latent_code_edited"), displayModeBar: false });
    Plotly.react(this.figure.decoded, ...figures.decodedComparison(this.look, grid(input), grid(own), grid(image), grid(error), mse(own), mse(image)),
      figures.config("decoded_code"));
    if (!this.listening) {
      this.figure.editor.on("plotly_click", (event) => {
        const point = event.points[0];
        this.flip(point.y, point.x - 1, event.event.timeStamp);
      });
      this.listening = true;
    }
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
