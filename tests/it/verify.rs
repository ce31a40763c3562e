//! `pivot verify`: the CI gate passes only when every stage is up to date and every blob its
//! cached outputs need is in the local cache.

use std::fs;

use crate::support::{Project, PRELUDE};

fn project() -> Project {
    let p = Project::new();
    p.write("data/raw.txt", "1 2 3\n");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def prep(raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
         ) -> Annotated[str, outputs.Out('data/clean.txt', loaders.Text())]:
    return raw.replace(' ', ',')


def count(clean: Annotated[str, outputs.Dep('data/clean.txt', loaders.Text())]
          ) -> Annotated[dict, outputs.Metric('metrics/count.json')]:
    return {{'n': len(clean.split(','))}}


def shards() -> Annotated[dict, outputs.DirectoryOut('out/shards/', loaders.JSON())]:
    return {{'a.json': [1], 'sub/b.json': [2]}}


pipeline = Pipeline('verify')
pipeline.register(prep)
pipeline.register(count)
pipeline.register(shards)
"
        ),
    );
    p
}

fn remove_blob_of(p: &Project, stage: &str, path: &str, file: Option<&str>) {
    let lock = pivot::lockfile::read(&p.path(&format!(".pivot/stages/{stage}.lock")))
        .unwrap()
        .unwrap();
    let entry = lock.outs.iter().find(|e| e.path == path).unwrap();
    let d = match file {
        Some(rel) => {
            let files = entry.manifest.as_ref().unwrap();
            files
                .iter()
                .find(|f| f.relpath == rel)
                .unwrap()
                .hash
                .clone()
        }
        None => entry.hash.clone(),
    };
    let d = d.as_str();
    fs::remove_file(p.path(&format!(".pivot/cache/files/{}/{}", &d[..2], &d[2..]))).unwrap();
}

#[test]
fn a_reproduced_pipeline_passes() {
    let p = project();
    p.pivot(&["repro"]).success();
    let r = p.pivot(&["verify"]);
    r.success();
    assert_eq!(
        r.stdout,
        "Verification passed

  ✓ prep: passed
  ✓ count: passed
  ✓ shards: passed
"
    );
}

#[test]
fn a_stale_stage_fails_with_its_reason() {
    let p = project();
    p.pivot(&["repro"]).success();
    p.write("data/raw.txt", "4 5\n");
    let r = p.pivot(&["verify", "count"]);
    r.code(1);
    assert_eq!(
        r.stdout,
        "Verification failed

  ✗ prep: failed
      Input dependencies changed
  ✗ count: failed
      Upstream stale (prep)
"
    );
}

#[test]
fn a_blob_missing_from_the_cache_fails_naming_the_output_file() {
    let p = project();
    p.pivot(&["repro"]).success();
    // The workspace still holds the files (hard links), so the stages are up to date.
    remove_blob_of(&p, "prep", "data/clean.txt", None);
    remove_blob_of(&p, "shards", "out/shards/", Some("sub/b.json"));
    let r = p.pivot(&["verify", "--json"]);
    r.code(1);
    assert_eq!(
        r.json(),
        serde_json::json!({
            "schema_version": 1,
            "passed": false,
            "stages": [
                {"name": "prep", "status": "failed", "reason": "Missing files: data/clean.txt",
                 "missing_files": ["data/clean.txt"]},
                {"name": "count", "status": "passed", "reason": "", "missing_files": []},
                {"name": "shards", "status": "failed",
                 "reason": "Missing files: out/shards/sub/b.json",
                 "missing_files": ["out/shards/sub/b.json"]},
            ]
        })
    );
    let text = p.pivot(&["verify", "prep"]);
    text.code(1);
    assert_eq!(
        text.stdout,
        "Verification failed

  ✗ prep: failed
      Missing files: data/clean.txt
"
    );
    assert!(
        text.stderr.contains("hint: the workspace still holds the outputs whose cached copies are missing: `pivot commit prep` stores them in the cache again"),
        "{}",
        text.stderr
    );
    // The hint's command is the repair.
    p.pivot(&["commit", "prep", "shards"]).success();
    p.pivot(&["verify"]).success();
}

#[test]
fn json_of_a_never_run_pipeline_names_every_stage() {
    let p = project();
    let r = p.pivot(&["verify", "--json"]);
    r.code(1);
    let doc = r.json();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["passed"], false);
    let stages = doc["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 3);
    assert_eq!(
        stages[0],
        serde_json::json!({"name": "prep", "status": "failed", "reason": "No previous run",
                           "missing_files": []})
    );
}

#[test]
fn a_pipeline_without_stages_is_an_error() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        "from pivot.pipeline import Pipeline\npipeline = Pipeline('empty')\n",
    );
    let r = p.pivot(&["verify"]);
    r.code(2);
    assert_eq!(
        r.stderr,
        "error: no stages to verify\nhint: register stages on the `Pipeline` in the pipeline file\n"
    );
}
