// webpack 5 production build of the scratch app (scripts/test-package.sh): the worker (new Worker(new URL(...)))
// and the .wasm (new URL(..., import.meta.url)) are found by webpack itself.
import { fileURLToPath } from "node:url";
export default {
  mode: "production",
  entry: "./main.js",
  output: { path: fileURLToPath(new URL("./dist-webpack", import.meta.url)), filename: "main.js", clean: true },
  experiments: { topLevelAwait: true },
  performance: { hints: false },
};
