//! The `wasmgate` CLI for the integration tests to spawn: identical to `host/src/main.rs`.

#[global_allocator]
static ALLOCATOR: wasmgate_server::sys::CountingAlloc = wasmgate_server::sys::CountingAlloc;

fn main() -> std::process::ExitCode {
    wasmgate::cli::main()
}
