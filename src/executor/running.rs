//! SPEC.md 4.8's execution sentinel `.pivot/stages/<stage>.running`: the coordinator's PID as
//! text, written (atomically) before a stage with an IncrementalOut starts and removed once its
//! lock is written, or once it failed and its outputs were discarded. A marker found later whose
//! PID is not a live pivot is what a crash (`kill -9`, power loss) left: the IncrementalOut on
//! disk is a half-done value no lock records, and the next run starts the stage again from its
//! committed value.

use std::io;
use std::path::{Path, PathBuf};

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
    read_for(path, Program::this().as_ref())
}

/// What identifies a running pivot: its executable, and under the release launcher the core it
/// was started with (there `/proc/PID/exe` is the loader, `ld.so --preload ... CORE`, which
/// another program could also be started by).
#[derive(Debug)]
struct Program {
    exe: PathBuf,
    core: Option<PathBuf>,
}

impl Program {
    fn this() -> Option<Program> {
        Some(Program {
            exe: std::env::current_exe().ok()?,
            core: crate::launch::get().map(|l| l.core.clone()),
        })
    }

    /// Whether process `proc` (its `/proc/PID` directory) runs this program; unreadable (another
    /// user's process) counts as a pivot, as SPEC 4.8 does.
    fn runs_in(&self, proc: &Path) -> bool {
        match std::fs::read_link(proc.join("exe")) {
            Err(_) => return true,
            Ok(theirs) if theirs != self.exe => return false,
            Ok(_) => {}
        }
        let Some(core) = &self.core else {
            return true;
        };
        let Ok(args) = std::fs::read(proc.join("cmdline")) else {
            return true;
        };
        // An empty cmdline (a process in the middle of its exec) tells nothing: a pivot.
        let core = core.as_os_str().as_encoded_bytes();
        args.is_empty() || args.split(|b| *b == 0).any(|arg| arg == core)
    }
}

/// [`read`], for pivot's program `program` (unknown: any live process counts as a pivot).
fn read_for(path: &Path, program: Option<&Program>) -> io::Result<Marker> {
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
fn is_other_pivot(pid: u32, program: Option<&Program>) -> bool {
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
    program.is_none_or(|ours| ours.runs_in(&proc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt as _;

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
    fn under_the_loader_a_pivot_is_a_process_started_with_the_same_core() {
        // `sh -c 'sleep 30; :' /opt/pivot-core-3.13` stands for `ld.so ... /opt/pivot-core-3.13`:
        // the same executable, the core among its arguments (`; :` keeps the shell from
        // exec'ing `sleep` in its place, which would change both).
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30; :", "/opt/pivot-core-3.13"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        // The kernel shows the new cmdline a moment after `spawn` returns (mid-exec it is empty).
        let cmdline = format!("/proc/{pid}/cmdline");
        while std::fs::read(&cmdline).is_ok_and(|c| c.is_empty()) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.running");
        std::fs::write(&path, pid.to_string()).unwrap();
        let with = |core: &str| Program {
            exe: exe.clone(),
            core: Some(core.into()),
        };
        let same = read_for(&path, Some(&with("/opt/pivot-core-3.13"))).unwrap();
        let other = read_for(&path, Some(&with("/opt/pivot-core-3.12"))).unwrap();
        // The whole group: the shell's `sleep` too.
        std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status()
            .unwrap();
        child.wait().unwrap();
        assert_eq!(same, Marker::Live(pid));
        assert_eq!(other, leftover(Some(pid)));
    }

    #[test]
    fn a_live_process_of_the_same_program_is_another_pivot() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let program = Program {
            exe: std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
            core: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.running");
        std::fs::write(&path, pid.to_string()).unwrap();
        let as_sleep = read_for(&path, Some(&program)).unwrap();
        let other = Program {
            exe: "/no/such/pivot".into(),
            core: None,
        };
        let as_other = read_for(&path, Some(&other)).unwrap();
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
