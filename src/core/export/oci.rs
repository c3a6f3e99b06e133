//! The OCI export: an image archive (`oci-archive`: an OCI image layout in
//! one tar file) whose single layer holds the jail `materialize` would
//! build, from the same plan and with the same rules.
//!
//! Reproducible: entries are in plan order (parents first, then by path),
//! owners and modes are the host's as `materialize` gives them, files keep
//! their host modification times (Python checks them against its caches),
//! directories and the archive's own entries get time 0, no image field
//! holds a date, and the layer's gzip header holds neither a time nor a
//! name. The same manifest and host give the same bytes.

use std::io::{Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;

use sha2::{Digest, Sha256};

use crate::core::error::Failure;
use crate::core::export::{self, Common};
use crate::core::jail::host::{self, HostFiles, Unreadable};
use crate::core::jail::plan::{Item, Want};
use crate::core::manifest::Manifest;

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub common: Common,
    /// The image's `User`, numeric (`uid:gid`).
    pub user: Option<String>,
    /// `Env`: `NAME=VALUE` each.
    pub env: Vec<String>,
    /// The reference name in the index (`oci-archive:FILE:TAG`).
    pub tag: String,
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn digest(hash: Sha256) -> String {
    crate::core::manifest::hex(&hash.finalize())
}

fn fail(msg: String) -> anyhow::Error {
    Failure::new(msg).into()
}

/// The image's architecture name for this machine (the recording's).
fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn header(kind: tar::EntryType, mode: u32, uid: u32, gid: u32, mtime: i64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(u64::from(uid));
    h.set_gid(u64::from(gid));
    h.set_mtime(u64::try_from(mtime).unwrap_or(0));
    h.set_size(0);
    h
}

/// Writes one plan item into the layer.
fn add_item<W: Write>(
    tar: &mut tar::Builder<W>,
    item: &Item,
    hosts: &mut HostFiles,
    warnings: &mut Vec<String>,
) -> anyhow::Result<()> {
    let p = &item.path;
    let rel = std::path::Path::new(std::ffi::OsStr::from_bytes(p.relative()));
    let io = |e: std::io::Error| fail(format!("{p}: cannot write it into the layer: {e}"));
    match &item.want {
        Want::Dir(meta) => {
            let mut h = header(tar::EntryType::Directory, meta.mode, meta.uid, meta.gid, 0);
            tar.append_data(&mut h, rel, std::io::empty()).map_err(io)?;
        }
        Want::File {
            mode_cap,
            keep_special,
            content,
            sha256,
            rewrite,
            ..
        } => {
            // The same reading and checks as materialize's copy.
            let (mut f, st) = hosts.open(p).map_err(|e| match e {
                Unreadable::Gone => {
                    fail(format!("{p}: not copied: it no longer exists on the host"))
                }
                Unreadable::Other(msg) => fail(format!("{p}: {msg}")),
            })?;
            let (mode, stripped) =
                crate::core::jail::apply::copy_mode(st.st_mode, *mode_cap, *keep_special, p);
            if let Some(why) = stripped {
                warnings.push(format!("{p}: {why}"));
            }
            if mode & 0o6000 != 0 {
                warnings.push(format!(
                    "{p}: setuid/setgid (mode {mode:04o}, owner {}:{}), as on the host",
                    st.st_uid, st.st_gid
                ));
            }
            let mut h = header(
                tar::EntryType::Regular,
                mode,
                st.st_uid,
                st.st_gid,
                st.st_mtime,
            );
            let text = match rewrite {
                Some(r) if *content => {
                    Some(host::rewritten(&f, r).map_err(|e| fail(format!("{p}: {e}")))?)
                }
                _ => None,
            };
            if let (Some(want), true) = (sha256, *content) {
                host::check_sha256(&f, want).map_err(|e| fail(format!("{p}: {e}")))?;
            }
            match text {
                // Only looked up or refused: its size, none of its bytes
                // (zeros, which the layer's gzip all but erases).
                None if !*content => {
                    let size = st.st_size as u64;
                    h.set_size(size);
                    tar.append_data(&mut h, rel, std::io::repeat(0).take(size))
                        .map_err(io)?;
                }
                Some(t) => {
                    h.set_size(t.len() as u64);
                    tar.append_data(&mut h, rel, t.as_slice()).map_err(io)?;
                }
                None => {
                    let size = st.st_size as u64;
                    h.set_size(size);
                    // Exactly the size stat gave: a file that grows meanwhile
                    // cannot corrupt the archive.
                    let mut body = (&mut f).take(size);
                    tar.append_data(&mut h, rel, &mut body).map_err(io)?;
                    if body.limit() != 0 {
                        return Err(fail(format!(
                            "{p}: the host file shrank while it was read; export again"
                        )));
                    }
                }
            }
        }
        Want::Symlink {
            target,
            uid,
            gid,
            times,
        } => {
            let mtime = times.map_or(0, |t| t[1].0);
            let mut h = header(tar::EntryType::Symlink, 0o777, *uid, *gid, mtime);
            let target = std::path::Path::new(std::ffi::OsStr::from_bytes(target));
            tar.append_link(&mut h, rel, target).map_err(io)?;
        }
        Want::Device {
            block,
            major,
            minor,
            meta,
        } => {
            let kind = if *block {
                tar::EntryType::Block
            } else {
                tar::EntryType::Char
            };
            let mut h = header(kind, meta.mode, meta.uid, meta.gid, 0);
            h.set_device_major(*major).map_err(io)?;
            h.set_device_minor(*minor).map_err(io)?;
            tar.append_data(&mut h, rel, std::io::empty()).map_err(io)?;
        }
        Want::Fifo(meta) => {
            let mut h = header(tar::EntryType::Fifo, meta.mode, meta.uid, meta.gid, 0);
            tar.append_data(&mut h, rel, std::io::empty()).map_err(io)?;
        }
    }
    Ok(())
}

/// One blob of the image: its digest and size.
struct Blob {
    digest: String,
    size: u64,
}

fn json_blob(v: &serde_json::Value) -> (Vec<u8>, Blob) {
    let bytes = serde_json::to_vec(v).expect("JSON values serialize");
    let blob = Blob {
        digest: crate::core::manifest::sha256_hex(bytes.as_slice()).expect("reading memory"),
        size: bytes.len() as u64,
    };
    (bytes, blob)
}

/// The layer as written: its blob (gzip-compressed tar) and the digest of
/// the tar itself (the config's `diff_id`).
struct Layer {
    blob: Blob,
    diff_id: String,
}

/// Writes the layer (the plan's objects) to an unnamed temporary file:
/// its digest, known only at the end, names it in the archive. It is
/// compressed with gzip at a fixed level and a header without a time or a
/// name, so the same plan gives the same bytes.
fn write_layer(
    plan: &crate::core::jail::plan::Plan,
    warnings: &mut Vec<String>,
) -> anyhow::Result<(std::fs::File, Layer)> {
    let mut layer_file = tempfile::tempfile()
        .map_err(|e| fail(format!("cannot create a temporary file for the layer: {e}")))?;
    let io = |e: std::io::Error| fail(format!("cannot write the layer: {e}"));
    let layer = {
        let compressed = Hashing {
            inner: std::io::BufWriter::new(&mut layer_file),
            hash: Sha256::new(),
            len: 0,
        };
        let gz = flate2::GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(compressed, flate2::Compression::default());
        let mut tar = tar::Builder::new(Hashing {
            inner: gz,
            hash: Sha256::new(),
            len: 0,
        });
        let mut hosts = HostFiles::default();
        for item in plan.items.iter().filter(|i| !i.path.is_root()) {
            add_item(&mut tar, item, &mut hosts, warnings)?;
        }
        let plain = tar.into_inner().map_err(io)?;
        let diff_id = digest(plain.hash);
        let mut w = plain.inner.finish().map_err(io)?;
        w.flush().map_err(io)?;
        Layer {
            blob: Blob {
                size: w.len,
                digest: digest(w.hash),
            },
            diff_id,
        }
    };
    Ok((layer_file, layer))
}

/// Writes the image archive of `m` to `out`; returns the warnings.
pub fn write(
    m: &Manifest,
    name: &str,
    opts: &Options,
    out: &mut dyn Write,
) -> anyhow::Result<Vec<String>> {
    // Trees kept whole go into the image as they are on the host now.
    let (m, _) = crate::core::jail::trees::expand(m, &[])?;
    let m = m.as_ref();
    let plan = export::plan_of(m, name, &opts.common)?;
    let mut warnings = crate::core::jail::devices::export_warnings(m, &opts.common.allow_devices)
        .map_err(|e| fail(format!("{name}: {e}")))?;
    warnings.extend(plan.warnings.iter().cloned());
    warnings.extend(
        plan.stripped
            .iter()
            .map(|(p, n)| crate::core::jail::accounts::stripped_notice(p, *n)),
    );
    let program = export::program_path(m)?;
    let utf8 = |b: &[u8], what: &str| {
        String::from_utf8(b.to_vec()).map_err(|_| {
            fail(format!(
                "{name}: {what} is not UTF-8, which an image config cannot hold"
            ))
        })
    };

    let (mut layer_file, layer) = write_layer(&plan, &mut warnings)?;

    let cwd = &m.command.cwd;
    let has_cwd = export::plans_dir(&plan, cwd);
    let mut config = serde_json::json!({
        "Entrypoint": [utf8(program.as_bytes(), "the program's path")?],
        "Cmd": m.command.argv.iter().skip(1)
            .map(|a| utf8(&a.0, "an argument"))
            .collect::<anyhow::Result<Vec<_>>>()?,
        "WorkingDir": if has_cwd { utf8(cwd.as_bytes(), "the working directory")? } else { "/".into() },
        "Env": opts.env,
    });
    if let Some(u) = &opts.user {
        config["User"] = u.clone().into();
    }
    let (config_bytes, config_blob) = json_blob(&serde_json::json!({
        "architecture": architecture(),
        "os": "linux",
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{}", layer.diff_id)] },
        "history": [ { "created_by": format!("jailtrace {} export", env!("CARGO_PKG_VERSION")) } ],
    }));
    let (manifest_bytes, manifest_blob) = json_blob(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{}", config_blob.digest),
            "size": config_blob.size,
        },
        "layers": [ {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{}", layer.blob.digest),
            "size": layer.blob.size,
        } ],
    }));
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [ {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", manifest_blob.digest),
            "size": manifest_blob.size,
            "annotations": { "org.opencontainers.image.ref.name": opts.tag },
        } ],
    }))
    .expect("JSON values serialize");

    // The archive: the layout's files, then the blobs by digest.
    let io = |e: std::io::Error| fail(format!("cannot write the image archive: {e}"));
    let mut tar = tar::Builder::new(std::io::BufWriter::new(out));
    let file = |tar: &mut tar::Builder<_>, path: &str, data: &[u8]| {
        let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, 0);
        h.set_size(data.len() as u64);
        tar.append_data(&mut h, path, data)
    };
    file(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io)?;
    file(&mut tar, "index.json", &index).map_err(io)?;
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0, 0, 0);
        tar.append_data(&mut h, dir, std::io::empty()).map_err(io)?;
    }
    let mut blobs: Vec<(&str, Option<&[u8]>)> = vec![
        (&config_blob.digest, Some(&config_bytes)),
        (&manifest_blob.digest, Some(&manifest_bytes)),
        (&layer.blob.digest, None),
    ];
    blobs.sort_by_key(|b| b.0);
    for (d, bytes) in blobs {
        let path = format!("blobs/sha256/{d}");
        match bytes {
            Some(b) => file(&mut tar, &path, b).map_err(io)?,
            None => {
                layer_file.rewind().map_err(io)?;
                let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, 0);
                h.set_size(layer.blob.size);
                tar.append_data(&mut h, &path, &mut layer_file)
                    .map_err(io)?;
            }
        }
    }
    tar.into_inner().map_err(io)?.flush().map_err(io)?;
    Ok(warnings)
}
