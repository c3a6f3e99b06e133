//! The combined stack depth of each program in a BPF object, counted as
//! the harshest verifier we know counts it (see `combined_depths`).

use std::collections::{BTreeMap, HashMap};

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionIndex, SymbolKind};

const FP: u8 = 10;
/// `bpf_loop`'s helper id; the verifier inlines it, spilling 3 registers
/// into the frame of the function that calls it.
const BPF_LOOP: i32 = 181;
const INLINED_LOOP_SPILL: u64 = 3 * 8;
/// 6.1 rounds every frame up to 32 bytes (later kernels to 16).
const ROUND: u64 = 32;

struct Func {
    name: String,
    section: SectionIndex,
    start: u64,
    size: u64,
}

#[derive(Default)]
struct Frame {
    bytes: u64,
    loops: bool,
    callees: Vec<usize>,
}

/// For each program (a function outside `.text`): the deepest chain of
/// frames from it through the functions it calls and the callbacks it
/// takes the address of, each frame rounded up to 32 bytes after adding
/// 24 bytes when it calls `bpf_loop`.
pub fn combined_depths(data: &[u8]) -> BTreeMap<String, u64> {
    let obj = object::File::parse(data).expect("a BPF ELF object");
    let funcs: Vec<Func> = obj
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
        .filter_map(|s| {
            Some(Func {
                name: s.name().ok()?.to_string(),
                section: s.section_index()?,
                start: s.address(),
                size: s.size(),
            })
        })
        .collect();
    let func_at = |section: SectionIndex, off: u64| -> usize {
        funcs
            .iter()
            .position(|f| f.section == section && f.start == off)
            .unwrap_or_else(|| panic!("no function at offset {off} of section {section:?}"))
    };
    let mut frames: Vec<Frame> = Vec::new();
    for f in &funcs {
        let section = obj.section_by_index(f.section).unwrap();
        let relocs: HashMap<u64, object::Relocation> = section.relocations().collect();
        let code = section.data().unwrap();
        let insns = &code[f.start as usize..(f.start + f.size) as usize];
        let mut frame = Frame::default();
        let mut fp_copy = [false; 11];
        for (i, insn) in insns.chunks_exact(8).enumerate() {
            let at = f.start + 8 * i as u64;
            let (op, dst, src) = (insn[0], insn[1] & 0xf, insn[1] >> 4);
            let off = i16::from_le_bytes([insn[2], insn[3]]);
            let imm = i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]);
            let class = op & 0x07;
            let mut depth = |d: i64| {
                if d < 0 {
                    frame.bytes = frame.bytes.max(d.unsigned_abs());
                }
            };
            // Loads and stores relative to the frame pointer.
            if (class == 0x02 || class == 0x03) && dst == FP {
                depth(i64::from(off));
            }
            if class == 0x01 && src == FP {
                depth(i64::from(off));
            }
            // `rX = r10; rX += -N`: a pointer into the frame.
            if op == 0xbf && src == FP {
                fp_copy[usize::from(dst)] = true;
                continue;
            }
            if op == 0x07 && fp_copy[usize::from(dst)] {
                depth(i64::from(imm));
            }
            if op == 0x85 {
                match (src, relocs.get(&at)) {
                    (0, _) if imm == BPF_LOOP => frame.loops = true,
                    (1, Some(r)) => frame.callees.push(target(&obj, r, &func_at, None)),
                    (1, None) => {
                        let to = at as i64 + 8 * (i64::from(imm) + 1);
                        frame.callees.push(func_at(f.section, to as u64));
                    }
                    _ => {}
                }
                fp_copy[1..=5].fill(false);
            } else if matches!(class, 0x00 | 0x01 | 0x04 | 0x07) && usize::from(dst) < 11 {
                fp_copy[usize::from(dst)] = false;
            }
            // A 64-bit immediate relocated against code is a callback's
            // address (libbpf makes it BPF_PSEUDO_FUNC).
            if op == 0x18 {
                if let Some(r) = relocs.get(&at) {
                    if let RelocationTarget::Symbol(s) = r.target() {
                        let sym = obj.symbol_by_index(s).unwrap();
                        let exec = sym
                            .section_index()
                            .and_then(|i| obj.section_by_index(i).ok())
                            .is_some_and(|s| s.kind() == object::SectionKind::Text);
                        if exec {
                            frame
                                .callees
                                .push(target(&obj, r, &func_at, Some(i64::from(imm))));
                        }
                    }
                }
            }
        }
        frames.push(frame);
    }
    fn deepest(i: usize, frames: &[Frame], seen: &mut Vec<usize>) -> u64 {
        assert!(!seen.contains(&i), "recursion in the BPF object");
        seen.push(i);
        let f = &frames[i];
        let own = (f.bytes + if f.loops { INLINED_LOOP_SPILL } else { 0 }).div_ceil(ROUND) * ROUND;
        let below = f
            .callees
            .iter()
            .map(|&c| deepest(c, frames, seen))
            .max()
            .unwrap_or(0);
        seen.pop();
        own + below
    }
    funcs
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            obj.section_by_index(f.section)
                .ok()
                .and_then(|s| s.name().ok().map(|n| n != ".text"))
                .unwrap_or(false)
        })
        .map(|(i, f)| (f.name.clone(), deepest(i, &frames, &mut Vec::new())))
        .collect()
}

/// The function a relocated call or address names: a function symbol, or
/// a section symbol plus the byte offset in the instruction (addresses).
fn target(
    obj: &object::File,
    r: &object::Relocation,
    func_at: &dyn Fn(SectionIndex, u64) -> usize,
    addend: Option<i64>,
) -> usize {
    let RelocationTarget::Symbol(s) = r.target() else {
        panic!("a call relocated against no symbol");
    };
    let sym = obj.symbol_by_index(s).unwrap();
    let section = sym.section_index().expect("a defined symbol");
    let off = match (sym.kind(), addend) {
        (SymbolKind::Section, Some(a)) => a as u64,
        (SymbolKind::Section, None) => panic!("a call relocated against a section symbol"),
        (_, a) => sym.address() + a.unwrap_or(0) as u64,
    };
    func_at(section, off)
}
