import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` serves the page on :5173 and proxies the handler routes to the Python app on :8000,
// so the page and the API share an origin; `npm run build` writes dist/, which the apps serve.
export default defineConfig({
  plugins: [react()],
  server: { proxy: { "/api": "http://127.0.0.1:8000", "/login": "http://127.0.0.1:8000" } },
});
