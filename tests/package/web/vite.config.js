// Vite production build of the scratch app: the page client's worker is an ES module worker.
export default {
  logLevel: "warn",
  worker: { format: "es" },
  build: { target: "es2022", outDir: "dist-vite", emptyOutDir: true },
};
