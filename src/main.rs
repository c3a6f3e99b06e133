//! jailtrace: record what a program touches and build a chroot jail from it.

fn main() {
    std::process::exit(jailtrace::cli::main());
}
