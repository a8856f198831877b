// The spiking autoencoder in the page: the two step graphs exported from the torch model
// (sae/io/browser_model.py) run by onnxruntime-web's WebAssembly backend.  No DOM here.
//
// One time step is one encoder step then one decoder step: decoding step t needs only the
// latent spikes of step t, so any num_steps is a loop and every step can be drawn.

const ENCODER_LAYERS = ["enc1", "enc2", "enc3", "latent"];
const DECODER_LAYERS = ["linear", "dec0", "dec1", "dec2", "output"];
export const SPIKING_LAYERS = ["enc1", "enc2", "enc3", "latent", "linear", "dec0", "dec1", "dec2"];

let runtime = null; // one onnxruntime-web per page, shared by every view

async function loadRuntime(urls) {
  if (typeof WebAssembly !== "object") throw new Error("this browser has no WebAssembly");
  if (!runtime) {
    // The runtime's JavaScript and its 15 MB of WebAssembly are fetched side by side (and beside
    // the model files and plotly.js): on a first visit they are most of the wait.  The
    // WebAssembly comes gzipped where this browser can unpack it.
    const binary = urls.wasmGzipped && typeof DecompressionStream === "function" ? fetchGunzipped(urls.wasmGzipped) : fetchBytes(urls.wasm);
    runtime = Promise.all([import(urls.ort), binary]).then(([ort, wasm]) => {
      // Threads need a cross-origin isolated page (SharedArrayBuffer); one thread is plenty
      // for about 5 M multiply-adds a step, and a proxy worker would add a hop per call.
      ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
      ort.env.wasm.proxy = false;
      ort.env.wasm.wasmPaths = { mjs: urls.wasmLoader, wasm: urls.wasm };
      ort.env.wasm.wasmBinary = wasm;
      return ort;
    });
    runtime.catch(() => { runtime = null; }); // a failed load may be retried by the next view
  }
  return runtime;
}

async function fetchResponse(url) {
  const name = url.split("/").pop().split("?")[0];
  let response;
  try {
    response = await fetch(url);
  } catch {
    throw new Error(`${name} could not be loaded`);
  }
  if (!response.ok) throw new Error(`${name} could not be loaded (HTTP ${response.status})`);
  return response;
}

async function fetchBytes(url) {
  return new Uint8Array(await (await fetchResponse(url)).arrayBuffer());
}

/** A file kept gzipped (scripts/vendor_js.py), unpacked here: the server sends it as it is. */
async function fetchGunzipped(url) {
  const response = await fetchResponse(url);
  return new Uint8Array(await new Response(response.body.pipeThrough(new DecompressionStream("gzip"))).arrayBuffer());
}

const networks = new Map(); // encoder URL -> Promise<Network>: each model is loaded once per page

/** The network for ``model`` ({encoder, decoder, shapes}), loaded once per page. */
export function openNetwork(urls, model) {
  if (!networks.has(model.encoder)) {
    const loading = (async () => {
      const graphs = Promise.all([model.encoder, model.decoder].map(fetchBytes));
      graphs.catch(() => {}); // reported below, or made moot by a failed runtime
      const ort = await loadRuntime(urls);
      const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
      const [encoder, decoder] = await Promise.all((await graphs).map((bytes) => ort.InferenceSession.create(bytes, options)));
      return new Network(ort, encoder, decoder, model.shapes);
    })();
    loading.catch(() => networks.delete(model.encoder));
    networks.set(model.encoder, loading);
    while (networks.size > 4) networks.delete(networks.keys().next().value); // a page sees few checkpoints
  }
  return networks.get(model.encoder);
}

const size = (shape) => shape.reduce((a, b) => a * b, 1);

export class Network {
  constructor(ort, encoder, decoder, shapes) {
    this.ort = ort;
    this.encoder = encoder;
    this.decoder = decoder;
    this.shapes = shapes; // layer -> membrane shape of one image, e.g. enc1: [32, 16, 16]
    this.latentDim = shapes.latent[0];
  }

  /** Neurons per image in ``layer``. */
  neurons(layer) {
    return size(this.shapes[layer]);
  }

  tensor(data, batch, shape) {
    return new this.ort.Tensor("float32", data, [batch, ...shape]);
  }

  zeros(layers, batch) {
    return Object.fromEntries(layers.map((n) => [n, this.tensor(new Float32Array(batch * this.neurons(n)), batch, this.shapes[n])]));
  }

  settings(thresh, beta) {
    return { thresh: new this.ort.Tensor("float32", Float32Array.of(thresh), []), beta: new this.ort.Tensor("float32", Float32Array.of(beta), []) };
  }

  async step(session, first, layers, mem, settings, record) {
    const feeds = { ...first, ...settings };
    for (const n of layers) feeds[`mem_${n}`] = mem[n];
    const out = await session.run(feeds);
    for (const n of layers) {
      mem[n] = out[`new_mem_${n}`];
      record(n, out[`spikes_${n}`].data, mem[n].data);
    }
    return out;
  }

  /**
   * Run ``images`` (Float32Array of batch x H x W, in [0, 1]) for ``steps`` steps.
   * ``record(layer, spikes, mem, step)`` sees every layer's spikes and membrane at every step
   * (typed arrays of the whole batch, fresh each step: keep what you need).
   */
  async run(images, batch, thresh, beta, steps, record) {
    const [height, width] = this.shapes.output.slice(1);
    const image = { image: this.tensor(images, batch, [1, height, width]) };
    const settings = this.settings(thresh, beta);
    const mem = { ...this.zeros(ENCODER_LAYERS, batch), ...this.zeros(DECODER_LAYERS, batch) };
    for (let t = 0; t < steps; t++) {
      const seen = (layer, spikes, membrane) => record(layer, spikes, membrane, t);
      const encoded = await this.step(this.encoder, image, ENCODER_LAYERS, mem, settings, seen);
      await this.step(this.decoder, { latent_spikes: encoded.spikes_latent }, DECODER_LAYERS, mem, settings, seen);
    }
  }

  /**
   * Decode a latent code (Uint8Array or array of 0/1, neuron-major: code[neuron * steps + step])
   * for one image; ``record`` as in run(), decoder layers only.
   */
  async decode(code, steps, thresh, beta, record) {
    const settings = this.settings(thresh, beta);
    const mem = this.zeros(DECODER_LAYERS, 1);
    const dim = this.latentDim;
    for (let t = 0; t < steps; t++) {
      const spikes = new Float32Array(dim);
      for (let n = 0; n < dim; n++) spikes[n] = code[n * steps + t];
      const seen = (layer, s, membrane) => record(layer, s, membrane, t);
      await this.step(this.decoder, { latent_spikes: this.tensor(spikes, 1, [dim]) }, DECODER_LAYERS, mem, settings, seen);
    }
  }
}
