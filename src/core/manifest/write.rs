//! The manifest's canonical JSON text, written on several threads when it
//! is large.
//!
//! The text is serde_json's pretty form of the whole manifest. A recording
//! of a large tree has tens of thousands of entries (20 MB of text), and
//! serializing them is most of the time a save takes; entries serialize
//! independently, so chunks of them are made on threads and put one after
//! the other. A unit test checks that the result is byte for byte what
//! `serde_json::to_writer_pretty` makes of the manifest.

use std::io::Write;

use super::{Entry, Manifest};

/// Below this many entries a manifest is written on the calling thread.
const PARALLEL_MIN: usize = 8192;

/// How the manifest's text ends when it has no entries: `entries` is the
/// last field.
const EMPTY_TAIL: &[u8] = b"\"entries\": []\n}";

pub(super) fn write(m: &Manifest, mut w: impl Write) -> std::io::Result<()> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(4);
    if m.entries.len() < PARALLEL_MIN || threads < 2 {
        let mut w = std::io::BufWriter::new(w);
        serde_json::to_writer_pretty(&mut w, m)?;
        w.write_all(b"\n")?;
        return w.flush();
    }
    // Everything but the entries. A struct literal without `..`: a field
    // added to the manifest does not compile until it is here too.
    let head = Manifest {
        schema: m.schema,
        generator: m.generator.clone(),
        command: m.command.clone(),
        warnings: m.warnings.clone(),
        trees: m.trees.clone(),
        entries: Vec::new(),
    };
    let head = serde_json::to_vec_pretty(&head)?;
    let Some(open) = head
        .len()
        .checked_sub(EMPTY_TAIL.len() - b"\"entries\": [".len())
    else {
        return Err(std::io::Error::other("manifest text without entries"));
    };
    if !head.ends_with(EMPTY_TAIL) {
        return Err(std::io::Error::other(
            "manifest text does not end with its entries",
        ));
    }
    let chunk = m.entries.len().div_ceil(threads);
    let parts: Vec<std::io::Result<Vec<u8>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = m
            .entries
            .chunks(chunk)
            .map(|c| scope.spawn(move || entries_text(c)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a manifest writer thread panicked"))
            .collect()
    });
    // `"entries": [`, then each entry on its own lines, two levels in, as
    // serde_json puts an array's values, then the closing lines.
    w.write_all(&head[..open])?;
    for (i, part) in parts.into_iter().enumerate() {
        w.write_all(if i == 0 { b"\n    " } else { b",\n    " })?;
        w.write_all(&part?)?;
    }
    w.write_all(b"\n  ]\n}\n")?;
    w.flush()
}

/// The entries' text, two levels in, separated as array values are (the
/// first one's line start is the caller's).
fn entries_text(entries: &[Entry]) -> std::io::Result<Vec<u8>> {
    let mut out = Indent {
        out: Vec::with_capacity(entries.len() * 320),
    };
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.out.extend_from_slice(b",\n    ");
        }
        serde_json::to_writer_pretty(&mut out, e)?;
    }
    Ok(out.out)
}

/// Indents every line after the first by two levels. JSON strings hold no
/// raw newline (it is escaped), so each one is a line break of the layout.
struct Indent {
    out: Vec<u8>,
}

impl Write for Indent {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            self.out.extend_from_slice(&rest[..=nl]);
            self.out.extend_from_slice(b"    ");
            rest = &rest[nl + 1..];
        }
        self.out.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::manifest::pathenc::MPath;
    use crate::core::manifest::{Access, Class, Kind, Mode, Op, Outcome};

    fn manifest(n: usize) -> Manifest {
        let mut m: Manifest = serde_json::from_str(
            r#"{"schema": 2, "generator": "jailtrace test",
                "command": {"argv": ["/bin/true", "a\nb"], "cwd": "/", "uid": 0, "gid": 0},
                "warnings": ["a \"quoted\"\nwarning"], "entries": []}"#,
        )
        .unwrap();
        for i in 0..n {
            let mut e = Entry::new(
                MPath::new(format!("/d{i:06}/f\n\"{i}\u{e9}").into_bytes()).unwrap(),
                if i % 3 == 0 { Kind::Dir } else { Kind::File },
                Class::Regular,
            );
            e.mode = Some(Mode(0o644));
            e.uid = Some(i as u32);
            if i % 2 == 0 {
                e.accesses = vec![Access {
                    op: Op::Read,
                    result: Outcome::ok(),
                }];
            }
            m.entries.push(e);
        }
        m
    }

    /// The text is serde_json's pretty form of the whole manifest, byte
    /// for byte, on one thread and on several.
    #[test]
    fn the_text_is_serde_jsons_at_any_size() {
        for n in [
            0,
            1,
            2,
            PARALLEL_MIN - 1,
            PARALLEL_MIN,
            PARALLEL_MIN * 2 + 3,
        ] {
            let m = manifest(n);
            let mut want = serde_json::to_vec_pretty(&m).unwrap();
            want.push(b'\n');
            let mut got = Vec::new();
            write(&m, &mut got).unwrap();
            assert!(got == want, "{n} entries: the texts differ");
        }
    }
}
