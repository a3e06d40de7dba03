// Starts the worker and shows what it reports.
const out = document.querySelector("[data-testid=worker-result]");
const worker = new Worker(new URL("./worker-test.js", import.meta.url), { type: "module" });
worker.onmessage = (event) => {
  out.textContent = JSON.stringify(event.data);
  out.dataset.done = "1";
};
worker.onerror = (event) => {
  out.textContent = JSON.stringify({ ok: false, error: String(event.message || event) });
  out.dataset.done = "1";
};
worker.postMessage({ server: location.origin });
