//! Lossless text encoding of raw Linux path bytes, and the canonical form of
//! manifest paths.
//!
//! Paths on Linux are arbitrary bytes without NUL. JSON strings are Unicode, so
//! the manifest uses one reversible escape: every byte that is not part of
//! valid UTF-8 is written as `\xNN` (two lower-case hex digits), and a literal
//! backslash is written as `\\`. Valid UTF-8 without backslashes, which is
//! nearly every real path, is stored unchanged.

use std::cmp::Ordering;
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Encodes raw bytes into the manifest's text form.
pub fn encode(bytes: &[u8]) -> String {
    encode_cow(bytes).into_owned()
}

/// [`encode`], borrowing the bytes when they are their own text (valid
/// UTF-8 without a backslash: nearly every path), as the manifest writer
/// does for every path it writes.
pub fn encode_cow(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        if !s.contains('\\') {
            return std::borrow::Cow::Borrowed(s);
        }
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
            if ch == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(ch);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Decodes the manifest's text form back into raw bytes.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = bytes
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad \\x escape at byte {i}"))?;
                out.push(hex);
                i += 4;
            }
            _ => {
                return Err(format!(
                    "lone backslash at byte {i} (write \\\\ for a backslash)"
                ))
            }
        }
    }
    Ok(out)
}

/// An absolute, normalised path as stored in a manifest: it starts with `/`,
/// has no empty, `.` or `..` components, no trailing slash and no NUL.
///
/// Ordering is component-wise, so a directory sorts directly before its
/// contents and ancestors always come before descendants.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MPath(Box<[u8]>);

/// Whether the absolute path `p` is `top` or lies beneath it, component
/// by component (`/ab` is not beneath `/a`).
pub fn within(p: &[u8], top: &[u8]) -> bool {
    p.starts_with(top) && (p.len() == top.len() || p[top.len()] == b'/')
}

impl MPath {
    /// Validates raw bytes as a manifest path.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<MPath, String> {
        let bytes = bytes.into();
        validate(&bytes)?;
        Ok(MPath(bytes.into_boxed_slice()))
    }

    /// The root directory.
    pub fn root() -> MPath {
        MPath(Box::from(&b"/"[..]))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_path(&self) -> &Path {
        Path::new(std::ffi::OsStr::from_bytes(&self.0))
    }

    pub fn to_path_buf(&self) -> PathBuf {
        PathBuf::from(std::ffi::OsString::from_vec(self.0.to_vec()))
    }

    pub fn is_root(&self) -> bool {
        &*self.0 == b"/"
    }

    /// Components without the leading root.
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|&b| b == b'/').filter(|c| !c.is_empty())
    }

    /// The parent directory, or `None` for `/`.
    pub fn parent(&self) -> Option<MPath> {
        if self.is_root() {
            return None;
        }
        let cut = self.0.iter().rposition(|&b| b == b'/').unwrap_or(0);
        let parent = if cut == 0 { &b"/"[..] } else { &self.0[..cut] };
        Some(MPath(Box::from(parent)))
    }

    /// All proper ancestors, from `/` downwards.
    pub fn ancestors(&self) -> Vec<MPath> {
        let mut out = Vec::new();
        let mut cur = self.parent();
        while let Some(p) = cur {
            cur = p.parent();
            out.push(p);
        }
        out.reverse();
        out
    }

    /// Appends one component (which must not contain `/`).
    pub fn join(&self, component: &[u8]) -> MPath {
        let mut v = Vec::with_capacity(self.0.len() + 1 + component.len());
        v.extend_from_slice(&self.0);
        if !self.is_root() {
            v.push(b'/');
        }
        v.extend_from_slice(component);
        MPath(v.into_boxed_slice())
    }

    /// True when `self` is `other` or lies beneath it.
    pub fn starts_with(&self, other: &MPath) -> bool {
        other.is_root() || within(&self.0, &other.0)
    }

    /// The path relative to `/`, for use with a jail's directory fd.
    pub fn relative(&self) -> &[u8] {
        &self.0[1..]
    }

    /// The manifest text form.
    pub fn encoded(&self) -> String {
        encode(&self.0)
    }
}

fn validate(bytes: &[u8]) -> Result<(), String> {
    if bytes.first() != Some(&b'/') {
        return Err("path is not absolute".into());
    }
    if bytes.contains(&0) {
        return Err("path contains a NUL byte".into());
    }
    if bytes.len() > 1 {
        for comp in bytes[1..].split(|&b| b == b'/') {
            match comp {
                b"" => return Err("path has an empty component (`//` or a trailing `/`)".into()),
                b"." => return Err("path has a `.` component".into()),
                b".." => return Err("path has a `..` component".into()),
                _ => {}
            }
        }
    }
    Ok(())
}

impl Ord for MPath {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_path_bytes(&self.0, &other.0)
    }
}

/// The order of manifest paths, component-wise, computed on the bytes: in
/// a normalised path a `/` ends a component, so it sorts below every other
/// byte (there is no NUL), and a path that is a prefix of another sorts
/// first. Sorting the paths of a manifest is hot; splitting into
/// components was not.
pub fn cmp_path_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    // The common prefix, eight bytes at a time (paths of one manifest
    // share long ones), then byte by byte.
    let mut i = 0;
    while i + 8 <= n && a[i..i + 8] == b[i..i + 8] {
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    if i == n {
        return a.len().cmp(&b.len());
    }
    let key = |c: u8| if c == b'/' { 0 } else { c };
    key(a[i]).cmp(&key(b[i]))
}

impl PartialOrd for MPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for MPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encoded())
    }
}

impl fmt::Debug for MPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.encoded())
    }
}

impl serde::Serialize for MPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode_cow(&self.0))
    }
}

impl<'de> serde::Deserialize<'de> for MPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = decode(&text).map_err(serde::de::Error::custom)?;
        MPath::new(bytes).map_err(|e| serde::de::Error::custom(format!("{e}: {text:?}")))
    }
}

/// Arbitrary path bytes (a symlink target, an argv element), encoded like
/// [`MPath`] but without the normal-form rules.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode(&self.0))
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", encode(&self.0))
    }
}

impl serde::Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode_cow(&self.0))
    }
}

impl<'de> serde::Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = decode(&text).map_err(serde::de::Error::custom)?;
        if bytes.contains(&0) {
            return Err(serde::de::Error::custom("value contains a NUL byte"));
        }
        Ok(Bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_byte() {
        let all: Vec<u8> = (1..=255u8).collect();
        assert_eq!(decode(&encode(&all)).unwrap(), all);
        assert_eq!(encode(b"/usr/lib"), "/usr/lib");
        assert_eq!(encode(b"/a\\x2d\xff"), "/a\\\\x2d\\xff");
        assert_eq!(decode("/a\\\\x2d\\xff").unwrap(), b"/a\\x2d\xff");
        assert!(decode("/a\\q").is_err());
        assert!(decode("/a\\x4").is_err());
    }

    #[test]
    fn validates_normal_form() {
        assert!(MPath::new("/").is_ok());
        assert!(MPath::new("/a/b").is_ok());
        for bad in ["", "a", "/a/", "//a", "/a/./b", "/a/../b", "/..", "/a\0b"] {
            assert!(MPath::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest::proptest! {
        /// The byte comparison is the component-wise order.
        #[test]
        fn byte_order_is_component_order(
            a in proptest::collection::vec("[a/.\\-\\x01\\xff]{1,3}", 0..4),
            b in proptest::collection::vec("[a/.\\-\\x01\\xff]{1,3}", 0..4),
        ) {
            let path = |comps: &Vec<String>| {
                let comps: Vec<&str> = comps
                    .iter()
                    .map(|c| c.trim_matches('/'))
                    .flat_map(|c| c.split('/'))
                    .filter(|c| !c.is_empty() && *c != "." && *c != "..")
                    .collect();
                MPath::new(format!("/{}", comps.join("/"))).unwrap()
            };
            let (x, y) = (path(&a), path(&b));
            proptest::prop_assert_eq!(x.cmp(&y), x.components().cmp(y.components()));
        }
    }

    #[test]
    fn orders_by_component() {
        let mut v: Vec<MPath> = ["/usr-x", "/usr/lib", "/usr", "/", "/a"]
            .iter()
            .map(|p| MPath::new(*p).unwrap())
            .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(super::MPath::encoded).collect();
        assert_eq!(s, ["/", "/a", "/usr", "/usr/lib", "/usr-x"]);
    }

    #[test]
    fn parents_and_ancestors() {
        let p = MPath::new("/a/b/c").unwrap();
        assert_eq!(p.parent().unwrap().encoded(), "/a/b");
        assert_eq!(MPath::new("/a").unwrap().parent().unwrap(), MPath::root());
        let anc: Vec<String> = p.ancestors().iter().map(super::MPath::encoded).collect();
        assert_eq!(anc, ["/", "/a", "/a/b"]);
        assert!(p.starts_with(&MPath::new("/a/b").unwrap()));
        assert!(!MPath::new("/a/bc")
            .unwrap()
            .starts_with(&MPath::new("/a/b").unwrap()));
        assert_eq!(MPath::root().join(b"x").encoded(), "/x");
    }
}
