//! The `pivot` core binary: parse arguments, run, map the outcome to an exit code.

mod glibc_floor;

fn main() {
    let code = pivot::main_with_args(std::env::args_os().collect());
    std::process::exit(code);
}
