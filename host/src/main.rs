//! The `wasmgate` binary: the counting allocator (for the allocation metrics) and the CLI.

#[global_allocator]
static ALLOCATOR: wasmgate::sys::CountingAlloc = wasmgate::sys::CountingAlloc;

fn main() -> std::process::ExitCode {
    wasmgate::cli::main()
}
