//! What several commands share on the command line: option types, and
//! loading a manifest with a one-line error.

use std::io::IsTerminal;
use std::time::Duration;

use crate::core::error::Failure;
use crate::core::manifest::Manifest;
use crate::core::trace;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// Whether to colour stdout: `always`, `never`, or (auto) when stdout is a
/// terminal and NO_COLOR is unset or empty (no-color.org).
pub fn use_color(when: ColorWhen) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            std::io::stdout().is_terminal()
                && !matches!(std::env::var_os("NO_COLOR"), Some(v) if !v.is_empty())
        }
    }
}

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    Ptrace,
    Bpf,
}

impl From<BackendArg> for trace::Engine {
    fn from(b: BackendArg) -> trace::Engine {
        match b {
            BackendArg::Ptrace => trace::Engine::Ptrace,
            BackendArg::Bpf => trace::Engine::Bpf,
        }
    }
}

/// A duration option: seconds, or humantime's `5s`, `500ms`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if secs >= 0.0 && secs.is_finite() {
            return Ok(Duration::from_secs_f64(secs));
        }
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (try 5s, 500ms or 2m)"))
}

/// A regex error on one line: the regex crate draws the pattern with a
/// caret under the problem, and the last line says what it is.
pub fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    match text.lines().rev().find_map(|l| l.strip_prefix("error: ")) {
        Some(reason) => format!("invalid regex: {reason}"),
        None => format!(
            "invalid regex: {}",
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
    }
}

/// Loads a manifest; the error is one line that already names the file and
/// the cause (its Display includes the source, so the chain is not repeated).
pub fn load(path: &std::path::Path) -> anyhow::Result<Manifest> {
    Manifest::load(path).map_err(|e| Failure::new(e.to_string()).into())
}
