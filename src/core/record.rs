//! Recording a command into a manifest: trace it with an engine, resolve
//! what it touched into entries, add what the inference rules name, filter,
//! and annotate packages. `record` is this; `verify --host-reference` uses
//! its first half, [`trace`].

use regex::Regex;

use crate::core::infer::Rule;
use crate::core::launch::ChildError;
use crate::core::manifest::pathenc::cmp_path_bytes;
use crate::core::manifest::{CommandInfo, Entry, Manifest, SCHEMA_VERSION};
use crate::core::packages::Db;
use crate::core::resolve;
use crate::core::trace::{Engine, Launch, Recording, TraceError, TraceOptions};

/// Why a command was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The command could not be started (not found, not executable, a
    /// step of the launch): nothing ran, so nothing is recorded.
    #[error("the command could not be started")]
    NotStarted(ChildError),
}

/// A traced run, resolved.
pub struct Traced {
    /// Every path the run touched, resolved on the host, sorted by path.
    pub entries: Vec<Entry>,
    /// What resolution could not read (the engine's own warnings are in
    /// `rec`).
    pub resolve_warnings: Vec<String>,
    /// The engine's recording, its raw log handed over to resolution.
    pub rec: Recording,
    /// What resolution is done with (see [`resolve::Scraps`]).
    pub scraps: resolve::Scraps,
}

impl Traced {
    /// The engine's warnings, then resolution's.
    pub fn warnings(&self) -> impl Iterator<Item = &String> {
        self.rec.warnings.iter().chain(&self.resolve_warnings)
    }
}

/// Traces the command `launch` starts with `engine`, and resolves the log.
pub fn trace(
    engine: Engine,
    launch: Launch,
    opts: &TraceOptions,
    resolve: &resolve::Options,
) -> Result<Traced, RecordError> {
    trace_with(engine, launch, opts, resolve, None)
}

/// [`trace`], with resolution run ahead by `ahead`, which `opts.fresh`
/// feeds.
fn trace_with(
    engine: Engine,
    launch: Launch,
    opts: &TraceOptions,
    resolve: &resolve::Options,
    ahead: Option<resolve::Ahead>,
) -> Result<Traced, RecordError> {
    let mut rec = engine.backend().record(launch, opts)?;
    if let Some(e) = rec.start_failure.take() {
        return Err(RecordError::NotStarted(e));
    }
    let built = resolve::build_with(std::mem::take(&mut rec.log), ahead, rec.lost, resolve);
    rec.timings.extend(built.how);
    Ok(Traced {
        entries: built.entries,
        resolve_warnings: built.warnings,
        rec,
        scraps: built.scraps,
    })
}

/// What to record, and how: the command line's options without clap.
pub struct Request<'a> {
    pub engine: Engine,
    pub launch: Launch<'a>,
    pub trace: TraceOptions,
    pub resolve: resolve::Options,
    /// The command as the manifest names it: argv, cwd, uid, gid (its
    /// exit and switched ids are the recording's).
    pub command: CommandInfo,
    /// `--infer`.
    pub infer: &'a [Rule],
    /// `--tree`: directories kept whole (real paths, checked).
    pub trees: &'a [crate::core::manifest::pathenc::MPath],
    /// `--include` and `--exclude`.
    pub include: &'a [Regex],
    pub exclude: &'a [Regex],
    /// `--packages`.
    pub packages: Option<&'a Db>,
}

/// A recording, made into a manifest.
pub struct Recorded {
    pub manifest: Manifest,
    /// The engine's recording: how the command ended, what was lost, the
    /// start-up timings (its log, ids and warnings are in the manifest).
    pub run: Recording,
    /// What resolution is done with (see [`resolve::Scraps`]).
    pub scraps: resolve::Scraps,
}

/// Records the command and makes its manifest.
pub fn record(mut req: Request<'_>) -> Result<Recorded, RecordError> {
    // The bpf engine leaves jailtrace's CPU idle during the run: resolve
    // there, ahead (a tracee seen chrooted is resolved after the run).
    let ahead = (req.engine == Engine::Bpf && req.trace.root.is_none()).then(resolve::Ahead::start);
    req.trace.fresh = ahead.as_ref().map(resolve::Ahead::sender);
    let traced = trace_with(req.engine, req.launch, &req.trace, &req.resolve, ahead)?;
    let warnings = traced.warnings().cloned().collect();
    let Traced {
        mut entries,
        mut rec,
        scraps,
        ..
    } = traced;
    add_inferred(&mut entries, req.infer, &req.resolve);
    filter(&mut entries, req.include, req.exclude);
    let mut manifest = Manifest {
        schema: SCHEMA_VERSION,
        generator: format!("jailtrace {}", env!("CARGO_PKG_VERSION")),
        command: CommandInfo {
            exit_status: rec.exit_status,
            set_uids: std::mem::take(&mut rec.set_uids).into_iter().collect(),
            set_gids: std::mem::take(&mut rec.set_gids).into_iter().collect(),
            // Lost events may have held a bind: unknown then.
            binds_privileged_port: (rec.lost == 0).then_some(rec.privileged_bind),
            ..req.command
        },
        warnings,
        trees: Vec::new(),
        entries,
    };
    // What each tree holds after the run; one that cannot be read now is
    // left out, and said so.
    for root in req.trees {
        match resolve::tree::walk(root.as_bytes()).and_then(|w| resolve::tree::digest(&w)) {
            Ok(digest) => manifest.trees.push(crate::core::manifest::Tree {
                path: root.clone(),
                digest,
            }),
            Err(e) => manifest
                .warnings
                .push(format!("--tree: {e}; the tree is not in the manifest")),
        }
    }
    manifest.normalize();
    if let Some(db) = req.packages {
        if let Err(e) = crate::core::packages::annotate(&mut manifest, db) {
            manifest
                .warnings
                .push(format!("--packages: no package names: {e:#}"));
        }
    }
    Ok(Recorded {
        manifest,
        run: rec,
        scraps,
    })
}

/// The entries the rules infer, beside the run's own (sorted by path).
fn add_inferred(entries: &mut Vec<Entry>, rules: &[Rule], opts: &resolve::Options) {
    if rules.is_empty() {
        return;
    }
    // One pass over the entries' accesses, which lie all over the heap;
    // the rules then read this list, each of them.
    let touched: Vec<&[u8]> = entries
        .iter()
        .filter(|e| e.accesses.iter().any(|a| a.result.is_ok()))
        .map(|e| e.path.as_bytes())
        .collect();
    let paths = crate::core::infer::paths(rules, touched.iter().copied());
    // The entries are in order: a search finds a path without a set.
    let known = |p: &[u8]| {
        entries
            .binary_search_by(|e| cmp_path_bytes(e.path.as_bytes(), p))
            .is_ok()
    };
    let more = resolve::inferred(paths, &known, opts);
    entries.extend(more);
    entries.sort_by(|a, b| a.path.cmp(&b.path));
}

/// `--include` and `--exclude`, on the entries' encoded paths.
fn filter(entries: &mut Vec<Entry>, include: &[Regex], exclude: &[Regex]) {
    if include.is_empty() && exclude.is_empty() {
        return;
    }
    entries.retain(|e| {
        let p = e.path.encoded();
        (include.is_empty() || include.iter().any(|r| r.is_match(&p)))
            && !exclude.iter().any(|r| r.is_match(&p))
    });
}
