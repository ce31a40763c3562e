//! The upstream outputs that restores put back during one run (or, in a dry run, will put back).
//! A downstream stage's deps among them are answered from here: a dry run knows the digests the
//! restore will produce; a run hashes the restored files (they are there), but either way tier 1
//! does not vouch for them.

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::{self, Digest, ManifestEntry};
use crate::project::Project;

use super::Restore;

/// A path's digest and, for a directory, its manifest.
type Content = (Digest, Option<Vec<ManifestEntry>>);

#[derive(Debug, Default)]
pub(crate) struct Written {
    /// Absolute output path, the stage that restores it, and its content when predicted.
    outputs: Vec<(PathBuf, String, Option<Content>)>,
}

/// What `Written` says about one dep.
pub(crate) enum Answer<'a> {
    /// No restore in this run touches it.
    NotWritten,
    /// A restore puts it back with this content (or, `Err(NotFound)`, without it).
    Known(io::Result<Content>),
    /// A restore writes it (or something under it): hash the workspace.
    Workspace,
    /// A dry run cannot tell: it contains a restored output. The restoring stage is named.
    Unknown(&'a str),
}

impl Answer<'_> {
    /// The dep's content when it is known without hashing the workspace. A dep that a dry run
    /// cannot predict is hashed as it is now (the planner reports it upstream-stale first).
    pub(crate) fn known(self) -> Option<io::Result<Content>> {
        match self {
            Answer::Known(c) => Some(c),
            _ => None,
        }
    }
}

impl Written {
    /// A dry run: `stage`'s restores will write these contents.
    pub(crate) fn predict(&mut self, project: &Project, stage: &str, restores: &[Restore]) {
        self.add(project, stage, restores, true);
    }

    /// A run: `stage`'s restores wrote these paths.
    pub(crate) fn restored(&mut self, project: &Project, stage: &str, restores: &[Restore]) {
        self.add(project, stage, restores, false);
    }

    fn add(&mut self, project: &Project, stage: &str, restores: &[Restore], known: bool) {
        for r in restores {
            let content = known.then(|| (r.target.hash.clone(), r.target.manifest.clone()));
            let path = project.root.join(r.target.dest.as_path());
            self.outputs.push((path, stage.to_owned(), content));
        }
    }

    pub(crate) fn answer(&self, dep: &Path) -> Answer<'_> {
        for (out, stage, content) in &self.outputs {
            if let Ok(rest) = dep.strip_prefix(out) {
                let Some((hash, manifest)) = content else {
                    return Answer::Workspace;
                };
                if rest.as_os_str().is_empty() {
                    return Answer::Known(Ok((hash.clone(), manifest.clone())));
                }
                return match manifest {
                    Some(files) => Answer::Known(inside(files, rest)),
                    None => Answer::Known(Err(io::ErrorKind::NotFound.into())),
                };
            }
            if out.starts_with(dep) {
                return match content {
                    Some(_) => Answer::Unknown(stage),
                    None => Answer::Workspace,
                };
            }
        }
        Answer::NotWritten
    }
}

/// The content of `rest` inside a directory with manifest `files`: a file's digest, or a
/// subdirectory's tree digest and manifest.
fn inside(files: &[ManifestEntry], rest: &Path) -> io::Result<Content> {
    let rest = rest.to_string_lossy();
    if let Some(f) = files.iter().find(|f| f.relpath.as_str() == rest) {
        return Ok((f.hash.clone(), None));
    }
    let prefix = format!("{rest}/");
    let sub: Vec<ManifestEntry> = files
        .iter()
        .filter_map(|f| {
            let relpath = f.relpath.as_str().strip_prefix(&prefix)?;
            Some(ManifestEntry {
                relpath: relpath.try_into().ok()?,
                ..f.clone()
            })
        })
        .collect();
    if sub.is_empty() {
        return Err(io::ErrorKind::NotFound.into());
    }
    Ok((digest::manifest_digest(&sub), Some(sub)))
}
