import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Relative asset paths, so each Python adapter can serve dist/ from its own root.
export default defineConfig({
  plugins: [react()],
  base: "./",
  build: { outDir: "dist", emptyOutDir: true },
});
