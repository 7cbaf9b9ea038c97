import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Two builds of the one page: `vite build` with autumn-js 1.2.28 into dist/, and
// `vite build --mode latest` with the newest 1.x (installed as the npm alias autumn-js-latest)
// into dist-latest/. The page shows the version it was built with (data-testid autumn-js-version).
// Relative asset paths, so each Python adapter can serve a build from its own root.
export default defineConfig(({ mode }) => {
  const pkg = mode === "latest" ? "autumn-js-latest" : "autumn-js";
  const manifest = new URL(`./node_modules/${pkg}/package.json`, import.meta.url);
  const { version } = JSON.parse(readFileSync(fileURLToPath(manifest), "utf8"));
  return {
    plugins: [react()],
    base: "./",
    resolve: pkg === "autumn-js" ? {} : { alias: [{ find: /^autumn-js(?=\/|$)/, replacement: pkg }] },
    define: { __AUTUMN_JS_VERSION__: JSON.stringify(version) },
    build: { outDir: mode === "latest" ? "dist-latest" : "dist", emptyOutDir: true },
  };
});
