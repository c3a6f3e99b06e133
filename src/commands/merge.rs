//! `jailtrace merge`: one manifest from several recordings
//! ([`crate::core::merge`]).

use std::path::PathBuf;

use crate::commands::Outcome;
use crate::core::error::Failure;
use crate::core::manifest::Manifest;
use crate::core::merge::{merge, Prefer};

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The manifests to merge, oldest recording first (that order only
    /// matters to --prefer).
    #[arg(required = true, num_args = 2.., value_name = "MANIFEST")]
    pub inputs: Vec<PathBuf>,
    /// Where to write the merged manifest (`-` for stdout); written atomically.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: PathBuf,
    /// Settle conflicts with the entry from the newest (last given) or the
    /// oldest (first given) manifest that has the path.
    #[arg(long, value_enum, value_name = "WHICH")]
    pub prefer: Option<PreferArg>,
}

/// `--prefer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PreferArg {
    Newer,
    Older,
}

impl From<PreferArg> for Prefer {
    fn from(p: PreferArg) -> Prefer {
        match p {
            PreferArg::Newer => Prefer::Newer,
            PreferArg::Older => Prefer::Older,
        }
    }
}

pub fn run(args: &MergeArgs) -> anyhow::Result<Outcome> {
    let mut inputs = Vec::with_capacity(args.inputs.len());
    for p in &args.inputs {
        let m = Manifest::load(p).map_err(|e| Failure::new(e.to_string()))?;
        inputs.push((p.display().to_string(), m));
    }
    let prefer = args.prefer.map(Prefer::from);
    let merged = merge(&inputs, prefer);
    for c in &merged.conflicts {
        let how = match prefer {
            None => "",
            Some(Prefer::Newer) => " (took the newer)",
            Some(Prefer::Older) => " (took the older)",
        };
        eprintln!("jailtrace: {c}{how}");
    }
    if !merged.conflicts.is_empty() && args.prefer.is_none() {
        return Err(Failure::new(format!(
            "{} conflict{}: nothing written; pass --prefer newer or --prefer older to settle them",
            merged.conflicts.len(),
            if merged.conflicts.len() == 1 { "" } else { "s" }
        ))
        .into());
    }
    for (p, parent) in &merged.dropped {
        eprintln!("jailtrace: left out {p}: {parent} is not a directory in the merged manifest");
    }
    // A last check that the union is a manifest we would load.
    merged
        .manifest
        .validate("merged manifest")
        .and_then(|()| merged.manifest.save(&args.output))
        .map_err(|e| Failure::new(e.to_string()))?;
    Ok(Outcome::Done)
}
