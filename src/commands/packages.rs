//! `jailtrace packages`: the Debian packages a manifest's files come from
//! ([`crate::core::packages`]).

use std::io::Write;
use std::path::PathBuf;

use crate::commands::common::{load, Format};
use crate::commands::Outcome;
use crate::core::packages::{self, Db};

#[derive(Debug, clap::Args)]
pub struct PackagesArgs {
    /// The manifest to report on.
    pub manifest: PathBuf,
    /// Look the files up in this host's dpkg database even when the
    /// manifest carries package names (from `record --packages`).
    #[arg(long)]
    pub host: bool,
    /// Also list each package's files.
    #[arg(long)]
    pub files: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &PackagesArgs) -> anyhow::Result<Outcome> {
    let m = load(&args.manifest)?;
    let (report, source) = if packages::annotated(&m) && !args.host {
        (packages::from_manifest(&m), "the manifest")
    } else {
        (
            packages::from_db(&m, &Db::host()?)?,
            "this host's dpkg database",
        )
    };
    let mut out = String::new();
    match args.format {
        Format::Json => {
            let v = serde_json::json!({
                "source": source,
                "packages": report.packages.iter().map(|(name, files)| {
                    serde_json::json!({"name": name, "files": files})
                }).collect::<Vec<_>>(),
                "unowned": report.unowned,
            });
            out = serde_json::to_string_pretty(&v)? + "\n";
        }
        Format::Text => {
            out += &format!("packages ({}, from {source}):\n", report.packages.len());
            for (name, files) in &report.packages {
                let n = files.len();
                out += &format!("  {name} ({n} file{})\n", if n == 1 { "" } else { "s" });
                if args.files {
                    for f in files {
                        out += &format!("    {f}\n");
                    }
                }
            }
            if !report.unowned.is_empty() {
                out += &format!("files no package owns ({}):\n", report.unowned.len());
                for f in &report.unowned {
                    out += &format!("  {f}\n");
                }
            }
        }
    }
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        Ok(()) => Ok(Outcome::Done),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Outcome::Done),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
    }
}
