//! The `trilemma` command line; it lives in the library as [`trilemma::cli`] (feature `cli`).

fn main() -> std::process::ExitCode {
    trilemma::cli::main()
}
