//! The shapes of `pivot._runtime`'s answers and their decoding into plain Rust values, so that no
//! JSON text from Python leaves `src/python/`.
//!
//! The answers still travel as JSON text, one `json.dumps` and one `serde_json` pass per call (what
//! the calls cost before they were typed); the text is decoded while borrowed from Python. Every
//! struct here denies unknown fields: the two sides are built together, so a field Python sends and Rust does not
//! read is a mistake to see, not to ignore.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::pipeline::spec::{DepSpec, OutKind, OutSpec, PipelineSpec, StageSpec};
use crate::timeout::StageTimeout;

/// A stage's effective params, in model field order.
pub(crate) type Params = serde_json::Map<String, serde_json::Value>;

/// One answer per requested stage: the value, or why it could not be computed. A stage Python
/// did not answer for is absent.
pub(crate) type PerStage<T> = HashMap<String, Result<T, String>>;

/// One stage's code manifest (sorted keys -> digests) and where each keyed function or class is
/// defined (`file:line`, project-relative when inside the project).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FingerprintAnswer {
    pub manifest: BTreeMap<String, String>,
    pub locations: BTreeMap<String, String>,
}

/// What a stage child wrote on its result pipe (`_runtime.child_run`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub(crate) enum ChildResult {
    Ok,
    /// `reason` is one line; `traceback` is Python's, empty for pivot's own errors.
    Failed {
        #[serde(default)]
        reason: String,
        #[serde(default)]
        traceback: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pipeline {
    stages: Vec<Stage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stage {
    name: String,
    deps: Vec<Dep>,
    outs: Vec<Out>,
    mutex: Vec<String>,
    /// Seconds, checked by pylib; checked again here, as every answer is.
    timeout: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Dep {
    path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Out {
    path: String,
    kind: Kind,
    cache: bool,
}

// Mirrors `OutKind`, which is plain data and knows nothing of how Python spells it.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Out,
    Metric,
    Plot,
    Incremental,
    Directory,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamsEntry {
    params: Option<Params>,
    error: Option<String>,
    /// The error is `params.yaml`'s own: the command stops.
    #[serde(default)]
    file_error: bool,
    #[serde(default)]
    hint: Option<String>,
}

/// `stage_params`'s answer: each stage's params, or the `params.yaml` problem that stops the
/// command (message and hint).
#[derive(Debug)]
pub(crate) struct ParamsAnswer {
    pub(crate) per_stage: PerStage<Params>,
    pub(crate) file_error: Option<(String, Option<String>)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FingerprintEntry {
    manifest: Option<BTreeMap<String, String>>,
    locations: Option<BTreeMap<String, String>>,
    error: Option<String>,
}

fn decode<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// An entry is either a value or an error; both or neither means the two sides disagree.
fn entry<T>(
    name: &str,
    value: Option<T>,
    error: Option<String>,
) -> Result<Result<T, String>, String> {
    match (value, error) {
        (Some(v), None) => Ok(Ok(v)),
        (None, Some(e)) => Ok(Err(e)),
        _ => Err(format!(
            "stage `{name}` has neither exactly a result nor an error"
        )),
    }
}

/// `load_pipeline`: the stages in registration order.
pub(super) fn pipeline(text: &str) -> Result<PipelineSpec, String> {
    let wire: Pipeline = decode(text)?;
    let stages = wire
        .stages
        .into_iter()
        .map(|s| {
            let timeout = s
                .timeout
                .map(StageTimeout::from_secs)
                .transpose()
                .map_err(|e| format!("stage `{}`: {e}", s.name))?;
            Ok(StageSpec {
                name: s.name,
                deps: s
                    .deps
                    .into_iter()
                    .map(|d| DepSpec { path: d.path })
                    .collect(),
                outs: s
                    .outs
                    .into_iter()
                    .map(|o| OutSpec {
                        path: o.path,
                        kind: match o.kind {
                            Kind::Out => OutKind::Out,
                            Kind::Metric => OutKind::Metric,
                            Kind::Plot => OutKind::Plot,
                            Kind::Incremental => OutKind::Incremental,
                            Kind::Directory => OutKind::Directory,
                        },
                        cache: o.cache,
                    })
                    .collect(),
                mutex: s.mutex,
                timeout,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(PipelineSpec { stages })
}

/// `stage_params`: `{name: {"params": {...}} | {"error": message[, "file_error", "hint"]}}`.
pub(super) fn stage_params(text: &str) -> Result<ParamsAnswer, String> {
    let wire: HashMap<String, ParamsEntry> = decode(text)?;
    let mut file_error = None;
    let mut per_stage = HashMap::with_capacity(wire.len());
    for (name, e) in wire {
        if e.file_error && file_error.is_none() {
            file_error = Some((e.error.clone().unwrap_or_default(), e.hint));
        }
        let value = entry(&name, e.params, e.error)?;
        per_stage.insert(name, value);
    }
    Ok(ParamsAnswer {
        per_stage,
        file_error,
    })
}

/// `fingerprint`: `{name: {"manifest": {...}, "locations": {...}} | {"error": message}}`.
pub(super) fn fingerprints(text: &str) -> Result<PerStage<FingerprintAnswer>, String> {
    let wire: HashMap<String, FingerprintEntry> = decode(text)?;
    wire.into_iter()
        .map(|(name, e)| {
            let answer = match (e.manifest, e.locations) {
                (Some(manifest), Some(locations)) => Some(FingerprintAnswer {
                    manifest,
                    locations,
                }),
                (None, None) => None,
                _ => return Err(format!("stage `{name}` has a manifest without locations")),
            };
            let value = entry(&name, answer, e.error)?;
            Ok((name, value))
        })
        .collect()
}

/// `user_sources`: absolute paths of the loaded user source files.
pub(super) fn user_sources(text: &str) -> Result<Vec<PathBuf>, String> {
    decode(text)
}

/// A stage child's result, or `None` when what it wrote is not one (it died mid-write, or a
/// descendant wrote to the inherited pipe): the caller then judges by the exit status alone.
pub(crate) fn child_result(bytes: &[u8]) -> Option<ChildResult> {
    serde_json::from_slice(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_decodes_into_stage_specs() {
        let text = r#"{"stages": [{"name": "train", "deps": [{"path": "/p/in.csv"}],
            "outs": [{"path": "/p/model/", "kind": "directory", "cache": true}],
            "mutex": ["gpu"], "timeout": 0.5}]}"#;
        let spec = pipeline(text).unwrap();
        let stage = &spec.stages[0];
        assert_eq!(stage.name, "train");
        assert_eq!(stage.deps[0].path, "/p/in.csv");
        assert_eq!(stage.outs[0].kind, OutKind::Directory);
        assert!(stage.outs[0].is_dir() && stage.outs[0].cache);
        assert_eq!(stage.mutex, ["gpu"]);
        assert_eq!(stage.timeout.map(|t| t.to_string()).as_deref(), Some("0.5"));
    }

    #[test]
    fn a_stage_without_a_timeout_has_none_and_a_bad_one_is_refused() {
        let stage = |timeout: &str| {
            format!(
                r#"{{"stages": [{{"name": "a", "deps": [], "outs": [], "mutex": [],
                "timeout": {timeout}}}]}}"#
            )
        };
        assert_eq!(pipeline(&stage("null")).unwrap().stages[0].timeout, None);
        let e = pipeline(&stage("-1")).unwrap_err();
        assert!(e.starts_with("stage `a`: a timeout must be"), "{e}");
    }

    #[test]
    fn a_field_rust_does_not_read_is_refused() {
        let text = r#"{"stages": [], "name": "pipeline"}"#;
        assert!(pipeline(text).unwrap_err().contains("unknown field `name`"));
    }

    #[test]
    fn per_stage_answers_keep_errors_per_stage() {
        let text = r#"{"a": {"params": {"lr": 0.1}}, "b": {"error": "bad params"}}"#;
        let answer = stage_params(text).unwrap();
        let params = &answer.per_stage;
        assert_eq!(params["a"].as_ref().unwrap()["lr"], 0.1);
        assert_eq!(params["b"], Err("bad params".to_owned()));
        assert!(answer.file_error.is_none());
        let text = r#"{"a": {"error": "`params.yaml`: no `lrr`", "file_error": true,
            "hint": "fix it"}}"#;
        assert_eq!(
            stage_params(text).unwrap().file_error,
            Some((
                "`params.yaml`: no `lrr`".to_owned(),
                Some("fix it".to_owned())
            ))
        );

        let text = r#"{"a": {"manifest": {"self:a": "00"}, "locations": {"self:a": "p.py:3"}},
            "b": {"error": "no source"}}"#;
        let fps = fingerprints(text).unwrap();
        let a = fps["a"].as_ref().unwrap();
        assert_eq!(a.manifest["self:a"], "00");
        assert_eq!(a.locations["self:a"], "p.py:3");
        assert_eq!(fps["b"], Err("no source".to_owned()));
    }

    #[test]
    fn a_child_result_is_ok_or_a_failure_with_its_reason() {
        assert_eq!(child_result(br#"{"status": "ok"}"#), Some(ChildResult::Ok));
        let failed = br#"{"status": "failed", "reason": "ValueError: x", "traceback": "tb"}"#;
        assert_eq!(
            child_result(failed),
            Some(ChildResult::Failed {
                reason: "ValueError: x".into(),
                traceback: "tb".into()
            })
        );
        assert_eq!(child_result(br#"{"status": "ok""#), None);
    }

    #[test]
    fn an_entry_with_neither_result_nor_error_is_malformed() {
        assert!(stage_params(r#"{"a": {}}"#).is_err());
        assert!(fingerprints(r#"{"a": {"manifest": {}}}"#).is_err());
        assert!(user_sources(r#"{"a": 1}"#).is_err());
    }
}
