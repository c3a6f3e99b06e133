//! jailtrace as a library, in two floors.
//!
//! - [`commands`]: one thin file per subcommand. Each turns its clap
//!   arguments into the core's options, calls the core, prints, and returns
//!   how jailtrace ends; [`commands::main`] is the one exit policy. clap
//!   never passes below this floor.
//! - [`core`]: the work. [`core::trace`] (the ptrace engine), [`core::resolve`]
//!   (host path resolution into manifest entries), [`core::manifest`] (the
//!   schema), [`core::jail`] (building a jail: plan, apply, the one
//!   beneath-root opener, accounts, devices, location), [`core::launch`]
//!   (entering a jail and running a command in it), [`core::audit`] (check's
//!   rules), [`core::diff`], [`core::merge`], [`core::verify`].
//!
//! Nothing in `core` uses `commands`. `docs/design.md` is the map.

pub mod commands;
pub mod core;
