# Sourced by the web scripts: puts the tools scripts/setup.sh installs on PATH and finds the drivers.
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export CHROMEDRIVER_BIN="${CHROMEDRIVER_BIN:-$(command -v chromedriver || true)}"
export GECKODRIVER_BIN="${GECKODRIVER_BIN:-$(command -v geckodriver || true)}"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}"

need() {
  local missing=0 tool
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "missing: $tool (run scripts/setup.sh)" >&2
      missing=1
    fi
  done
  return "$missing"
}
