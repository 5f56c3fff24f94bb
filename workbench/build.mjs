// One bundle, no CDN: the page must work offline.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

// OUT: another folder (the test that the shipped page is built from this source uses it).
const out = process.env.OUT ? process.env.OUT.replace(/\/?$/, "/")
  : new URL("../raypipe/http/workbench_static/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ["src/main.jsx"],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  jsx: "automatic",
  jsxImportSource: "preact",
  outfile: out + "app.js",
  legalComments: "linked",
  logLevel: "info",
});
copyFileSync("src/index.html", out + "index.html");
copyFileSync("src/style.css", out + "style.css");
