//! SPEC.md 4.8's execution sentinel `.pivot/stages/<stage>.running`: the coordinator's PID as
//! text, written (atomically) before a stage with an IncrementalOut starts and removed once its
//! lock is written, or once it failed and its outputs were discarded. A marker found later whose
//! PID is not a live pivot is what a crash (`kill -9`, power loss) left: the IncrementalOut on
//! disk is a half-done value no lock records, and the next run starts the stage again from its
//! committed value.

use std::io;
use std::path::Path;

/// What a stage's marker says before the stage starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Marker {
    /// No marker: the last run of the stage ended cleanly.
    Absent,
    /// Left by a pivot that is gone.
    Leftover(Leftover),
    /// Another live pivot is running the stage.
    Live(u32),
}

/// A marker a crashed pivot left: its PID, when the marker held one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Leftover {
    pub pid: Option<u32>,
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pivot (PID {pid})"),
            None => f.write_str("pivot"),
        }
    }
}

/// Reads the marker at `path`. A PID that is not a live process, is this process (a PID reused
/// after a crash), or is a process of another program counts as a leftover, as does a marker
/// without a PID in it.
pub(super) fn read(path: &Path) -> io::Result<Marker> {
    read_for(path, std::env::current_exe().ok().as_deref())
}

/// [`read`], for pivot's program `program` (unknown: any live process counts as a pivot).
fn read_for(path: &Path, program: Option<&Path>) -> io::Result<Marker> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Marker::Absent),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => return Ok(leftover(None)),
        Err(e) => return Err(e),
    };
    Ok(match text.trim().parse::<u32>() {
        Ok(pid) if is_other_pivot(pid, program) => Marker::Live(pid),
        Ok(pid) => leftover(Some(pid)),
        Err(_) => leftover(None),
    })
}

fn leftover(pid: Option<u32>) -> Marker {
    Marker::Leftover(Leftover { pid })
}

/// Writes this process's PID to `path` (temp file + rename: a reader sees a whole PID or none).
pub(super) fn write(path: &Path) -> io::Result<()> {
    crate::lockfile::write_file_atomic(path, std::process::id().to_string().as_bytes())
}

/// Removes the marker (already gone is fine).
pub(super) fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether `pid` is a live process, other than this one, running the same program as this one
/// (a zombie is dead; a PID reused by another program is not a pivot).
fn is_other_pivot(pid: u32, program: Option<&Path>) -> bool {
    if pid == 0 || pid == std::process::id() {
        return false;
    }
    let proc = Path::new("/proc").join(pid.to_string());
    let alive = std::fs::read_to_string(proc.join("stat")).is_ok_and(|s| {
        !s.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
    });
    if !alive {
        return false;
    }
    // Unreadable (another user's process): assume a pivot, as SPEC 4.8 does.
    match (std::fs::read_link(proc.join("exe")), program) {
        (Ok(theirs), Some(ours)) => theirs == ours,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_is_absent_live_or_a_leftover() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stages/group/train.running");
        assert_eq!(read(&path).unwrap(), Marker::Absent);
        write(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        // This process's own PID: a previous pivot that had the same PID.
        assert_eq!(read(&path).unwrap(), leftover(Some(std::process::id())));
        std::fs::write(&path, "not a pid\n").unwrap();
        assert_eq!(read(&path).unwrap(), leftover(None));
        remove(&path).unwrap();
        remove(&path).unwrap();
        assert_eq!(read(&path).unwrap(), Marker::Absent);
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert!(left.is_empty(), "no temp file is left");
    }

    #[test]
    fn a_dead_pid_is_a_leftover() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.running");
        std::fs::write(&path, pid.to_string()).unwrap();
        assert_eq!(read(&path).unwrap(), leftover(Some(pid)));
    }

    #[test]
    fn a_live_process_of_the_same_program_is_another_pivot() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let program = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.running");
        std::fs::write(&path, pid.to_string()).unwrap();
        let as_sleep = read_for(&path, Some(&program)).unwrap();
        let as_other = read_for(&path, Some(Path::new("/no/such/pivot"))).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(as_sleep, Marker::Live(pid));
        assert_eq!(as_other, leftover(Some(pid)));
        // Once it is gone, the same marker is a leftover.
        assert_eq!(
            read_for(&path, Some(&program)).unwrap(),
            leftover(Some(pid))
        );
    }
}
