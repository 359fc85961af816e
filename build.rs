//! Aliases the browser target once: `cfg(web)` means wasm32 with no OS (a browser, a worker, Node, workerd).
//! `cfg(rusqlite)` means this build links rusqlite: feature `sqlite` natively, feature `browser` on
//! `web` (its rusqlite is a dependency of its own there, see Cargo.toml).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(web)");
    println!("cargo::rustc-check-cfg=cfg(rusqlite)");
    let family = std::env::var("CARGO_CFG_TARGET_FAMILY").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let wasm = family.split(',').any(|f| f == "wasm");
    let web = wasm && os == "unknown";
    if web {
        println!("cargo::rustc-cfg=web");
    }
    let feature = |name: &str| std::env::var_os(format!("CARGO_FEATURE_{name}")).is_some();
    if (web && feature("BROWSER")) || (!wasm && feature("SQLITE")) {
        println!("cargo::rustc-cfg=rusqlite");
    }
}
