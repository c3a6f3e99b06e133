//! Writing a manifest (or an export) atomically beside its destination,
//! never through a planted link; and the digest format.

use std::path::{Path, PathBuf};

use super::ManifestError;

/// Writes a file atomically: temp file beside it, fsync, rename. A symlink
/// is followed (its target is replaced, not the link), except where the
/// kernel's `protected_symlinks` would refuse to follow it: jailtrace runs
/// as root and follows the link itself, so that rule must be its own. A
/// destination that exists and is not a regular file (`/dev/null`, a FIFO,
/// a terminal) is written in place: renaming over it would replace a
/// device node with a file.
pub fn save_atomic(
    dest: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), ManifestError> {
    let err = |cause| ManifestError::Write {
        path: dest.display().to_string(),
        cause,
    };
    let target = output_target(dest)?;
    // Resolved by the kernel, which also knows /proc's magic links
    // (`/dev/stdout` to a pipe reads as `pipe:[N]`, no path).
    if let Ok(md) = std::fs::metadata(dest) {
        if !md.is_file() {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(dest)
                .map_err(err)?;
            return fill(&mut f).map_err(err);
        }
    }
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".jailtrace-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(err)?;
    fill(tmp.as_file_mut()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    // Manifests are not secret, but keep the usual umask-derived mode rather
    // than tempfile's 0600.
    let mode = 0o666 & !current_umask();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(mode),
    )
    .map_err(err)?;
    tmp.persist(&target).map_err(|e| err(e.error))?;
    Ok(())
}

/// Where saving to `dest` would write, or why it would refuse (see
/// [`save_atomic`]): for checks before long work.
pub fn output_target(dest: &Path) -> Result<PathBuf, ManifestError> {
    final_target(dest).map_err(|reason| ManifestError::Refused {
        path: dest.display().to_string(),
        reason,
    })
}

/// Where `dest` leads through symlinks (even to a file that does not exist
/// yet), so that saving replaces the link's target, never the link. A link
/// that another user planted in a sticky, world-writable directory (`/tmp`)
/// is refused, as the kernel's `protected_symlinks` refuses it: it is
/// followed only when its owner is the caller or the directory's owner.
fn final_target(dest: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let euid = nix::unistd::geteuid().as_raw();
    let mut p = dest.to_path_buf();
    for _ in 0..40 {
        let Ok(link) = std::fs::symlink_metadata(&p) else {
            break;
        };
        if !link.file_type().is_symlink() {
            break;
        }
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if let Ok(d) = std::fs::metadata(&dir) {
            let sticky_open = d.mode() & 0o1002 == 0o1002;
            if sticky_open && link.uid() != euid && link.uid() != d.uid() {
                // The link may be a hop of a chain: name it.
                let which = if p == dest {
                    "a symlink".to_string()
                } else {
                    format!("leads through {}, a symlink", p.display())
                };
                return Err(format!(
                    "{which} owned by uid {} in the sticky, world-writable directory {}: not \
                     followed (as protected_symlinks would not); remove it or write elsewhere",
                    link.uid(),
                    dir.display()
                ));
            }
        }
        match std::fs::read_link(&p) {
            Ok(t) if t.is_absolute() => p = t,
            Ok(t) => p = dir.join(&t),
            Err(_) => break,
        }
    }
    Ok(p)
}

fn current_umask() -> u32 {
    // umask can only be read by setting it; restore it at once. Called once
    // per save, before any threads of ours touch files.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(old);
    old.bits()
}

/// The hex SHA-256 of everything `r` yields: the one digest format of the
/// manifest (`record --hash`, `materialize`'s checks).
pub fn sha256_hex(mut r: impl std::io::Read) -> std::io::Result<String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut r, &mut h)?;
    Ok(hex(&h.finalize()))
}

/// Lower-case hex, as digests are written.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
