//! The `wasmgate` binary: the counting allocator (for the allocation metrics) and the CLI.

#[global_allocator]
static ALLOCATOR: wasmgate_server::sys::CountingAlloc = wasmgate_server::sys::CountingAlloc;

fn main() -> std::process::ExitCode {
    wasmgate::cli::main()
}
