//! `pivot history` and `pivot show`: every run is recorded; history lists runs newest first, show
//! details one (the latest by default); both read the state read-only and need no pipeline import.

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
    _ran('prep')
    print('prepping')
    return raw.strip()


def train(clean: Annotated[str, outputs.Dep('data/clean.txt', loaders.Text())]
          ) -> Annotated[str, outputs.Out('model.txt', loaders.Text())]:
    _ran('train')
    return clean[::-1]


pipeline = Pipeline('history')
pipeline.register(prep)
pipeline.register(train)
"
        ),
    );
    p
}

/// A project after two `pivot repro` runs: the first runs both stages, the second skips both.
fn project_with_two_runs() -> Project {
    let p = project();
    p.pivot(&["repro"]).success();
    p.pivot(&["repro"]).success();
    p
}

const HEADER: &str = "Run ID                      Ran  Skipped  Failed  Duration";

fn is_run_id(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 24
        && b[8] == b'_'
        && b[15] == b'_'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
        && s[16..]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// The rows of `pivot history`: (run id, ran, skipped, failed, duration).
fn rows(stdout: &str) -> Vec<(String, u32, u32, u32, String)> {
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some(HEADER), "{stdout}");
    assert_eq!(lines.next(), Some("-".repeat(60).as_str()), "{stdout}");
    lines
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 5, "{l}");
            assert!(is_run_id(f[0]), "{l}");
            assert_eq!(l.len(), 58, "columns keep their width: {l:?}");
            let n = |s: &str| s.parse::<u32>().unwrap();
            (f[0].to_owned(), n(f[1]), n(f[2]), n(f[3]), f[4].to_owned())
        })
        .collect()
}

#[test]
fn history_before_any_run_says_none_are_recorded() {
    let p = project();
    let r = p.pivot(&["history"]);
    r.success();
    assert_eq!(r.stdout, "No runs recorded\n");
    let r = p.pivot(&["history", "--json"]);
    r.success();
    assert_eq!(
        r.json(),
        serde_json::json!({"schema_version": 1, "runs": []})
    );
    let r = p.pivot(&["show"]);
    r.success();
    assert_eq!(r.stdout, "No runs recorded\n");
}

#[test]
fn history_lists_runs_newest_first_with_their_counts() {
    let p = project_with_two_runs();
    let r = p.pivot(&["history"]);
    r.success();
    let table = rows(&r.stdout);
    assert_eq!(table.len(), 2, "{}", r.stdout);
    let (newest, oldest) = (&table[0], &table[1]);
    assert_eq!((newest.1, newest.2, newest.3), (0, 2, 0), "{}", r.stdout);
    assert_eq!((oldest.1, oldest.2, oldest.3), (2, 0, 0), "{}", r.stdout);
    for (.., dur) in &table {
        assert!(
            dur.ends_with("ms") || dur.ends_with('s'),
            "duration `{dur}`"
        );
    }

    let r = p.pivot(&["history", "-n", "1"]);
    r.success();
    assert_eq!(rows(&r.stdout), vec![newest.clone()]);
}

#[test]
fn history_json_holds_the_full_run_records() {
    let p = project_with_two_runs();
    let r = p.pivot(&["history", "--json"]);
    r.success();
    let doc = r.json();
    assert_eq!(doc["schema_version"], 1);
    let runs = doc["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    let (newest, oldest) = (&runs[0], &runs[1]);
    for run in runs {
        assert!(is_run_id(run["run_id"].as_str().unwrap()), "{run}");
        for at in ["started_at", "ended_at"] {
            let t = run[at].as_str().unwrap();
            assert!(t.ends_with("+00:00") && t.contains('T'), "{at}: {t}");
        }
        assert_eq!(run["execution_order"], serde_json::json!(["prep", "train"]));
        assert_eq!(run["targeted_stages"], serde_json::json!(["prep", "train"]));
        for stage in ["prep", "train"] {
            let s = &run["stages"][stage];
            assert!(s["duration_ms"].is_u64(), "{s}");
            assert!(s["reason"].is_string(), "{s}");
            assert!(
                s["input_hash"].is_string() || s["input_hash"].is_null(),
                "{s}"
            );
        }
    }
    assert!(newest["started_at"].as_str() > oldest["started_at"].as_str());
    assert_eq!(oldest["stages"]["prep"]["status"], "ran");
    assert_eq!(oldest["stages"]["prep"]["reason"], "No previous run");
    assert_eq!(oldest["stages"]["train"]["status"], "ran");
    assert_eq!(newest["stages"]["prep"]["status"], "skipped");
    assert_eq!(newest["stages"]["train"]["status"], "skipped");
    // A stage that ran has the input hash it ran with; the same inputs give the same hash.
    let hash = &oldest["stages"]["prep"]["input_hash"];
    assert!(hash.is_string(), "{oldest}");
    if newest["stages"]["prep"]["input_hash"].is_string() {
        assert_eq!(&newest["stages"]["prep"]["input_hash"], hash);
    }
}

#[test]
fn show_details_the_latest_run_or_the_one_named() {
    let p = project_with_two_runs();
    let doc = p.pivot(&["history", "--json"]).json();
    let newest = doc["runs"][0]["run_id"].as_str().unwrap().to_owned();
    let oldest = doc["runs"][1]["run_id"].as_str().unwrap().to_owned();

    let r = p.pivot(&["show"]);
    r.success();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], format!("Run:      {newest}"), "{}", r.stdout);
    assert!(lines[1].starts_with("Started:  "), "{}", r.stdout);
    assert!(lines[2].starts_with("Ended:    "), "{}", r.stdout);
    assert_eq!(lines[3], "Targets:  prep, train");
    assert_eq!(lines[4], "");
    assert_eq!(lines[5], "Stages:");
    assert!(lines[6].starts_with("  • prep   skipped "), "{}", r.stdout);
    assert!(lines[6].contains("  unchanged"), "{}", r.stdout);
    assert!(lines[7].starts_with("  • train  skipped "), "{}", r.stdout);
    assert_eq!(lines.len(), 8, "{}", r.stdout);

    let r = p.pivot(&["show", &oldest]);
    r.success();
    assert!(
        r.stdout.starts_with(&format!("Run:      {oldest}\n")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\n  ✓ prep   ran "), "{}", r.stdout);
    assert!(r.stdout.contains("  No previous run\n"), "{}", r.stdout);

    let r = p.pivot(&["show", &oldest, "--json"]);
    r.success();
    let shown = r.json();
    assert_eq!(shown["schema_version"], 1);
    assert_eq!(shown["run"], doc["runs"][1]);
}

#[test]
fn show_of_an_unknown_run_fails_with_a_hint() {
    let p = project_with_two_runs();
    let doc = p.pivot(&["history", "--json"]).json();
    let newest = doc["runs"][0]["run_id"].as_str().unwrap().to_owned();

    let r = p.pivot(&["show", "nope"]);
    r.code(2);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "error: unknown run `nope`\nhint: `pivot history` lists the recorded runs\n"
    );

    // One character off: a typo of a recorded id.
    let typo = format!("{}x", &newest[..23]);
    let r = p.pivot(&["show", &typo]);
    r.code(2);
    assert_eq!(
        r.stderr,
        format!(
            "error: unknown run `{typo}`\nhint: did you mean `{newest}`? `pivot history` lists the recorded runs\n"
        )
    );
}

#[test]
fn history_and_show_work_from_a_subdirectory_without_importing_the_pipeline() {
    let p = project_with_two_runs();
    // A pipeline that no longer imports must not stop anyone reading the history.
    p.write("pipeline.py", "raise RuntimeError('broken')\n");
    std::fs::create_dir_all(p.path("sub/dir")).unwrap();
    let mut cmd = p.command(&["history"]);
    cmd.current_dir(p.path("sub/dir"));
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(rows(&String::from_utf8_lossy(&out.stdout)).len(), 2);
    let r = p.pivot(&["show"]);
    r.success();
}

#[test]
fn history_keeps_only_the_configured_number_of_runs() {
    let p = project();
    p.write(".pivot/config.yaml", "core:\n  run_history_retention: 2\n");
    for _ in 0..3 {
        p.pivot(&["repro"]).success();
    }
    let r = p.pivot(&["history"]);
    r.success();
    let rows = rows(&r.stdout);
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    // The first run (the one that ran both stages) was pruned.
    assert!(rows.iter().all(|r| r.1 == 0), "{:?}", rows);
}

#[test]
fn the_configured_retention_is_read_by_yaml_1_1_rules() {
    let p = project();
    // A leading zero makes a YAML 1.1 octal integer, as PyYAML and the lock reader read it; YAML
    // 1.2 would read the string `02`.
    p.write(".pivot/config.yaml", "core:\n  run_history_retention: 02\n");
    for _ in 0..3 {
        p.pivot(&["repro"]).success();
    }
    let r = p.pivot(&["history"]);
    r.success();
    assert_eq!(rows(&r.stdout).len(), 2, "{}", r.stdout);
}

#[test]
fn a_failed_run_is_recorded_with_failed_and_blocked_stages() {
    let p = project();
    p.write(
        "pipeline.py",
        &p.read("pipeline.py")
            .replace("return raw.strip()", "raise ValueError('boom')"),
    );
    p.pivot(&["repro"]).code(1);
    let r = p.pivot(&["history"]);
    r.success();
    let rows = rows(&r.stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].1, rows[0].2, rows[0].3), (0, 0, 1));
    let r = p.pivot(&["show"]);
    r.success();
    assert!(r.stdout.contains("\n  ✗ prep   failed "), "{}", r.stdout);
    assert!(r.stdout.contains("\n  - train  blocked "), "{}", r.stdout);
    assert!(r.stdout.contains("upstream 'prep' failed"), "{}", r.stdout);
}

/// A stage printing one 100 MB line (a `\r` progress bar that never prints a newline): its run
/// record keeps the line's head and tail within the per-line cap, and says how much was dropped.
#[test]
fn a_100_mb_line_is_stored_capped_with_a_notice_of_what_was_dropped() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import sys


def progress() -> Annotated[str, outputs.Out('done.txt', loaders.Text())]:
    chunk = '\\r' + '#' * (1024 * 1024 - 1)
    sys.stdout.write('START')
    for _ in range(100):
        sys.stdout.write(chunk)
    sys.stdout.write('END')
    return 'ok'


pipeline = Pipeline('progress')
pipeline.register(progress)
"
        ),
    );
    // Quiet: the console would get all 100 MB (live streaming is not capped).
    p.pivot(&["-q", "repro"]).success();
    let r = p.pivot(&["show", "--json"]);
    r.success();
    assert!(r.stdout.len() < 16 * 1024, "{} bytes", r.stdout.len());
    let output = r.json()["run"]["stages"]["progress"]["output"].clone();
    let lines = output.as_array().expect("the output is recorded");
    assert_eq!(lines.len(), 1, "one line, however it arrived");
    let line = lines[0].as_str().unwrap();
    assert!(line.len() <= 4 * 1024, "{} bytes", line.len());
    let printed = 5 + 100 * 1024 * 1024 + 3;
    let (head, rest) = line.split_once("[… ").expect("a notice");
    let (count, tail) = rest.split_once(" bytes dropped …]").expect("a notice");
    assert!(head.starts_with("START\r###") && head.bytes().skip(6).all(|b| b == b'#'));
    assert!(tail.ends_with("###END") && tail.bytes().all(|b| b == b'#' || b"END".contains(&b)));
    assert!(head.len() > 1000 && tail.len() > 1000, "{head:?} {tail:?}");
    let dropped: usize = count.parse().unwrap();
    assert_eq!(dropped, printed - head.len() - tail.len());
}
