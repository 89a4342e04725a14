// Builds dist/weiquan-widget.js (socket.io-client bundled in, no CDN) and dist/weiquan-widget.css, and the operator
// console's analytics page script ../weiquan/handoff/static/analytics.js (chart.js bundled in, no CDN).
// `npm ci && npm run build` rebuilds them; `npm run check` fails when the committed dist/ differs from src/.
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes("--check");
const pkg = JSON.parse(readFileSync(join(here, "package.json"), "utf8"));
const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8"));
const socketIoVersion = lock.packages["node_modules/socket.io-client"].version;
const chartVersion = lock.packages["node_modules/chart.js"].version;

const banner = `/*! weiquan-widget ${pkg.version} | built from widget/src by \`npm run build\` | ` +
  `bundles socket.io-client ${socketIoVersion} (MIT) */`;

const common = {
  bundle: true,
  minify: true,
  write: !check,
  logLevel: "warning",
  banner: { js: banner, css: banner },
  legalComments: "eof",
  absWorkingDir: here,
};

const results = await Promise.all([
  build({
    ...common,
    entryPoints: ["src/widget.js"],
    outfile: "dist/weiquan-widget.js",
    format: "iife",
    platform: "browser",
    target: ["es2020", "chrome80", "safari14", "firefox78"],
  }),
  build({ ...common, entryPoints: ["src/widget.css"], outfile: "dist/weiquan-widget.css", target: ["chrome80", "safari14"] }),
  build({
    ...common,
    banner: { js: `/*! weiquan console analytics page | built from weiquan/handoff/static/src by \`npm run build\` in ` +
      `widget/ | bundles chart.js ${chartVersion} (MIT) */` },
    entryPoints: ["../weiquan/handoff/static/src/analytics.js"],
    outfile: "../weiquan/handoff/static/analytics.js",
    nodePaths: [join(here, "node_modules")],
    format: "iife",
    platform: "browser",
    target: ["es2020", "chrome80", "safari14", "firefox78"],
  }),
]);

if (check) {
  let stale = false;
  for (const result of results) {
    for (const file of result.outputFiles) {
      let committed = "";
      try {
        committed = readFileSync(file.path, "utf8");
      } catch {
        // missing counts as stale
      }
      if (committed !== file.text) {
        console.error(`stale: ${file.path} — run \`npm run build\` in widget/`);
        stale = true;
      }
    }
  }
  process.exit(stale ? 1 : 0);
}
