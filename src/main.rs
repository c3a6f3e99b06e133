//! jailtrace: record what a program touches and build a chroot jail from it.

use jailtrace::core::error::Exit;

fn main() {
    match jailtrace::commands::main() {
        Exit::Code(code) => std::process::exit(code),
        Exit::Signal(sig) => jailtrace::core::launch::die_of(sig),
    }
}
