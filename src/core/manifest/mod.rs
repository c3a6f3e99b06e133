//! The manifest: schema, validation on load, deterministic atomic save.
//!
//! The format is documented in `docs/manifest.md`; keep the two in step.

mod op;
pub mod pathenc;
mod save;

pub use op::{Born, Change, Meaning, Op};
pub use save::{hex, output_target, save_atomic, sha256_hex};

use std::collections::HashSet;
use std::fmt;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::core::manifest::pathenc::{Bytes, MPath};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 2;

/// Older versions this build still reads (see [`Manifest::upgrade`]).
const OLDEST_SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Schema version; see [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The program that wrote the manifest, e.g. `jailtrace 0.1.0`. Not a
    /// dependency: `diff` ignores it.
    pub generator: String,
    pub command: CommandInfo,
    /// Things the recording could not see or that behaved differently under
    /// the tracer (io_uring, setuid programs, ...). Sorted, unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Directories kept whole (`record --tree`), sorted by path, unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trees: Vec<Tree>,
    /// One entry per path, sorted by path component-wise, unique.
    pub entries: Vec<Entry>,
}

/// Why a tree cannot be kept whole: `/` and the pseudo file systems are
/// not data, and the digest must have its format.
pub fn tree_refusal(t: &Tree) -> Option<String> {
    if let Some(reason) = tree_path_refusal(&t.path) {
        return Some(reason);
    }
    let hex = t.digest.strip_prefix("sha256:").unwrap_or("");
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(format!(
            "tree digest {:?} is not sha256:<64 hex digits>",
            t.digest
        ));
    }
    None
}

/// Why a directory cannot be kept whole: `/` and the pseudo file systems
/// are not data.
pub fn tree_path_refusal(path: &MPath) -> Option<String> {
    let p = path.as_bytes();
    let under = |top: &[u8]| pathenc::within(p, top);
    (p == b"/" || under(b"/proc") || under(b"/sys") || under(b"/dev"))
        .then(|| "a tree is a data directory, not / or /proc, /sys, /dev".into())
}

/// A directory a jail gets whole (`record --tree`): a service's data (a
/// mail spool, a document root) that one recorded session did not read
/// through. materialize copies the subtree as the host has it then; the
/// digest says what it held when recorded, so that diff can tell.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    pub path: MPath,
    /// `sha256:` and the hex digest of the subtree's listing (see
    /// docs/manifest.md, "Trees").
    pub digest: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CommandInfo {
    pub argv: Vec<Bytes>,
    pub cwd: MPath,
    pub uid: u32,
    pub gid: u32,
    /// The exit status as a shell reports it (128+N for signal N); absent when
    /// the command never ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
    /// User ids the program switched to (a successful `setuid`,
    /// `setreuid`, `setresuid` or `setfsuid`), sorted, unique: the accounts
    /// a jail must know besides the file owners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_uids: Vec<u32>,
    /// Group ids the program switched to (`setgid`, `setregid`,
    /// `setresgid`, `setfsgid`, `setgroups`), sorted, unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_gids: Vec<u32>,
    /// Whether the program asked `bind` for a TCP/UDP port below 1024
    /// (IPv4 or IPv6, whatever the outcome: a service that failed to get
    /// its port still needs it). Not the ports themselves: resolvers bind
    /// random ones, which would make every recording differ. Absent when
    /// unknown: a manifest from before it was recorded, or a recording
    /// that lost events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binds_privileged_port: Option<bool>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Chardev,
    Blockdev,
    Socket,
    Fifo,
    Missing,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Regular,
    Dev,
    Proc,
    Sys,
}

/// `ok`, or the errno name of a failed call (`ENOENT`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Outcome(std::borrow::Cow<'static, str>);

impl Outcome {
    pub fn ok() -> Outcome {
        // Borrowed: most accesses succeed, and a manifest can hold millions.
        Outcome(std::borrow::Cow::Borrowed("ok"))
    }

    /// The outcome of a raw syscall return value.
    pub fn from_errno(errno: i32) -> Outcome {
        Outcome(format!("{:?}", nix::errno::Errno::from_raw(errno)).into())
    }

    pub fn parse(s: &str) -> Result<Outcome, String> {
        let valid = s == "ok"
            || (s.len() > 1
                && s.starts_with('E')
                && s[1..]
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        if valid {
            Ok(if s == "ok" {
                Outcome::ok()
            } else {
                Outcome(s.to_string().into())
            })
        } else {
            Err(format!(
                "bad outcome {s:?}: expected \"ok\" or an errno name like \"ENOENT\""
            ))
        }
    }

    pub fn is_ok(&self) -> bool {
        self.0 == "ok"
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Outcome::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct Access {
    pub op: Op,
    pub result: Outcome,
}

/// Permission bits (`0o7777`), written as four octal digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mode(pub u32);

impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 > 0o7777 {
            return s.serialize_str(&format!("{:04o}", self.0));
        }
        // Every entry has one: four digits without the formatter.
        let digit = |shift: u32| b'0' + ((self.0 >> shift) & 7) as u8;
        let text = [digit(9), digit(6), digit(3), digit(0)];
        s.serialize_str(std::str::from_utf8(&text).expect("octal digits"))
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        match u32::from_str_radix(&s, 8) {
            Ok(m) if m <= 0o7777 && !s.is_empty() && s.len() <= 4 => Ok(Mode(m)),
            _ => Err(serde::de::Error::custom(format!(
                "bad mode {s:?}: expected up to four octal digits like \"0755\""
            ))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub path: MPath,
    pub kind: Kind,
    pub class: Class,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Size in bytes, for regular files that are not outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Symlink target, exactly as stored on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Bytes>,
    /// Device numbers of character and block devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<u32>,
    /// Hex SHA-256 of the content, with `record --hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The program created or wrote this path.
    #[serde(default, skip_serializing_if = "is_false")]
    pub output: bool,
    /// The run brought this object into existence: it was not there when
    /// the program first touched the path, and a call of the program made
    /// it. A pure output: a jail needs its directory, not the object.
    /// Everything else that exists was found by the run, and is an input
    /// whatever the program did to it afterwards.
    #[serde(default, skip_serializing_if = "is_false")]
    pub created: bool,
    /// The Debian package that owns this file (several joined by `", "`),
    /// with `record --packages`; absent when none does or none was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The rule that put this path in the manifest although the run did
    /// not reach it (see `crate::core::infer`); such an entry has no
    /// accesses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inferred: Option<String>,
    /// Sorted, unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accesses: Vec<Access>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Entry {
    /// A bare entry with no metadata or accesses.
    pub fn new(path: MPath, kind: Kind, class: Class) -> Entry {
        Entry {
            path,
            kind,
            class,
            mode: None,
            uid: None,
            gid: None,
            size: None,
            target: None,
            major: None,
            minor: None,
            sha256: None,
            output: false,
            created: false,
            package: None,
            inferred: None,
            accesses: Vec::new(),
        }
    }

    pub fn has_ok(&self, op: Op) -> bool {
        self.accesses.iter().any(|a| a.op == op && a.result.is_ok())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    // The cause is part of the message, not a `source`, so that `{:#}`
    // chains do not print it twice.
    #[error("{path}: cannot read: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{path}: invalid manifest at line {line} column {column}: {msg}")]
    Json {
        path: String,
        line: usize,
        column: usize,
        msg: String,
    },
    #[error("{path}: unsupported schema version {found} (this jailtrace reads versions {OLDEST_SCHEMA} to {SCHEMA_VERSION})")]
    Schema { path: String, found: u64 },
    #[error("{path}: entry {entry}: {reason}")]
    Invalid {
        path: String,
        entry: String,
        reason: String,
    },
    #[error("{path}: cannot write: {cause}")]
    Write { path: String, cause: std::io::Error },
    #[error("{path}: not written: {reason}")]
    Refused { path: String, reason: String },
}

fn json_error(path: &str, e: &serde_json::Error) -> ManifestError {
    // serde_json appends " at line L column C" to its message; we report
    // those separately.
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    ManifestError::Json {
        path: path.to_string(),
        line: e.line(),
        column: e.column(),
        msg,
    }
}

impl Manifest {
    /// Parses and validates a manifest from bytes. `name` is used in errors.
    pub fn from_slice(name: &str, data: &[u8]) -> Result<Manifest, ManifestError> {
        // Look at the version before the full parse so that a manifest from
        // a newer jailtrace gets a version error, not a confusing field error.
        #[derive(Deserialize)]
        struct Probe {
            schema: Option<serde_json::Value>,
        }
        let probe: Probe = serde_json::from_slice(data).map_err(|e| json_error(name, &e))?;
        match probe.schema {
            Some(serde_json::Value::Number(n))
                if n.as_u64().is_some_and(|v| {
                    (u64::from(OLDEST_SCHEMA)..=u64::from(SCHEMA_VERSION)).contains(&v)
                }) => {}
            Some(serde_json::Value::Number(n)) if n.as_u64().is_some() => {
                return Err(ManifestError::Schema {
                    path: name.to_string(),
                    found: n.as_u64().unwrap_or_default(),
                })
            }
            // Not a whole number ("1", 1.5, -1): the full parse below names
            // the type and its line and column.
            Some(_) => {}
            None => {
                return Err(ManifestError::Invalid {
                    path: name.to_string(),
                    entry: "schema".into(),
                    reason: "missing: not a jailtrace manifest".into(),
                })
            }
        }
        let mut m: Manifest = serde_json::from_slice(data).map_err(|e| json_error(name, &e))?;
        m.validate(name)?;
        m.upgrade();
        Ok(m)
    }

    /// Brings a manifest of an older schema to the current one, in memory.
    ///
    /// Schema 1 had no `created`: it is derived the way jailtrace 0.1
    /// decided what to leave out, from a successful creating call. That
    /// counts a file found by an `O_CREAT` open or replaced by a rename as
    /// created, which is the error schema 2 fixes by deciding at record
    /// time: record again for exact answers. Devices are never created.
    pub fn upgrade(&mut self) {
        if self.schema == 1 {
            for e in &mut self.entries {
                e.created = e.output
                    && !matches!(e.kind, Kind::Chardev | Kind::Blockdev)
                    && e.accesses
                        .iter()
                        .any(|a| a.op.creates() && a.result.is_ok());
            }
        }
        self.schema = SCHEMA_VERSION;
    }

    /// Reads and validates a manifest file.
    ///
    /// A character or block device is refused before reading: `/dev/zero`
    /// or a disk never ends, and reading it "to the end" would take all
    /// memory. Pipes (`<(...)`) and regular files are read.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        use std::io::Read;
        use std::os::unix::fs::FileTypeExt;
        let name = path.display().to_string();
        let read_err = |cause| ManifestError::Read {
            path: name.clone(),
            cause,
        };
        let mut f = std::fs::File::open(path).map_err(read_err)?;
        let md = f.metadata().map_err(read_err)?;
        let ft = md.file_type();
        if ft.is_char_device() || ft.is_block_device() {
            let what = if ft.is_char_device() {
                "character"
            } else {
                "block"
            };
            return Err(read_err(std::io::Error::other(format!(
                "it is a {what} device, not a manifest file"
            ))));
        }
        let mut data = Vec::with_capacity(md.len().try_into().unwrap_or(0));
        f.read_to_end(&mut data).map_err(read_err)?;
        Manifest::from_slice(&name, &data)
    }

    /// Checks the rules that serde cannot: unique paths, consistent fields.
    pub fn validate(&self, name: &str) -> Result<(), ManifestError> {
        let invalid = |entry: &MPath, reason: String| ManifestError::Invalid {
            path: name.to_string(),
            entry: entry.encoded(),
            reason,
        };
        for t in &self.trees {
            if let Some(reason) = tree_refusal(t) {
                return Err(invalid(&t.path, reason));
            }
        }
        let mut seen = HashSet::with_capacity(self.entries.len());
        for e in &self.entries {
            if !seen.insert(&e.path) {
                return Err(invalid(&e.path, "duplicate path".into()));
            }
            if e.kind == Kind::Symlink && e.class != Class::Proc && e.target.is_none() {
                return Err(invalid(&e.path, "symlink without a target".into()));
            }
            if e.kind != Kind::Symlink && e.target.is_some() {
                return Err(invalid(&e.path, "target given for a non-symlink".into()));
            }
            if let Some(t) = &e.target {
                if t.0.is_empty() {
                    return Err(invalid(&e.path, "empty symlink target".into()));
                }
            }
            let is_dev = matches!(e.kind, Kind::Chardev | Kind::Blockdev);
            if is_dev && (e.major.is_none() || e.minor.is_none()) {
                return Err(invalid(&e.path, "device without major and minor".into()));
            }
            if !is_dev && (e.major.is_some() || e.minor.is_some()) {
                return Err(invalid(
                    &e.path,
                    "major/minor given for a non-device".into(),
                ));
            }
            if let Some(h) = &e.sha256 {
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(&e.path, format!("bad sha256 {h:?}")));
                }
            }
            if let Some(r) = &e.inferred {
                if crate::core::infer::Rule::from_name(r).is_none() {
                    return Err(invalid(&e.path, format!("unknown inference rule {r:?}")));
                }
                // Its content goes into a jail because a rule, not the
                // program, chose it: a program's access would contradict.
                if !e.accesses.is_empty() {
                    return Err(invalid(
                        &e.path,
                        "inferred by a rule, yet with accesses of its own".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Puts entries, accesses and warnings into canonical order.
    pub fn normalize(&mut self) {
        self.entries.sort_by(|a, b| a.path.cmp(&b.path));
        for e in &mut self.entries {
            e.accesses.sort();
            e.accesses.dedup();
        }
        self.command.set_uids.sort_unstable();
        self.command.set_uids.dedup();
        self.command.set_gids.sort_unstable();
        self.command.set_gids.dedup();
        self.trees.sort_by(|a, b| a.path.cmp(&b.path));
        self.trees.dedup_by(|a, b| a.path == b.path);

        self.warnings.sort();
        self.warnings.dedup();
    }

    /// The canonical JSON text: pretty-printed, with a final newline.
    pub fn write_to(&self, w: impl Write) -> std::io::Result<()> {
        let mut w = BufWriter::new(w);
        serde_json::to_writer_pretty(&mut w, self)?;
        w.write_all(b"\n")?;
        w.flush()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v)
            .expect("writing to memory cannot fail");
        v
    }

    /// Writes the manifest to `dest`, or to stdout when `dest` is `-`.
    /// A file is replaced atomically: a temporary file in the same directory,
    /// fsynced, then renamed over the destination.
    pub fn save(&self, dest: &Path) -> Result<(), ManifestError> {
        if dest == Path::new("-") {
            let out = std::io::stdout().lock();
            return self.write_to(out).map_err(|cause| ManifestError::Write {
                path: "stdout".into(),
                cause,
            });
        }
        save_atomic(dest, |f| self.write_to(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table's rows agree with one another: what the rest of the code
    /// derives from them stays coherent when a row is added.
    #[test]
    fn every_op_means_something_coherent() {
        for &op in Op::ALL {
            let m = op.meaning();
            let name = op.name();
            // Whatever can make the object is an output and changes
            // something (an `O_CREAT` open the file, since it may find it
            // there; the others the directory); a creation does not need
            // the object beforehand.
            if m.creates.is_some() {
                assert!(m.output, "{name}");
                assert_ne!(m.change, Change::Nothing, "{name}");
                assert!(!m.needs_existing, "{name}");
            }
            // An output changes something an export must make writable.
            if m.output {
                assert_ne!(m.change, Change::Nothing, "{name}");
            }
            // A change of the object in place needs it there, or makes it.
            if m.change == Change::Object {
                assert!(m.needs_existing || m.creates.is_some(), "{name}");
            }
            // A name that only goes away holds no bytes a jail needs,
            // except a rename's source, whose bytes move.
            if matches!(op, Op::Unlink | Op::Rmdir) {
                assert!(!m.content && !m.output, "{name}");
            }
        }
        // Each way of telling found from made is used by some op.
        for born in [Born::CreateFlag, Born::RenameTarget, Born::FailsIfExists] {
            assert!(
                Op::ALL.iter().any(|o| o.meaning().creates == Some(born)),
                "{born:?}"
            );
        }
    }

    fn sample() -> &'static str {
        r#"{
  "schema": 1,
  "generator": "jailtrace 0.1.0",
  "command": { "argv": ["/bin/true"], "cwd": "/", "uid": 0, "gid": 0, "exit_status": 0 },
  "entries": [
    { "path": "/bin", "kind": "symlink", "class": "regular", "target": "usr/bin" },
    { "path": "/dev/null", "kind": "chardev", "class": "dev", "mode": "0666", "major": 1, "minor": 3,
      "accesses": [ { "op": "write", "result": "ok" } ] }
  ]
}"#
    }

    #[test]
    fn modes_are_four_octal_digits() {
        for (m, text) in [
            (0, "\"0000\""),
            (0o644, "\"0644\""),
            (0o4755, "\"4755\""),
            (0o7777, "\"7777\""),
        ] {
            assert_eq!(serde_json::to_string(&Mode(m)).unwrap(), text);
            assert_eq!(serde_json::from_str::<Mode>(text).unwrap(), Mode(m));
        }
        // Not from a manifest or lstat, but written as it is all the same.
        assert_eq!(serde_json::to_string(&Mode(0o17777)).unwrap(), "\"17777\"");
    }

    #[test]
    fn parses_and_round_trips() {
        let m = Manifest::from_slice("t", sample().as_bytes()).unwrap();
        assert_eq!(m.entries.len(), 2);
        let again = Manifest::from_slice("t", &m.to_bytes()).unwrap();
        assert_eq!(m, again);
        assert_eq!(m.to_bytes(), again.to_bytes());
    }

    #[test]
    fn load_refuses_devices_without_reading_them() {
        let e = Manifest::load(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/zero: cannot read: it is a character device, not a manifest file"
        );
    }

    #[test]
    fn schema_1_loads_with_created_derived() {
        let v1 = sample().replace(
            r#""accesses": [ { "op": "write", "result": "ok" } ] }"#,
            r#""accesses": [ { "op": "create", "result": "ok" } ], "output": true },
    { "path": "/log", "kind": "file", "class": "regular", "output": true,
      "accesses": [ { "op": "create", "result": "ok" } ] },
    { "path": "/w", "kind": "file", "class": "regular", "output": true,
      "accesses": [ { "op": "write", "result": "ok" } ] }"#,
        );
        let m = Manifest::from_slice("t", v1.as_bytes()).unwrap();
        assert_eq!(m.schema, SCHEMA_VERSION);
        let created: Vec<_> = m
            .entries
            .iter()
            .map(|e| (e.path.encoded(), e.created))
            .collect();
        // A device is never created; a file written in place was found.
        assert_eq!(
            created,
            [
                ("/bin".into(), false),
                ("/dev/null".into(), false),
                ("/log".into(), true),
                ("/w".into(), false)
            ]
        );
    }

    #[test]
    fn reports_line_and_column() {
        let err = Manifest::from_slice("m.json", b"{\n  \"schema\": 1,\n  oops\n}").unwrap_err();
        let s = err.to_string();
        assert!(s.contains("line 3 column 3"), "{s}");
    }

    #[test]
    fn rejects_unknown_version_and_bad_paths() {
        let v3 = sample().replace("\"schema\": 1", "\"schema\": 3");
        assert!(matches!(
            Manifest::from_slice("t", v3.as_bytes()),
            Err(ManifestError::Schema { found: 3, .. })
        ));
        for bad in ["bin", "/a/../b", "/a//b", "/a/"] {
            let m = sample().replace("\"/bin\"", &format!("{bad:?}"));
            let e = Manifest::from_slice("t", m.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("line"), "{bad}: {e}");
        }
        // A schema of the wrong type is a type error with its position.
        for bad in ["\"1\"", "1.5", "-1"] {
            let m = sample().replace("\"schema\": 1", &format!("\"schema\": {bad}"));
            let e = Manifest::from_slice("t", m.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("line 2 column"), "{bad}: {e}");
        }
        let dup = sample().replace("/dev/null", "/bin");
        assert!(Manifest::from_slice("t", dup.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("duplicate"));
    }
}
