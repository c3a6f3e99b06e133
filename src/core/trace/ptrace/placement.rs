//! CPU placement of the tracer and the command (`--cpu`): every ptrace stop
//! is a round trip between them, and on different CPUs each trip costs a
//! cross-CPU wake-up. See docs/performance.md for the measurements.

use super::sys;
use crate::core::trace::Placement;

/// What placing did, to be undone after the trace.
pub struct Placed {
    placement: Placement,
    pinned: bool,
    original: Option<libc::cpu_set_t>,
}

impl Placed {
    /// Pins jailtrace (and so, by inheritance, the command) as `placement`
    /// asks, before the fork.
    pub fn new(placement: Placement) -> Placed {
        let original = sys::get_affinity().ok();
        let pinned = match placement {
            Placement::None => false,
            Placement::Tracer | Placement::Same => sys::pin_to_current_cpu().is_ok(),
        };
        Placed {
            placement,
            pinned,
            original,
        }
    }

    /// The mask the command gets back in its child, with `--cpu tracer`.
    pub fn child_affinity(&self) -> Option<libc::cpu_set_t> {
        (self.pinned && self.placement == Placement::Tracer)
            .then_some(self.original)
            .flatten()
    }

    /// With `--cpu same`: the command's original mask, as the bytes
    /// sched_getaffinity returns, which the tracer writes over the pinned
    /// one, so that `nproc` and thread pools size themselves as untraced.
    pub fn virtual_mask(&self) -> Option<Vec<u8>> {
        match (self.pinned, self.placement, &self.original) {
            (true, Placement::Same, Some(m)) => Some(sys::mask_bytes(m)),
            _ => None,
        }
    }

    /// Gives jailtrace its CPUs back: resolution, hashing and materialize
    /// rounds may use every CPU.
    pub fn restore(&self) {
        if let (true, Some(mask)) = (self.pinned, &self.original) {
            sys::set_affinity(mask);
        }
    }
}
