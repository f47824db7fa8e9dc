//! The bench suite's entry point; run it with `cargo xtask bench` (see `basiq_bench`).

#[global_allocator]
static ALLOCATOR: basiq_bench::CountingAlloc = basiq_bench::CountingAlloc;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match basiq_bench::run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("basiq-bench: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
