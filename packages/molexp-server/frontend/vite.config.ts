// Builds the web UI straight into the Python package so the wheel ships it (no Node.js at install time).
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "../src/molexp/server/static",
    emptyOutDir: true,
    assetsDir: "_app",
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    // `npm run dev` proxies the API to a running `molexp serve` on the default port.
    proxy: { "/api": "http://127.0.0.1:8765" },
  },
});
