// A lean Python boot for the explorer: Pyodide straight from ./pyodide/ with the build's lock, the page's
// packages loaded while the runtime starts, its Python modules fetched meanwhile, then the page's script.
//
//   <script type="text/x-python" data-packages='["pyodide-transport"]' data-files='{"./ptsite/a.py": "ptsite/a.py"}'>
//   await main()
//   </script>
//   <script type="module" src="./assets/pyboot.js"></script>
//
// PyScript does the same and more (its own Python package, micropip for "packages", terminals, editors); the
// explorer needs none of it, and skipping it takes ~0.7 s off a cold load. A failed boot is shown in the page's
// loader (body.boot-failed) and on the console.
import { loadPyodide } from "../pyodide/pyodide.mjs";

const script = document.querySelector('script[type="text/x-python"]');
const packages = JSON.parse(script.dataset.packages || "[]");
const files = Object.entries(JSON.parse(script.dataset.files || "{}"));
const indexURL = new URL("../pyodide/", import.meta.url).href;

function failed(err) {
  console.error(err);
  const text = document.querySelector('[data-testid="loading-stage"]');
  if (text) text.textContent = `Failed to start: ${err && err.message ? err.message : err}`;
  document.body.classList.add("boot-failed");
}

try {
  const fetched = Promise.all(
    files.map(async ([url, path]) => {
      const response = await fetch(new URL(url, location.href), { cache: "no-cache" });
      if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
      return [path, new Uint8Array(await response.arrayBuffer())];
    }),
  );
  const py = await loadPyodide({ indexURL, lockFileURL: new URL("pyodide-lock.json", indexURL).href, packages });
  const home = py.runPython("import os; os.getcwd()");
  for (const [path, data] of await fetched) {
    const target = `${home}/${path}`;
    py.FS.mkdirTree(target.slice(0, target.lastIndexOf("/")));
    py.FS.writeFile(target, data);
  }
  py.runPython(`import sys\nif ${JSON.stringify(home)} not in sys.path: sys.path.insert(0, ${JSON.stringify(home)})`);
  await py.runPythonAsync(script.textContent);
} catch (err) {
  failed(err);
}
