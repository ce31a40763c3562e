//! What a restore puts back, decided from lock files and `.pvt` files: `pivot checkout` (every
//! target, or the ones named) and `repro --checkout-missing` (tracked data missing from the
//! workspace). The materialiser ([`crate::cache::materialise`]) does the writing.
//!
//! Non-cached outputs (`Metric`, `cache=False`) are never targets: whether an output is cached is
//! decided by its stage's spec, not by what the lock file holds.

use crate::lockfile::ParsedMemo;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::cache::{Cache, CheckoutMode, Materialiser, Policy, RestoreOutcome, RestoreTarget};
use crate::digest::DigestMemo;
use crate::lockfile::LockError;
use crate::pipeline::StageSpec;
use crate::project::Project;
use crate::references::recorded_outputs;
use crate::repo_path::PathError;
use crate::tracked::Tracked;

/// What to restore, and what was left out.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// One per destination.
    pub targets: Vec<RestoreTarget>,
    /// What is not restored, in the order it was met.
    pub skipped: Vec<Skipped>,
}

/// Something a restore leaves out.
#[derive(Debug)]
pub(crate) enum Skipped {
    /// A destination restores may not write to (outside the project).
    Unwritable { path: PathBuf, error: PathError },
    /// A stage's lock file could not be read: none of its outputs is restored.
    Lock(LockError),
}

/// Why a named target cannot be restored.
#[derive(thiserror::Error, Debug)]
pub(crate) enum TargetError {
    #[error("`{path}` is not cached (a `Metric` or `cache=False` output), so there is nothing to restore")]
    NotCached { path: String, stage: String },
    #[error("`{path}` has no cached version: stage `{stage}` has not run")]
    NotRun { path: String, stage: String },
    #[error("`{name}` is neither tracked data nor a cached stage output")]
    Unknown { name: String },
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Every tracked item, then every cached output a lock file records.
pub(crate) fn everything(
    project: &Project,
    stages: &[StageSpec],
    tracked: &[Tracked],
    parsed: &dyn ParsedMemo,
) -> Plan {
    let mut plan = tracked_data(project, tracked);
    for stage in stages {
        match recorded_outputs(project, stage, parsed) {
            Ok(outs) => {
                for (k, entry) in outs {
                    plan.push(project, stage.outs[k].abs(), entry.hash, entry.manifest);
                }
            }
            Err(e) => plan.skipped.push(Skipped::Lock(e)),
        }
    }
    plan.dedup();
    plan
}

/// Every tracked item.
pub(crate) fn tracked_data(project: &Project, tracked: &[Tracked]) -> Plan {
    let mut plan = Plan::default();
    for t in tracked {
        plan.push_tracked(project, t);
    }
    plan
}

/// The targets `names` name (relative to `cwd`): tracked data (`x` or `x.pvt`) or cached stage
/// outputs. A name that is neither, a non-cached output or one whose stage has not run is an
/// error.
pub(crate) fn named(
    project: &Project,
    stages: &[StageSpec],
    tracked: &[Tracked],
    cwd: &Path,
    names: &[String],
    parsed: &dyn ParsedMemo,
) -> Result<Plan, TargetError> {
    let mut plan = Plan::default();
    for name in names {
        let abs = crate::project::normalize(cwd, Path::new(name));
        if let Some(t) = tracked.iter().find(|t| t.data == abs || t.pvt == abs) {
            plan.push_tracked(project, t);
            continue;
        }
        let Some((stage, k)) = stages.iter().find_map(|stage| {
            let k = stage.outs.iter().position(|out| out.abs() == abs)?;
            Some((stage, k))
        }) else {
            return Err(TargetError::Unknown { name: name.clone() });
        };
        let path = project.rel(&abs);
        if !stage.outs[k].cache {
            return Err(TargetError::NotCached {
                path,
                stage: stage.name.clone(),
            });
        }
        let recorded = recorded_outputs(project, stage, parsed)?;
        let Some((_, entry)) = recorded.into_iter().find(|(j, _)| *j == k) else {
            return Err(TargetError::NotRun {
                path,
                stage: stage.name.clone(),
            });
        };
        plan.push(project, &abs, entry.hash, entry.manifest);
    }
    plan.dedup();
    Ok(plan)
}

/// Remote transfers' targets (SPEC.md 9.3): a name without `/` that is a stage is that stage's
/// cached outputs, as its lock records them (plus, in `deps`, the digests its lock records for
/// its deps: a fetch brings those too); anything else is a [`named`] target. A stage that has
/// not run has nothing to give and is not an error.
pub(crate) fn stages_or_named(
    project: &Project,
    stages: &[StageSpec],
    tracked: &[Tracked],
    cwd: &Path,
    names: &[String],
    parsed: &dyn ParsedMemo,
) -> Result<(Plan, Vec<crate::lockfile::LockEntry>), TargetError> {
    let mut plan = Plan::default();
    let mut deps = Vec::new();
    let mut others = Vec::new();
    for name in names {
        let stage = (!name.contains('/'))
            .then(|| stages.iter().find(|s| s.name == *name))
            .flatten();
        let Some(stage) = stage else {
            others.push(name.clone());
            continue;
        };
        for (k, entry) in recorded_outputs(project, stage, parsed)? {
            plan.push(project, stage.outs[k].abs(), entry.hash, entry.manifest);
        }
        if let Some(lock) = crate::lockfile::read_memo(&project.lock_file(&stage.name), parsed)? {
            deps.extend(lock.deps);
        }
    }
    let rest = named(project, stages, tracked, cwd, &others, parsed)?;
    plan.targets.extend(rest.targets);
    plan.skipped.extend(rest.skipped);
    plan.dedup();
    Ok((plan, deps))
}

/// What [`restore_missing_tracked`] did.
#[derive(Debug)]
pub(crate) struct Restored {
    pub skipped: Vec<Skipped>,
    pub outcome: RestoreOutcome,
}

/// For `repro --checkout-missing`: restores every tracked file (and every file of a tracked
/// directory) that is missing from the workspace, never touching an existing file.
pub(crate) fn restore_missing_tracked(
    project: &Project,
    tracked: &[Tracked],
    cache: &Cache,
    modes: &[CheckoutMode],
    memo: &dyn DigestMemo,
) -> Restored {
    let plan = tracked_data(project, tracked);
    let outcome = Materialiser {
        root: &project.root,
        cache,
        modes,
        memo,
    }
    .restore(&plan.targets, Policy::OnlyMissing);
    Restored {
        skipped: plan.skipped,
        outcome,
    }
}

impl Plan {
    fn push_tracked(&mut self, project: &Project, t: &Tracked) {
        self.push(
            project,
            &t.data,
            t.file.hash.clone(),
            t.file.manifest.clone(),
        );
    }

    /// Content for `abs`, skipped when `abs` is not a path below the project root.
    fn push(
        &mut self,
        project: &Project,
        abs: &Path,
        hash: crate::digest::Digest,
        manifest: Option<Vec<crate::digest::ManifestEntry>>,
    ) {
        match project.repo_path(abs) {
            Ok(dest) => self.targets.push(RestoreTarget {
                dest,
                hash,
                manifest,
            }),
            Err(error) => self.skipped.push(Skipped::Unwritable {
                path: abs.to_owned(),
                error,
            }),
        }
    }

    /// The first target of each destination.
    fn dedup(&mut self) {
        let mut seen = HashSet::new();
        self.targets.retain(|t| seen.insert(t.dest.clone()));
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::cache::CheckoutMode;
    use crate::digest::NoMemo;
    use crate::references::tests::{d, file, fixture, rp, shard_files, Fixture};
    use crate::tracked::PvtFile;

    /// Tracks `data/raw.csv` (content `a,b`) in the fixture's project and returns what
    /// discovery finds.
    fn with_tracked(f: &Fixture) -> Vec<Tracked> {
        let root = &f.project.root;
        fs::create_dir_all(root.join("data")).unwrap();
        fs::write(root.join("data/raw.csv"), "a,b").unwrap();
        let pvt = PvtFile::file(rp("raw.csv"), d("a,b"), 3);
        crate::tracked::write(
            &root.join("data/raw.csv.pvt"),
            &pvt,
            &crate::lockfile::NoParsedMemo,
        )
        .unwrap();
        let found = crate::tracked::discover(root, &crate::lockfile::NoParsedMemo);
        assert!(found.invalid.is_empty());
        found.tracked
    }

    fn dests(plan: &Plan) -> Vec<&str> {
        plan.targets.iter().map(|t| t.dest.as_str()).collect()
    }

    #[test]
    fn everything_is_tracked_data_then_each_cached_output_a_lock_records() {
        let f = fixture();
        let tracked = with_tracked(&f);
        let plan = everything(
            &f.project,
            &f.stages,
            &tracked,
            &crate::lockfile::NoParsedMemo,
        );
        assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
        // The metric is not cached; `idle` has not run.
        assert_eq!(
            dests(&plan),
            ["data/raw.csv", "data/clean.txt", "out/shards"]
        );
        assert_eq!(plan.targets[1].hash, d("1,2,3"));
        assert_eq!(
            plan.targets[2].manifest.as_deref(),
            Some(&shard_files()[..])
        );
    }

    #[test]
    fn an_unreadable_lock_skips_its_stage_only() {
        let f = fixture();
        fs::write(f.project.lock_file("prep"), "outs: [\n").unwrap();
        let plan = everything(&f.project, &f.stages, &[], &crate::lockfile::NoParsedMemo);
        assert_eq!(dests(&plan), ["out/shards"]);
        assert!(
            matches!(
                plan.skipped.as_slice(),
                [Skipped::Lock(LockError::Corrupt { .. })]
            ),
            "{:?}",
            plan.skipped
        );
    }

    #[test]
    fn names_resolve_to_tracked_data_or_cached_outputs_relative_to_cwd() {
        let f = fixture();
        let tracked = with_tracked(&f);
        let root = &f.project.root;
        let names: Vec<String> = ["raw.csv.pvt", "clean.txt", "../out/shards", "raw.csv"]
            .map(String::from)
            .to_vec();
        let plan = named(
            &f.project,
            &f.stages,
            &tracked,
            &root.join("data"),
            &names,
            &crate::lockfile::NoParsedMemo,
        )
        .unwrap();
        // `raw.csv` and its `.pvt` are one target.
        assert_eq!(
            dests(&plan),
            ["data/raw.csv", "data/clean.txt", "out/shards"]
        );
    }

    #[test]
    fn a_name_that_cannot_be_restored_says_why() {
        let f = fixture();
        let root = &f.project.root;
        let resolve = |name: &str| {
            named(
                &f.project,
                &f.stages,
                &[],
                root,
                &[name.to_owned()],
                &crate::lockfile::NoParsedMemo,
            )
            .unwrap_err()
        };
        assert!(matches!(
            resolve("metrics/n.json"),
            TargetError::NotCached { path, stage } if path == "metrics/n.json" && stage == "prep"
        ));
        assert!(matches!(
            resolve("never.txt"),
            TargetError::NotRun { path, stage } if path == "never.txt" && stage == "idle"
        ));
        assert!(matches!(
            resolve("data/nope.txt"),
            TargetError::Unknown { name } if name == "data/nope.txt"
        ));
        fs::write(f.project.lock_file("shards"), "outs: [\n").unwrap();
        assert!(matches!(
            resolve("out/shards"),
            TargetError::Lock(LockError::Corrupt { .. })
        ));
    }

    #[test]
    fn missing_tracked_data_is_restored_and_existing_data_left_alone() {
        let f = fixture();
        let root = &f.project.root;
        let cache = Cache::new(f.project.cache_dir());
        fs::create_dir_all(root.join("data")).unwrap();
        let track = |rel: &str, content: &str, store: bool| {
            let data = root.join(rel);
            fs::write(&data, content).unwrap();
            if store {
                cache.store_copy(&data, &d(content), &NoMemo).unwrap();
            }
            let name = rp(data.file_name().unwrap().to_str().unwrap());
            let pvt = PvtFile::file(name, d(content), content.len() as u64);
            crate::tracked::write(
                &crate::tracked::pvt_path(&data),
                &pvt,
                &crate::lockfile::NoParsedMemo,
            )
            .unwrap();
        };
        track("data/gone.csv", "gone", true);
        track("data/edited.csv", "before", true);
        track("data/uncached.csv", "nowhere", false);
        let files = vec![file("x.png", "x")];
        fs::create_dir_all(root.join("imgs")).unwrap();
        fs::write(root.join("imgs/x.png"), "x").unwrap();
        cache
            .store_copy(&root.join("imgs/x.png"), &d("x"), &NoMemo)
            .unwrap();
        let tree = crate::digest::manifest_digest(&files);
        crate::tracked::write(
            &root.join("imgs.pvt"),
            &PvtFile::dir(rp("imgs"), tree, files),
            &crate::lockfile::NoParsedMemo,
        )
        .unwrap();
        fs::remove_file(root.join("data/gone.csv")).unwrap();
        fs::remove_file(root.join("data/uncached.csv")).unwrap();
        fs::write(root.join("data/edited.csv"), "after").unwrap();
        fs::remove_dir_all(root.join("imgs")).unwrap();
        let tracked = crate::tracked::discover(root, &crate::lockfile::NoParsedMemo).tracked;
        assert_eq!(tracked.len(), 4);

        let r =
            restore_missing_tracked(&f.project, &tracked, &cache, &[CheckoutMode::Copy], &NoMemo);
        assert!(r.skipped.is_empty());
        assert_eq!(r.outcome.restored, 2, "{:?}", r.outcome);
        assert_eq!(r.outcome.missing, ["data/uncached.csv"]);
        assert_eq!(
            fs::read_to_string(root.join("data/gone.csv")).unwrap(),
            "gone"
        );
        assert_eq!(fs::read_to_string(root.join("imgs/x.png")).unwrap(), "x");
        assert_eq!(
            fs::read_to_string(root.join("data/edited.csv")).unwrap(),
            "after"
        );
    }
}
