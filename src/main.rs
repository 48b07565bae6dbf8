//! The `llmage` binary: see [`llmage::cli`].

fn main() -> std::process::ExitCode {
    llmage::cli::main()
}
