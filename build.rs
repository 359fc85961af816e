//! Aliases the browser target once: `cfg(web)` means wasm32 with no OS (a browser, a worker, Node, workerd).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(web)");
    let family = std::env::var("CARGO_CFG_TARGET_FAMILY").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if family.split(',').any(|f| f == "wasm") && os == "unknown" {
        println!("cargo::rustc-cfg=web");
    }
}
