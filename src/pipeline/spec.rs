//! Stage specs as plain data, as `pivot._runtime.load_pipeline` describes them (absolute,
//! normalised paths; a directory output keeps its trailing `/`). How they travel from Python is
//! `python::wire`'s business, not this module's.

use std::path::Path;

use crate::timeout::StageTimeout;

#[derive(Debug, Clone)]
pub(crate) struct PipelineSpec {
    /// In registration order.
    pub stages: Vec<StageSpec>,
}

#[derive(Debug, Clone)]
pub(crate) struct StageSpec {
    pub name: String,
    /// One entry per dependency file (a dep naming several paths gives several entries).
    pub deps: Vec<DepSpec>,
    /// One entry per output file or directory.
    pub outs: Vec<OutSpec>,
    pub mutex: Vec<String>,
    /// `register(timeout=)`; `--timeout` overrides it, it overrides `core.stage_timeout`.
    pub timeout: Option<StageTimeout>,
}

#[derive(Debug, Clone)]
pub(crate) struct DepSpec {
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutKind {
    Out,
    Metric,
    Plot,
    Incremental,
    Directory,
}

#[derive(Debug, Clone)]
pub(crate) struct OutSpec {
    pub path: String,
    pub kind: OutKind,
    pub cache: bool,
}

impl DepSpec {
    pub(crate) fn abs(&self) -> &Path {
        Path::new(self.path.trim_end_matches('/'))
    }
}

impl OutSpec {
    pub(crate) fn abs(&self) -> &Path {
        Path::new(self.path.trim_end_matches('/'))
    }

    pub(crate) fn is_dir(&self) -> bool {
        self.path.ends_with('/')
    }
}
