//! A full filesystem: read-only commands still answer, writers stop with a clear error, and an
//! I/O error keeps its cause (`No space left on device`). The project lives on a small tmpfs
//! the test mounts (tests run as root); where mounting is refused the test fails, it does not
//! skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Project, PRELUDE};

/// Unmounts on drop (declare it after the project, so it is dropped first).
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn on_tmpfs(size_mb: u32) -> (Project, Mounted) {
    let mut at = None;
    let p = Project::nested_with(|root| {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(root)
            .status()
            .expect("run mount");
        assert!(ok.success(), "cannot mount a tmpfs (the test needs root)");
        at = Some(root.to_path_buf());
    });
    (p, Mounted(at.expect("mounted")))
}

fn free_kib(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-k", "--output=avail"])
        .arg(path)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("df avail")
}

/// Fills the filesystem of `p` until `leave_kib` KiB are free.
fn fill(p: &Project, leave_kib: u64) {
    let free = free_kib(p.root());
    let n = free.saturating_sub(leave_kib);
    let ok = Command::new("dd")
        .args(["if=/dev/zero", "bs=1k", &format!("count={n}")])
        .arg(format!("of={}", p.path("filler").display()))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("dd");
    assert!(ok.success(), "dd failed");
}

const PIPELINE: &str = "
def big(raw: Annotated[str, outputs.Dep('raw.txt', loaders.Text())]
        ) -> Annotated[str, outputs.Out('big.txt', loaders.Text())]:
    _ran('big')
    return raw * (2 * 1024 * 1024 // len(raw))


pipeline = Pipeline('full')
pipeline.register(big)
";

#[test]
fn on_a_full_disk_status_and_verify_answer_and_repro_says_why_it_stops() {
    let (p, _mounted) = on_tmpfs(16);
    p.write("raw.txt", "0123456789abcdef\n");
    p.write("pipeline.py", &format!("{PRELUDE}\n{PIPELINE}"));
    p.pivot(&["repro"]).success();
    p.write("raw.txt", "fedcba9876543210\n");
    fill(&p, 0);
    let status = p.pivot(&["status"]);
    status.success();
    assert!(status.stdout.contains("stale"), "{}", status.stdout);
    let verify = p.pivot(&["verify"]);
    verify.code(1);
    assert!(
        verify.stdout.contains("Input dependencies changed"),
        "{}",
        verify.stdout
    );
    let repro = p.pivot(&["repro"]);
    repro.code(2);
    assert!(repro.stderr.contains("no space left"), "{}", repro.stderr);
    // Nothing was recorded: the lock still holds the old run.
    assert!(p.exists(".pivot/stages/big.lock"));
}

#[test]
fn a_copy_into_the_cache_that_runs_out_of_space_keeps_the_cause() {
    let (p, _mounted) = on_tmpfs(16);
    p.write("raw.txt", "0123456789abcdef\n");
    p.write("pipeline.py", &format!("{PRELUDE}\n{PIPELINE}"));
    // Copies: caching the 2 MiB output needs another 2 MiB.
    p.write(".pivot/config.yaml", "cache:\n  checkout_mode: copy\n");
    // The state exists (and has its log) before the disk fills.
    p.pivot(&["status"]).success();
    fill(&p, 3 * 1024);
    let r = p.pivot(&["repro"]);
    r.code(1);
    assert!(
        r.stderr.contains("cannot cache output `big.txt`")
            && r.stderr.contains("No space left on device"),
        "{}",
        r.stderr
    );
    assert!(!p.exists(".pivot/stages/big.lock"));
}
