//! `pivot gc`: deletes the local cache's blobs that nothing in scope refers to. What is kept is
//! [`crate::gc::roots`]' decision; this file adds the refusals (a shared cache, an unreadable
//! root source), the order of the writes and the report.
//!
//! Order: run-cache entries that need a doomed blob leave the state first, then the blobs go. A
//! kill between the two leaves blobs a later gc deletes, never an entry promising a restore the
//! cache cannot make.

use std::path::Path;

use serde::Serialize;

use super::{Globals, Session};
use crate::cache::Cache;
use crate::cli::GcArgs;
use crate::error::{hinted, with_causes, ExitStatus};
use crate::gc::{self, Blob, Scope, Sources};

/// The `--json` document (and what the text is rendered from).
#[derive(Serialize)]
struct Doc<'a> {
    removed: &'a [Blob],
    count: usize,
    bytes: u64,
    dry_run: bool,
    /// Run-cache entries removed (that would be) because a blob they restore is deleted.
    run_cache_entries: usize,
    /// Pivot temp files over an hour old removed (that would be).
    temp_files: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote: Option<RemoteDoc>,
}

/// What `--remote` removed (or would).
#[derive(Serialize)]
struct RemoteDoc {
    name: String,
    removed: Vec<Blob>,
    count: usize,
    bytes: u64,
    run_cache_entries: usize,
}

pub(super) fn run(globals: &Globals, args: GcArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let cache = Cache::new(s.project.cache_dir());
    if !args.shared_cache_ok && !is_within(cache.root(), &s.project.root) {
        return Err(hinted(
            format!(
                "the cache `{}` is outside the project, so other projects may share it: gc \
                 would delete the blobs only they refer to",
                cache.root().display()
            ),
            "run `pivot gc --shared-cache-ok` if no other project uses this cache",
        ));
    }
    let settings = super::load_settings(&s.project, s.printer)?;
    let remote = match &args.remote {
        Some(name) => {
            if !args.all_commits {
                return Err(hinted(
                    "`gc --remote` needs `--all-commits`: the remote is shared, and what older \
                     commits or other branches refer to must stay on it",
                    format!("run `pivot gc --all-commits --remote {name}`"),
                ));
            }
            let remote = super::open_remote(&s.project, &settings, Some(name))?;
            remote.require_writable("garbage-collected")?;
            Some(remote)
        }
        None => None,
    };
    // Lock and `.pvt` files are read under the project lock: a repro committing meanwhile
    // would otherwise add a blob that no root read before names.
    let _lock = s.lock_project(false, settings.lock_timeout)?;
    let state = super::open_state_locked(&s.project, s.printer)?;
    let scope = Scope {
        all_commits: args.all_commits,
        run_cache: !args.no_run_cache,
    };
    let sources = Sources {
        project: &s.project,
        stages: &s.dag.stages,
        state: Some(&state),
    };
    let roots = match gc::roots(&sources, &scope) {
        Ok(roots) => roots,
        Err(e) if e.is_not_a_repository() => {
            return Err(hinted(
                with_causes(&e),
                "`--all-commits` reads the git history; without git, run `pivot gc --workspace`",
            ));
        }
        Err(e) => {
            // Exit 1, like a failed check: the cache is as it was, and the cause is the
            // project's data, not pivot failing to work.
            s.printer.result(format!(
                "error: {}; nothing was deleted: without it, gc cannot tell which blobs are \
                 still needed",
                with_causes(&e)
            ));
            if let Some(hint) = e.hint() {
                s.printer.result(format!("hint: {hint}"));
            }
            return Ok(ExitStatus::Failure);
        }
    };
    for w in &roots.warnings {
        s.printer.warn(w);
    }
    let doomed = gc::unreferenced(&cache, &roots.digests)?;
    let entries = gc::run_cache_entries_needing(&state, &doomed)?;
    let run_cache_entries = entries.len();
    if !args.dry_run && !entries.is_empty() {
        for e in &entries {
            s.printer.detail(format!(
                "removing the run-cache entry `{}` of stage `{}`",
                e.input_hash, e.stage
            ));
        }
        gc::forget_run_cache_entries(&state, entries)?;
        state.flush()?;
    }
    let report = gc::sweep(&cache, doomed, args.dry_run);
    let remote_doc = match &remote {
        None => None,
        Some(remote) => match gc_remote(&s, &state, remote, &roots.digests, &args)? {
            Ok(doc) => Some(doc),
            Err(status) => return Ok(status),
        },
    };
    let doc = Doc {
        removed: &report.removed,
        count: report.removed.len(),
        bytes: report.bytes(),
        dry_run: args.dry_run,
        run_cache_entries,
        temp_files: report.temp_files,
        remote: remote_doc,
    };
    if args.json {
        s.printer.json(&doc)?;
    } else if args.dry_run {
        let mut lines: String = doc
            .removed
            .iter()
            .map(|b| format!("{} {}\n", b.digest, b.size))
            .collect();
        if let Some(r) = &doc.remote {
            // The remote's, after the cache's: `<remote>: <digest> <size>`.
            for b in &r.removed {
                lines.push_str(&format!("{}: {} {}\n", r.name, b.digest, b.size));
            }
        }
        s.printer.data(lines)?;
    } else {
        for b in doc.removed {
            s.printer
                .detail(format!("removed {} ({} bytes)", b.digest, b.size));
        }
    }
    render(&s, &doc);
    if let Some(r) = &doc.remote {
        let verb = if doc.dry_run {
            "Would remove"
        } else {
            "Removed"
        };
        s.printer.info(format!(
            "{verb} {} file(s) ({}) from remote '{}'{}",
            r.count,
            megabytes(r.bytes),
            r.name,
            match r.run_cache_entries {
                0 => String::new(),
                n => format!(", and {n} of its run-cache entries"),
            }
        ));
    }
    if let Some((path, error)) = report.failed.first() {
        anyhow::bail!(
            "cannot remove `{}` from the cache ({} file(s) could not be removed): {error}",
            path.display(),
            report.failed.len()
        );
    }
    Ok(ExitStatus::Success)
}

/// The remote part of `gc --remote`, after the local one: asks first (unless `-f` or a dry
/// run), then deletes. `Err(status)`: declined, or the remote failed (said on stderr).
fn gc_remote(
    s: &Session,
    state: &crate::state::State,
    remote: &crate::remote::Remote,
    roots: &std::collections::BTreeSet<crate::digest::Digest>,
    args: &GcArgs,
) -> anyhow::Result<Result<RemoteDoc, ExitStatus>> {
    let jobs = remote.jobs(args.jobs);
    // What would go, first: the confirmation names it.
    let planned = match crate::sync::gc_remote(remote, state, roots, true, jobs) {
        Ok(p) => p,
        Err(e) => return super::remote_failed(e, s.printer).map(Err),
    };
    let bytes: u64 = planned.blobs.iter().map(|(_, n)| n).sum();
    if !args.dry_run && !args.force && !planned.blobs.is_empty() {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return Err(hinted(
                format!(
                    "`gc --remote {}` would delete {} file(s) ({}) that everyone using the remote shares; not asking without a terminal",
                    remote.name,
                    planned.blobs.len(),
                    megabytes(bytes)
                ),
                "pass `-f` to delete them, or `-n` to list them",
            ));
        }
        crate::printer::stderr_partial!(
            "Delete {} file(s) ({}) from remote '{}' for everyone who uses it? [y/N] ",
            planned.blobs.len(),
            megabytes(bytes),
            remote.name
        );
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            s.printer.info("Nothing deleted from the remote");
            return Ok(Err(ExitStatus::Failure));
        }
    }
    let done = if args.dry_run {
        planned
    } else {
        match crate::sync::gc_remote(remote, state, roots, false, jobs) {
            Ok(d) => d,
            Err(e) => {
                state.flush().ok();
                return super::remote_failed(e, s.printer).map(Err);
            }
        }
    };
    state.flush()?;
    let removed: Vec<Blob> = done
        .blobs
        .iter()
        .map(|(d, n)| Blob {
            digest: d.clone(),
            size: *n,
        })
        .collect();
    Ok(Ok(RemoteDoc {
        name: remote.name.clone(),
        count: removed.len(),
        bytes: removed.iter().map(|b| b.size).sum(),
        removed,
        run_cache_entries: done.runs.len(),
    }))
}

/// The summary on stderr.
fn render(s: &Session, doc: &Doc) {
    let p = s.printer;
    if doc.count == 0 && doc.run_cache_entries == 0 && doc.temp_files == 0 {
        p.info("Nothing to remove");
        return;
    }
    let size = megabytes(doc.bytes);
    if doc.dry_run {
        p.info(format!("Would remove {} file(s) ({size})", doc.count));
    } else {
        p.info(format!(
            "Removed {} file(s) ({size}) from the cache",
            doc.count
        ));
    }
    let verb = if doc.dry_run {
        "Would remove"
    } else {
        "Removed"
    };
    if doc.run_cache_entries > 0 {
        p.info(format!(
            "{verb} {} run-cache entr{} whose outputs are no longer cached",
            doc.run_cache_entries,
            if doc.run_cache_entries == 1 {
                "y"
            } else {
                "ies"
            }
        ));
    }
    if doc.temp_files > 0 {
        p.info(format!(
            "{verb} {} temp file(s) left by an interrupted write",
            doc.temp_files
        ));
    }
}

/// `12.3 MB`; under 0.05 MB (but not nothing) `<0.1 MB`, never a misleading `0.0 MB`.
fn megabytes(bytes: u64) -> String {
    let mb = bytes as f64 / 1_000_000.0;
    if bytes > 0 && mb < 0.05 {
        "<0.1 MB".to_owned()
    } else {
        format!("{mb:.1} MB")
    }
}

/// Whether `path` is `root` or beneath it, comparing resolved paths where they exist (a
/// symlinked cache directory is where it points).
fn is_within(path: &Path, root: &Path) -> bool {
    let resolve = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    // A cache not created yet: its nearest existing ancestor says where it will be.
    let mut probe = path.to_owned();
    let mut tail = Vec::new();
    while !probe.exists() {
        match (probe.file_name().map(|n| n.to_owned()), probe.parent()) {
            (Some(name), Some(parent)) => {
                tail.push(name);
                probe = parent.to_owned();
            }
            _ => break,
        }
    }
    let mut resolved = resolve(&probe);
    resolved.extend(tail.into_iter().rev());
    resolved.starts_with(resolve(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_megabytes_and_a_small_one_is_not_zero() {
        assert_eq!(megabytes(0), "0.0 MB");
        assert_eq!(megabytes(12), "<0.1 MB");
        assert_eq!(megabytes(49_999), "<0.1 MB");
        assert_eq!(megabytes(50_000), "0.1 MB");
        assert_eq!(megabytes(12_345_678), "12.3 MB");
    }

    #[test]
    fn a_cache_beneath_the_root_is_within_it_even_before_it_exists() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("proj");
        std::fs::create_dir_all(root.join(".pivot")).unwrap();
        assert!(is_within(&root.join(".pivot/cache"), &root));
        assert!(is_within(&root.join(".pivot/../.pivot/cache"), &root));
        assert!(!is_within(&t.path().join("shared"), &root));
        assert!(!is_within(&root.join("../shared"), &root));
    }
}
