//! Property tests over hostile input for the manifest parser, `diff` and
//! `merge`: nothing panics, and the documented invariants hold.
//!
//! The normal test run tries a few cases per property; set
//! `JAILTRACE_FUZZ_CASES` (as `bench/fuzz` does) to run many more. A failing
//! case is saved by proptest under `tests/proptest-regressions/`; commit it,
//! so that it is replayed first on every later run.

use std::collections::BTreeMap;

use jailtrace::core::diff::{compare, Options};
use jailtrace::core::manifest::pathenc::{Bytes, MPath};
use jailtrace::core::manifest::{
    Access, Class, CommandInfo, Entry, Kind, Manifest, Mode, Op, Outcome,
};
use jailtrace::core::merge::{merge, Prefer};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("JAILTRACE_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(48);
    ProptestConfig::with_cases(cases)
}

/// A valid manifest to mutate.
const SEED: &str = r#"{
  "schema": 1,
  "generator": "jailtrace 0.1.0",
  "command": { "argv": ["/bin/sh", "-c", "x\\xff"], "cwd": "/", "uid": 0, "gid": 0, "exit_status": 0 },
  "warnings": ["w"],
  "entries": [
    { "path": "/", "kind": "dir", "class": "regular", "mode": "0755", "uid": 0, "gid": 0 },
    { "path": "/bin", "kind": "symlink", "class": "regular", "target": "usr/bin",
      "accesses": [ { "op": "follow", "result": "ok" } ] },
    { "path": "/dev/null", "kind": "chardev", "class": "dev", "mode": "0666", "major": 1, "minor": 3,
      "accesses": [ { "op": "write", "result": "ok" } ] },
    { "path": "/tmp/tmpab12CD", "kind": "file", "class": "regular", "output": true,
      "accesses": [ { "op": "create", "result": "ok" } ] },
    { "path": "/etc/a\\\\b\\xfe", "kind": "missing", "class": "regular",
      "accesses": [ { "op": "stat", "result": "ENOENT" } ] },
    { "path": "/usr/lib/x.so", "kind": "file", "class": "regular", "mode": "0644", "size": 12,
      "sha256": "0000000000000000000000000000000000000000000000000000000000000000",
      "accesses": [ { "op": "read", "result": "ok" } ] }
  ]
}"#;

fn seed() -> Manifest {
    Manifest::from_slice("seed", SEED.as_bytes()).expect("seed manifest is valid")
}

/// Runs every consumer of a loaded manifest; none may panic.
fn exercise(m: &Manifest) {
    let s = seed();
    for opts in [
        Options::default(),
        Options {
            ignore_failed: true,
            keep_temp: true,
            content: true,
            ignore_inferred: true,
            ignore: Some(regex::RegexSet::new(["^/tmp", "x"]).unwrap()),
        },
    ] {
        let r = compare(m, m, &opts);
        assert!(r.is_equivalent(), "a manifest differs from itself: {r:?}");
        for (a, b) in [(m, &s), (&s, m)] {
            let r = compare(a, b, &opts);
            let mut text = Vec::new();
            r.write_text(&mut text, true).unwrap();
            assert_eq!(text.is_empty(), r.is_equivalent());
            serde_json::to_vec(&r.to_json("a", "b")).unwrap();
        }
    }
    let inputs = [("a".to_string(), m.clone()), ("b".to_string(), s)];
    let merged = merge(&inputs, Some(Prefer::Newer));
    merged.manifest.validate("merged").unwrap();
}

fn mutate(data: &mut Vec<u8>, edits: &[(usize, u8, u8)]) {
    for &(pos, op, byte) in edits {
        if data.is_empty() {
            data.push(byte);
            continue;
        }
        let i = pos % data.len();
        match op % 4 {
            0 => data[i] = byte,
            1 => data.insert(i, byte),
            2 => {
                data.remove(i);
            }
            _ => {
                // Duplicate a slice: repeats entries, keys, brackets.
                let end = (i + byte as usize).min(data.len());
                let chunk = data[i..end].to_vec();
                data.splice(i..i, chunk);
            }
        }
    }
}

const COMPONENTS: &[&[u8]] = &[
    b"a",
    b"b",
    b"tmp",
    b"lib",
    b"x\n",
    b"\xff\xfe",
    b"\\",
    b"c d",
];

fn arb_path() -> impl Strategy<Value = MPath> {
    prop::collection::vec(prop::sample::select(COMPONENTS), 0..4).prop_map(|comps| {
        let mut p = Vec::new();
        for c in comps {
            p.push(b'/');
            p.extend_from_slice(c);
        }
        if p.is_empty() {
            p.push(b'/');
        }
        MPath::new(p).unwrap()
    })
}

const KINDS: &[Kind] = &[
    Kind::File,
    Kind::Dir,
    Kind::Symlink,
    Kind::Chardev,
    Kind::Missing,
];
const CLASSES: &[Class] = &[Class::Regular, Class::Dev, Class::Proc];
const OPS: &[Op] = &[
    Op::Read,
    Op::Write,
    Op::Create,
    Op::Exec,
    Op::Stat,
    Op::Unlink,
];
const RESULTS: &[&str] = &["ok", "ENOENT", "EACCES"];
const TARGETS: &[&[u8]] = &[b"t", b"../u", b"\xff"];

fn arb_entry() -> impl Strategy<Value = Entry> {
    (
        arb_path(),
        prop::sample::select(KINDS),
        prop::sample::select(CLASSES),
        prop::option::of(0u32..0o7777),
        prop::option::of(0u32..3),
        prop::sample::select(TARGETS),
        (0u32..3, 0u32..3),
        any::<bool>(),
        prop::collection::vec(
            (prop::sample::select(OPS), prop::sample::select(RESULTS)),
            0..4,
        ),
    )
        .prop_map(|(path, kind, class, mode, uid, target, dev, output, acc)| {
            let mut e = Entry::new(path, kind, class);
            e.mode = mode.map(Mode);
            e.uid = uid;
            if kind == Kind::Symlink {
                e.target = Some(Bytes(target.to_vec()));
            }
            if kind == Kind::Chardev {
                (e.major, e.minor) = (Some(dev.0), Some(dev.1));
            }
            e.output = output;
            e.accesses = acc
                .into_iter()
                .map(|(op, r)| Access {
                    op,
                    result: Outcome::parse(r).unwrap(),
                })
                .collect();
            e
        })
}

fn arb_manifest() -> impl Strategy<Value = Manifest> {
    (prop::collection::vec(arb_entry(), 0..12), 0i32..2).prop_map(|(entries, status)| {
        // One entry per path.
        let unique: BTreeMap<MPath, Entry> =
            entries.into_iter().map(|e| (e.path.clone(), e)).collect();
        let mut m = Manifest {
            schema: 1,
            generator: "fuzz".into(),
            command: CommandInfo {
                argv: vec![Bytes(b"/x".to_vec())],
                cwd: MPath::root(),
                uid: 0,
                gid: 0,
                exit_status: Some(status),
                set_uids: vec![],
                set_gids: vec![],
                binds_privileged_port: None,
            },
            warnings: vec![],
            trees: vec![],
            entries: unique.into_values().collect(),
        };
        m.normalize();
        m
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(m) = Manifest::from_slice("fuzz", &data) {
            exercise(&m);
        }
    }

    #[test]
    fn parser_and_diff_survive_mutated_manifests(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)
    ) {
        let mut data = SEED.as_bytes().to_vec();
        mutate(&mut data, &edits);
        match Manifest::from_slice("fuzz", &data) {
            Ok(m) => {
                // What loads saves and loads back the same.
                let again = Manifest::from_slice("again", &m.to_bytes()).unwrap();
                prop_assert_eq!(&again, &m);
                exercise(&m);
            }
            Err(e) => {
                // One line naming the input.
                let msg = e.to_string();
                prop_assert!(msg.starts_with("fuzz: "), "{}", msg);
                prop_assert!(!msg.contains('\n'), "{}", msg);
            }
        }
    }

    #[test]
    fn diff_is_symmetric_and_merge_is_order_independent(a in arb_manifest(), b in arb_manifest()) {
        let opts = Options::default();
        let ab = compare(&a, &b, &opts);
        let ba = compare(&b, &a, &opts);
        prop_assert_eq!(ab.is_equivalent(), ba.is_equivalent());
        prop_assert_eq!(&ab.added, &ba.removed);
        prop_assert_eq!(&ab.removed, &ba.added);
        prop_assert!(compare(&a, &a, &opts).is_equivalent());

        let inputs_ab = [("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
        let inputs_ba = [("b".to_string(), b.clone()), ("a".to_string(), a.clone())];
        let m_ab = merge(&inputs_ab, None);
        let m_ba = merge(&inputs_ba, None);
        prop_assert_eq!(m_ab.conflicts.len(), m_ba.conflicts.len());
        if m_ab.conflicts.is_empty() {
            prop_assert_eq!(m_ab.manifest.to_bytes(), m_ba.manifest.to_bytes());
        }
        // --prefer newer with the arguments swapped is --prefer older.
        let newer = merge(&inputs_ab, Some(Prefer::Newer));
        let older = merge(&inputs_ba, Some(Prefer::Older));
        prop_assert_eq!(newer.manifest.to_bytes(), older.manifest.to_bytes());
        for m in [&m_ab, &newer] {
            m.manifest.validate("merged").unwrap();
            let back = Manifest::from_slice("merged", &m.manifest.to_bytes()).unwrap();
            prop_assert_eq!(&back, &m.manifest);
        }
    }
}
