//! "Nothing lost": a manifest that cannot be written is reported, the old
//! one is left intact, and the command's exit status is still told.

mod common;

use std::path::Path;

use common::{jailtrace, output, require_root, tempdir};
use nix::mount::{mount, umount, MsFlags};

/// Mounts a small tmpfs on `dir` for the duration of `f`.
fn with_tmpfs(dir: &Path, opts: &str, flags: MsFlags, f: impl FnOnce()) {
    std::fs::create_dir_all(dir).unwrap();
    mount(Some("tmpfs"), dir, Some("tmpfs"), flags, Some(opts)).expect("mount tmpfs");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    umount(dir).expect("umount");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn a_full_disk_keeps_the_old_manifest_and_reports_the_status() {
    if !require_root("a_full_disk_keeps_the_old_manifest_and_reports_the_status") {
        return;
    }
    let tmp = tempdir();
    let small = tmp.path().join("small");
    with_tmpfs(&small, "size=8k", MsFlags::empty(), || {
        let dest = small.join("m.json");
        std::fs::write(&dest, "OLD").unwrap();
        let out = output(jailtrace().args(["record", "-o"]).arg(&dest).args([
            "--",
            "/usr/bin/python3",
            "-c",
            "import json; raise SystemExit(3)",
        ]));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(
            err.contains("m.json") && err.contains("No space left"),
            "{err}"
        );
        assert!(err.contains("exited with status 3"), "{err}");
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "OLD");
        let leftovers: Vec<_> = std::fs::read_dir(&small)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "temporary files left: {leftovers:?}");
    });
}

#[test]
fn a_read_only_output_directory_is_reported() {
    if !require_root("a_read_only_output_directory_is_reported") {
        return;
    }
    let tmp = tempdir();
    let ro = tmp.path().join("ro");
    with_tmpfs(&ro, "size=64k", MsFlags::MS_RDONLY, || {
        let out = output(
            jailtrace()
                .args(["record", "-o"])
                .arg(ro.join("m.json"))
                .args(["--", "sh", "-c", "exit 4"]),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(err.contains("Read-only file system"), "{err}");
        assert!(err.contains("exited with status 4"), "{err}");
    });
}

#[test]
fn a_device_or_fifo_destination_is_written_in_place_never_replaced() {
    if !require_root("a_device_or_fifo_destination_is_written_in_place_never_replaced") {
        return;
    }
    use std::os::unix::fs::FileTypeExt;
    let tmp = tempdir();
    // A private null device: `-o /dev/null` must not turn the real one into
    // a regular file, and this proves it without touching the host's.
    let null = tmp.path().join("null");
    nix::sys::stat::mknod(
        &null,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    let out = output(
        jailtrace()
            .args(["record", "-o"])
            .arg(&null)
            .args(["--", "true"]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::symlink_metadata(&null)
        .unwrap()
        .file_type()
        .is_char_device());
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn a_symlinked_destination_updates_the_target_and_keeps_the_link() {
    let tmp = tempdir();
    let real = tmp.path().join("real.json");
    std::fs::write(&real, "OLD").unwrap();
    let link = tmp.path().join("link.json");
    std::os::unix::fs::symlink("real.json", &link).unwrap();
    let out = output(
        jailtrace()
            .args(["record", "-o"])
            .arg(&link)
            .args(["--", "true"]),
    );
    assert!(out.status.success());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&real)
        .unwrap()
        .contains("\"schema\""));
}

#[test]
fn a_dangling_symlink_destination_creates_its_target() {
    let tmp = tempdir();
    let link = tmp.path().join("link.json");
    std::os::unix::fs::symlink("sub/real.json", &link).unwrap();
    std::fs::create_dir(tmp.path().join("sub")).unwrap();
    let out = output(
        jailtrace()
            .args(["record", "-o"])
            .arg(&link)
            .args(["--", "true"]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(tmp.path().join("sub/real.json"))
        .unwrap()
        .contains("\"schema\""));
}

#[test]
fn the_dirfd_cache_never_keeps_a_file_system_busy() {
    if !require_root("the_dirfd_cache_never_keeps_a_file_system_busy") {
        return;
    }
    let tmp = tempdir();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    mount(
        Some("tmpfs"),
        &mnt,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=64k"),
    )
    .unwrap();
    let bin = common::fixture("umount", &[]);
    let out = output(
        jailtrace()
            .current_dir(tmp.path())
            .args(["record", "-o", "m.json", "--"])
            .arg(&bin)
            .arg(&mnt),
    );
    let unmounted = !std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(mnt.to_str().unwrap());
    if !unmounted {
        let _ = umount(&mnt);
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(unmounted);
}
