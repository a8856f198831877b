// What every in-page view shares: loading what it needs, reporting a failure back to the app
// (which then computes on the server and says so), drawing at most once a frame with the
// latest request winning, and the test hook on window.saeInPage.

/** plotly.js and the network of ``data.model``, loaded once per page. */
export async function loadAll(data, figures, network) {
  const marked = (name, promise) => promise.then((value) => (performance.mark(`sae:${name}`), value)); // for profiling a first load
  const [Plotly, net] = await Promise.all([marked("plotly", figures.loadPlotly(data.urls.plotly)), marked("network", network.openNetwork(data.urls, data.model))]);
  return { Plotly, network: net };
}

/** Tell the app the page cannot compute here (it reruns on the server and says so in one line). */
export function reportFailure(view, error) {
  const reason = String((error && error.message) || error || "unknown error").slice(0, 300);
  console.error("in-page network:", error);
  view.failed = reason;
  view.status(`Cannot run the network in this browser (${reason}); computing on the server instead.`);
  view.component.setStateValue("failure", reason);
}

/**
 * ``work(request)`` for the latest request only, one at a time: a request made while one is
 * being computed and drawn waits, and a newer one replaces it, so a slow frame never builds a
 * queue behind the slider.  An idle view starts at once (a click would otherwise wait for the
 * next frame; slider input already arrives once a frame).  ``ask.waiting()``: one waits.
 */
export function latestWins(work, onError) {
  let pending = null, busy = false;
  const loop = async () => {
    busy = true;
    while (pending !== null) {
      const request = pending;
      pending = null;
      try {
        await work(request);
      } catch (error) {
        onError(error);
      }
    }
    busy = false;
  };
  const ask = (request) => {
    pending = request;
    if (!busy) queueMicrotask(loop); // after the event handler, before the browser paints
  };
  ask.waiting = () => pending !== null;
  return ask;
}

/** Resolves after the browser has painted the frame in which it was called. */
export function afterPaint() {
  return new Promise((resolve) => requestAnimationFrame(() => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve(performance.now());
    channel.port2.postMessage(null);
  }));
}

export function fromBase64(text, Type) {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return new Type(bytes.buffer);
}

export function toBase64(typed) {
  const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** A bounded list of timings for the benchmark: [asked at, painted at, why] ("open", "input", "click"). */
export class Timings {
  constructor(limit = 1000) {
    this.limit = limit;
    this.list = [];
  }

  add(start, end, kind) {
    this.list.push([start, end, kind]);
    if (this.list.length > this.limit) this.list.shift();
  }
}

/** Register ``view`` as ``window.saeInPage[name]``: what the real-browser tests and the benchmark read. */
export function expose(name, view) {
  window.saeInPage = window.saeInPage || {};
  window.saeInPage[name] = view;
}
