//! jailtrace: record what a program touches and build a chroot jail from it.

use jailtrace::error::Exit;

fn main() {
    match jailtrace::cli::main() {
        Exit::Code(code) => std::process::exit(code),
        Exit::Signal(sig) => jailtrace::run::die_of(sig),
    }
}
