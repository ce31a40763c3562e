//! The `pivot` binary: parse arguments, run, map the outcome to an exit code.

fn main() {
    let code = pivot::main_with_args(std::env::args_os().collect());
    std::process::exit(code);
}
