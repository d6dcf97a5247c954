//! The hello plugin is the benchmark plugin, so it declares the small shadow stack it needs (64 KiB
//! instead of Rust's default 1 MiB). Its linear memory then starts at 2 pages instead of 17, and
//! every per-request reset of its instance (docs/decisions/0003-performance.md) has 8x fewer pages
//! to look at. Rust's wasm targets put the stack first, so an overflow traps (a 500), never
//! corrupts data.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=-zstack-size=65536");
    }
}
