// Boot progress for pages that start Python: marks the loading stages as the
// browser fetches the runtime, the wheels and the page's Python modules.
// Python ends the boot by removing the "booting" class from <body>.
const started = performance.now();
const stages = ["runtime", "python", "packages", "app"];

function setStage(name, label) {
  const index = stages.indexOf(name);
  for (const li of document.querySelectorAll("[data-stage]")) {
    const i = stages.indexOf(li.dataset.stage);
    li.classList.toggle("done", i < index);
    li.classList.toggle("active", i === index);
  }
  const text = document.querySelector('[data-testid="loading-stage"]');
  if (text) text.textContent = label;
}

let current = 0;
let wheels = 0;
function advance(name, label) {
  const index = stages.indexOf(name);
  if (index > current || (index === current && name === "packages")) {
    current = index;
    setStage(name, label);
  }
}

new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const url = entry.name;
    if (url.endsWith("pyodide.asm.wasm") || url.endsWith("python_stdlib.zip")) {
      advance("python", "Starting the Python interpreter");
    } else if (url.endsWith(".whl")) {
      wheels += 1;
      advance("packages", `Installing packages (${wheels} wheels fetched)`);
    } else if (url.includes("/ptsite/")) {
      advance("app", "Loading the page's Python modules");
    }
  }
}).observe({ type: "resource", buffered: true });

const elapsed = document.querySelector('[data-testid="loading-elapsed"]');
const timer = setInterval(() => {
  if (!document.body.classList.contains("booting")) {
    clearInterval(timer);
    return;
  }
  if (elapsed) elapsed.textContent = `${((performance.now() - started) / 1000).toFixed(1)} s`;
}, 100);

// PyScript reports a failed boot or script as a .py-error element: surface it in the loader.
addEventListener("error", (event) => {
  const text = document.querySelector('[data-testid="loading-stage"]');
  if (text && document.body.classList.contains("booting")) {
    text.textContent = `Failed to start: ${event.message || "see the browser console"}`;
    document.body.classList.add("boot-failed");
  }
});
