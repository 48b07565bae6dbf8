//! The `llmage` binary: see [`llmage::cli`].

// mimalloc: the request path allocates many small, short-lived buffers (JSON values, headers);
// glibc's malloc spent about a sixth of the gateway's CPU on them in the benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    llmage::cli::main()
}
