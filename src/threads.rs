//! The process's threads by name: remote transfers run on threads named
//! [`TRANSFER_THREAD_PREFIX`], and none may be alive when pivot forks a stage (a forked child
//! would inherit a runtime's locks with no thread to release them).

/// The name (as `/proc/self/task/*/comm` shows it) of every thread a transfer runtime starts.
pub(crate) const TRANSFER_THREAD_PREFIX: &str = "pivot-transfer";

/// How many of this process's threads have a name starting with `prefix`.
pub(crate) fn named(prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|comm| comm.trim_end().starts_with(prefix))
        })
        .count()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_named_thread_is_counted_while_it_lives() {
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::Builder::new()
            .name("pivot-thrtest".into())
            .spawn(move || {
                // The name is set before the closure runs: counting after this is no race.
                started_tx.send(()).ok();
                rx.recv().ok()
            })
            .unwrap();
        started_rx.recv().unwrap();
        assert_eq!(super::named("pivot-thrtest"), 1);
        drop(tx);
        t.join().unwrap();
        assert_eq!(super::named("pivot-thrtest"), 0);
    }

    #[test]
    fn a_remote_operation_leaves_no_transfer_thread_behind() {
        let dir = tempfile::tempdir().unwrap();
        let selected = crate::settings::remotes::SelectedRemote {
            name: "d".into(),
            url: dir.path().display().to_string(),
            options: Default::default(),
        };
        let remote = crate::remote::Remote::open(&selected, dir.path()).unwrap();
        let d = crate::digest::Digest::of_bytes(b"x");
        assert!(remote.exists(&[d], 4).unwrap().is_empty());
        assert_eq!(super::named(super::TRANSFER_THREAD_PREFIX), 0);
    }
}
