//! Stage specs as `pivot._runtime.load_pipeline` describes them (absolute, normalised paths; a
//! directory output keeps its trailing `/`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct PipelineSpec {
    pub name: String,
    pub root: PathBuf,
    pub stages: Vec<StageSpec>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StageSpec {
    pub name: String,
    pub deps: Vec<DepSpec>,
    pub outs: Vec<OutSpec>,
    #[serde(default)]
    pub incremental_inputs: Vec<String>,
    #[serde(default)]
    pub mutex: Vec<String>,
    #[serde(default)]
    pub has_params: bool,
    pub source: Option<SourceLoc>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DepSpec {
    pub param: String,
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutKind {
    Out,
    Metric,
    Plot,
    Incremental,
    Directory,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutSpec {
    pub field: String,
    pub path: String,
    pub kind: OutKind,
    pub cache: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SourceLoc {
    pub file: String,
    pub line: u32,
}

impl DepSpec {
    pub fn abs(&self) -> &Path {
        Path::new(self.path.trim_end_matches('/'))
    }
}

impl OutSpec {
    pub fn abs(&self) -> &Path {
        Path::new(self.path.trim_end_matches('/'))
    }

    pub fn is_dir(&self) -> bool {
        self.path.ends_with('/')
    }
}

impl PipelineSpec {
    pub fn parse(json: &str) -> Result<PipelineSpec, serde_json::Error> {
        serde_json::from_str(json)
    }
}
