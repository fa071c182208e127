//! The `grantbox` binary: parses the command line and runs it.

use clap::Parser as _;

/// mimalloc instead of glibc's malloc: a token request makes hundreds of small
/// allocations (hyper, sqlx, wasmtime's per-request `Store`), and glibc's
/// malloc and free were a large share of its instructions under callgrind
/// (the figures: bench/README.md, `profile.sh`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = grantbox::cli::Cli::parse();
    grantbox::serve::init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(grantbox::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
