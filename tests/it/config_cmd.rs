//! `pivot config` and `pivot remote`: edits that keep comments, credentials that never reach the
//! tracked file or the console, refusals that leave files untouched, and the global layer.

use std::path::PathBuf;

use crate::support::{test_venv, Project, Run};

const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY";

/// A project whose global config lives in its temp dir (`$XDG_CONFIG_HOME/pivot/config.yaml`).
struct Env {
    p: Project,
}

impl Env {
    fn new() -> Env {
        Env {
            p: Project::nested(),
        }
    }

    fn global_path(&self) -> PathBuf {
        self.p.outer().join("xdg/pivot/config.yaml")
    }

    fn pivot(&self, args: &[&str]) -> Run {
        let home = self.p.outer().join("home");
        let xdg = self.p.outer().join("xdg");
        self.p.pivot_env(
            args,
            &[
                ("HOME", home.to_str().unwrap()),
                ("XDG_CONFIG_HOME", xdg.to_str().unwrap()),
            ],
        )
    }

    fn project_config(&self) -> String {
        self.p.read(".pivot/config.yaml")
    }

    #[track_caller]
    fn no_secret(&self, run: &Run) {
        assert!(
            !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
            "the secret was shown:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

#[test]
fn set_edits_the_project_file_in_place_keeping_comments_and_order() {
    let e = Env::new();
    let original = "\
# Team settings: keep these comments.
core:
  max_workers: 2   # CI has two cores
  # lock_timeout: 10

cache:
  checkout_mode: [copy]
";
    e.p.write(".pivot/config.yaml", original);
    let run = e.pivot(&["config", "set", "core.max_workers", "4"]);
    run.success();
    assert_eq!(run.stderr, "Set core.max_workers = 4 in local config\n");
    e.pivot(&["config", "set", "core.run_history_retention", "50"])
        .success();
    e.pivot(&["config", "set", "remotes.origin", "s3://bucket/prefix"])
        .success();
    assert_eq!(
        e.project_config(),
        "\
# Team settings: keep these comments.
core:
  max_workers: 4   # CI has two cores
  run_history_retention: 50
  # lock_timeout: 10

cache:
  checkout_mode: [copy]
remotes:
  origin: s3://bucket/prefix
"
    );
    let run = e.pivot(&["config", "get", "core.max_workers"]);
    assert_eq!(run.success().stdout, "core.max_workers = 4 (local)\n");
    let run = e.pivot(&["config", "get", "core.max_workers", "--json"]);
    assert_eq!(
        run.success().json(),
        serde_json::json!({"schema_version": 1, "key": "core.max_workers", "value": 4, "source": "local"})
    );

    let run = e.pivot(&["config", "unset", "core.run_history_retention"]);
    assert_eq!(
        run.success().stderr,
        "Removed core.run_history_retention from local config\n"
    );
    let run = e.pivot(&["config", "unset", "core.run_history_retention"]);
    assert_eq!(
        run.success().stderr,
        "Key core.run_history_retention not set in local config\n"
    );
    // The last key of a section takes the section with it.
    e.pivot(&["config", "unset", "remotes.origin"]).success();
    e.pivot(&["config", "set", "core.max_workers", "2"])
        .success();
    assert_eq!(e.project_config(), original);
}

#[test]
fn list_shows_every_file_merged_sorted_with_sources_and_defaults() {
    let e = Env::new();
    e.pivot(&["config", "set", "core.max_workers", "3", "--global"])
        .success();
    e.pivot(&["config", "set", "core.max_workers", "5"])
        .success();
    e.pivot(&["config", "set", "cache.checkout_mode", "copy,symlink"])
        .success();
    e.pivot(&["config", "set", "core.lock_timeout", "2.5", "--private"])
        .success();
    let run = e.pivot(&["config", "list"]);
    assert_eq!(
        run.success().stdout,
        "\
cache.checkout_mode = copy, symlink (local)
core.lock_timeout = 2.5 (private)
core.max_workers = 5 (local)
core.run_history_retention = 100 (default)
"
    );
    let run = e.pivot(&["config", "list", "--global"]);
    assert_eq!(run.success().stdout, "core.max_workers = 3 (global)\n");
    let run = e.pivot(&["config", "list", "--local", "--json"]);
    assert_eq!(
        run.success().json(),
        serde_json::json!({
            "schema_version": 1,
            "config": {
                "cache.checkout_mode": {"value": ["copy", "symlink"], "source": "local"},
                "core.max_workers": {"value": 5, "source": "local"},
            }
        })
    );
    assert_eq!(
        std::fs::read_to_string(e.global_path()).unwrap(),
        "core:\n  max_workers: 3\n"
    );
    let run = e.pivot(&["config", "get", "core.stage_timeout"]);
    assert_eq!(run.success().stdout, "core.stage_timeout = (not set)\n");
    // The value the settings read: the project's config wins over the global one.
    let run = e.pivot(&["config", "get", "core.max_workers", "--global"]);
    assert_eq!(run.success().stdout, "core.max_workers = 3 (global)\n");
}

#[test]
fn credentials_are_refused_in_the_project_file_and_never_shown() {
    let e = Env::new();
    e.p.write(".pivot/config.yaml", "remotes:\n  origin: s3://b\n");
    let key = "remote_options.origin.secret_access_key";
    let run = e.pivot(&["config", "set", key, SECRET]);
    run.code(2);
    e.no_secret(&run);
    assert_eq!(
        run.stderr,
        "error: `remote_options.origin.secret_access_key` holds a credential, and `.pivot/config.yaml` is committed to git: it is refused there\n\
         hint: use `--private` (the git-ignored `.pivot/config.local.yaml`) or `--global`\n"
    );
    assert_eq!(e.project_config(), "remotes:\n  origin: s3://b\n");
    let run = e.pivot(&["remote", "modify", "origin", "secret_access_key", SECRET]);
    run.code(2);
    e.no_secret(&run);

    let run = e.pivot(&["config", "set", key, SECRET, "--private"]);
    run.success();
    e.no_secret(&run);
    assert_eq!(run.stderr, format!("Set {key} = **** in private config\n"));
    let run = e.pivot(&[
        "remote",
        "modify",
        "origin",
        "session_token",
        SECRET,
        "--global",
    ]);
    e.no_secret(run.success());
    assert!(e.p.read(".pivot/config.local.yaml").contains(SECRET));
    assert!(!e.project_config().contains(SECRET));

    for args in [
        &["config", "list"][..],
        &["config", "list", "--json"],
        &["config", "list", "--private"],
        &["config", "list", "--global", "--json"],
        &["config", "get", key],
        &["config", "get", key, "--json"],
        &["config", "get", "remote_options.origin.session_token"],
        &["remote", "list", "--json"],
    ] {
        let run = e.pivot(args);
        run.success();
        e.no_secret(&run);
        assert!(
            run.stdout.contains("****") || args[0] == "remote",
            "{args:?}: {}",
            run.stdout
        );
    }
    let run = e.pivot(&["config", "get", key]);
    assert_eq!(run.stdout, format!("{key} = **** (private)\n"));
    // A value a credential cannot take is refused without repeating it either.
    let run = e.pivot(&["config", "set", "remote.secret_access_key", "", "--private"]);
    run.code(2);
}

#[test]
fn a_password_in_a_remote_url_is_refused_in_the_project_file_and_masked() {
    let e = Env::new();
    let url = format!("https://user:{SECRET}@example.com/cache");
    let run = e.pivot(&["remote", "add", "web", &url]);
    e.no_secret(run.code(2));
    assert!(
        run.stderr.contains("`remotes.web` holds a credential"),
        "{}",
        run.stderr
    );
    assert!(!e.p.exists(".pivot/config.yaml") || !e.project_config().contains("web"));
    e.no_secret(
        e.pivot(&["remote", "add", "web", &url, "--private"])
            .success(),
    );
    for args in [
        &["remote", "list"][..],
        &["remote", "list", "--json"],
        &["config", "list"],
        &["config", "get", "remotes.web", "--json"],
    ] {
        let run = e.pivot(args);
        e.no_secret(run.success());
        assert!(
            run.stdout.contains("https://user:****@example.com/cache"),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn bad_keys_values_and_urls_exit_2_and_leave_the_file_byte_identical() {
    let e = Env::new();
    let original = "# mine\ncore:\n  max_workers: 2 # keep\n";
    e.p.write(".pivot/config.yaml", original);
    let cases: &[(&[&str], &str)] = &[
        (
            &["config", "set", "core.max_worker", "4"],
            "error: unknown config key `core.max_worker`\nhint: did you mean `core.max_workers`?\n",
        ),
        (
            &["config", "set", "core.max_workers", "four"],
            "error: `core.max_workers` must be an integer, not `four`\nhint: `pivot config set --help` lists the keys and what they take\n",
        ),
        (
            &["config", "set", "core.max_workers", "0"],
            "error: `.pivot/config.yaml` (line 3) would be invalid: `core.max_workers` must not be 0\nhint: nothing was changed; `pivot config set --help` lists the keys and what they take\n",
        ),
        (
            &["config", "set", "cache.checkout_mode", "copy,teleport"],
            "",
        ),
        (&["config", "set", "remote.jobs", "0"], ""),
        (&["config", "set", "remote.allow_http", "maybe"], ""),
        (&["config", "set", "remotes.origin", "ftp://host/x"], ""),
        (&["config", "set", "remotes.origin", "s3://"], ""),
        (&["config", "set", "remotes.origin", "gs:///prefix"], ""),
        (&["config", "set", "remotes.bad name", "s3://b"], ""),
        (&["config", "get", "core.nope"], ""),
        (&["config", "unset", "zzz.yyy"], ""),
        (&["remote", "add", "bad.name", "s3://b"], ""),
        (&["remote", "add", "origin", "azure://"], ""),
        (&["remote", "default", "nowhere"], ""),
        (&["remote", "modify", "nowhere", "region", "x"], ""),
        (&["remote", "remove", "nowhere"], ""),
    ];
    for (args, stderr) in cases {
        let run = e.pivot(args);
        run.code(2);
        if !stderr.is_empty() {
            assert_eq!(run.stderr, *stderr, "{args:?}");
        }
        assert!(
            run.stderr.starts_with("error: "),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("\nhint: "), "{args:?}: {}", run.stderr);
        assert_eq!(e.project_config(), original, "{args:?}");
    }
    assert!(!e.p.exists(".pivot/config.local.yaml"));
    let run = e.pivot(&["remote", "add", "origin", "ftp://host/x"]);
    assert_eq!(
        run.code(2).stderr,
        "error: invalid URL for remote `origin`: unknown URL scheme `ftp://`\nhint: a remote URL is one of s3://bucket[/prefix], gs://bucket[/prefix], azure://container[/prefix] (or az://), https://host/path, file:///dir, or a directory (relative to the project root)\n"
    );
}

#[test]
fn values_are_read_as_yaml_1_1_and_strings_yaml_would_misread_are_quoted() {
    let e = Env::new();
    e.pivot(&["config", "set", "core.max_workers", "010"])
        .success();
    e.pivot(&["remote", "add", "origin", "s3://b"]).success();
    e.pivot(&["remote", "modify", "origin", "region", "yes"])
        .success();
    e.pivot(&["remote", "modify", "origin", "profile", "1e3"])
        .success();
    e.pivot(&["remote", "modify", "origin", "allow_http", "on"])
        .success();
    assert_eq!(
        e.project_config(),
        "core:\n  max_workers: 8\nremotes:\n  origin: s3://b\nremote_options:\n  origin:\n    region: 'yes'\n    profile: '1e3'\n    allow_http: true\n"
    );
    let run = e.pivot(&["config", "get", "remote_options.origin.region", "--json"]);
    assert_eq!(run.success().json()["value"], "yes");
    e.pivot(&["remote", "modify", "origin", "--unset", "region"])
        .success();
    assert!(!e.project_config().contains("region"));
}

#[test]
fn remotes_are_added_listed_made_default_and_removed_with_their_options() {
    let e = Env::new();
    let run = e.pivot(&["remote", "list"]);
    assert_eq!(run.success().stdout, "No remotes configured.\n");
    assert!(
        run.stderr
            .starts_with("hint: add one: `pivot remote add NAME URL`"),
        "{}",
        run.stderr
    );

    e.pivot(&["remote", "add", "origin", "s3://bucket/p"])
        .success();
    let run = e.pivot(&["remote", "add", "origin", "s3://other"]);
    assert!(
        run.code(2)
            .stderr
            .contains("remote `origin` already exists"),
        "{}",
        run.stderr
    );
    e.pivot(&["remote", "add", "origin", "s3://other", "--force"])
        .success();
    e.pivot(&["remote", "add", "backup", "/srv/backup", "--default"])
        .success();
    e.pivot(&["remote", "modify", "backup", "jobs", "4"])
        .success();
    e.pivot(&["remote", "modify", "backup", "access_key", "k", "--private"])
        .success();
    let run = e.pivot(&["remote", "list"]);
    assert_eq!(
        run.success().stdout,
        "  backup: /srv/backup (default)\n  origin: s3://other\n"
    );
    let run = e.pivot(&["remote", "default"]);
    assert_eq!(run.success().stdout, "backup\n");
    e.pivot(&["remote", "default", "origin"]).success();
    let run = e.pivot(&["remote", "list", "--json"]);
    assert_eq!(
        run.success().json(),
        serde_json::json!({
            "schema_version": 1,
            "remotes": [
                {"name": "backup", "url": "/srv/backup", "default": false, "source": "local"},
                {"name": "origin", "url": "s3://other", "default": true, "source": "local"},
            ],
            "default": "origin",
        })
    );
    e.pivot(&["remote", "default", "backup"]).success();
    let run = e.pivot(&["remote", "remove", "backup"]);
    assert_eq!(
        run.success().stderr,
        "Removed remote backup from local config\nRemoved remote_options.backup from private config\n"
    );
    assert_eq!(e.project_config(), "remotes:\n  origin: s3://other\n");
    assert_eq!(e.p.read(".pivot/config.local.yaml"), "");
    let run = e.pivot(&["remote", "list"]);
    assert_eq!(run.success().stdout, "  origin: s3://other (default)\n");
}

#[test]
fn a_global_remote_is_listed_and_selected() {
    let e = Env::new();
    e.pivot(&["remote", "add", "team", "gs://team-cache/pivot", "--global"])
        .success();
    assert_eq!(
        std::fs::read_to_string(e.global_path()).unwrap(),
        "remotes:\n  team: gs://team-cache/pivot\n"
    );
    let run = e.pivot(&["remote", "list"]);
    assert_eq!(
        run.success().stdout,
        "  team: gs://team-cache/pivot (default)\n"
    );
    let run = e.pivot(&["remote", "default"]);
    assert_eq!(run.success().stdout, "team\n");
    // A project remote beside it: neither is the default until one is named.
    e.pivot(&["remote", "add", "local", "../store"]).success();
    let run = e.pivot(&["remote", "default"]);
    assert_eq!(run.success().stdout, "No default remote set.\n");
    e.pivot(&["remote", "default", "team"]).success();
    let run = e.pivot(&["remote", "list", "--json"]);
    let doc = run.success().json();
    assert_eq!(doc["default"], "team");
    assert_eq!(doc["remotes"][1]["source"], "global");
    // Removing it from the project file names the file that has it.
    let run = e.pivot(&["remote", "remove", "team"]);
    assert_eq!(
        run.code(2).stderr,
        "error: remote `team` is not in local config\nhint: it is in global config: add `--global`\n"
    );
    // The same name in two files: removing one says the other remains.
    e.pivot(&["remote", "add", "team", "/srv/t", "--private", "--force"])
        .success();
    let run = e.pivot(&["remote", "remove", "team", "--private"]);
    assert_eq!(
        run.success().stderr,
        "Removed remote team from private config\nwarning: remote `team` is still configured in global config (add `--global` to remove it there too)\n"
    );
    e.pivot(&["remote", "remove", "team", "--global"]).success();
    assert!(e.global_path().with_file_name("config.yaml.lock").is_file());
    assert_eq!(std::fs::read_to_string(e.global_path()).unwrap(), "");
}

#[test]
fn global_config_works_outside_a_project() {
    let e = Env::new();
    let outside = e.p.outer().join("elsewhere");
    std::fs::create_dir(&outside).unwrap();
    let home = e.p.outer().join("home");
    let xdg = e.p.outer().join("xdg");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(crate::support::pivot_bin())
            .args(args)
            .current_dir(&outside)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", &xdg)
            .output()
            .unwrap();
        Run::from(out)
    };
    run(&["config", "set", "core.max_workers", "6", "--global"]).success();
    assert_eq!(
        run(&["config", "list"]).success().stdout,
        "cache.checkout_mode = hardlink, symlink, copy (default)\ncore.max_workers = 6 (global)\ncore.run_history_retention = 100 (default)\n"
    );
    let run_local = run(&["config", "set", "core.max_workers", "6"]);
    assert!(
        run_local.code(2).stderr.contains("pivot init"),
        "{}",
        run_local.stderr
    );
}

#[test]
fn a_flow_style_file_is_rewritten_with_a_note() {
    let e = Env::new();
    e.p.write(".pivot/config.yaml", "core: {max_workers: 2}  # flow\n");
    let run = e.pivot(&["config", "set", "core.lock_timeout", "5"]);
    assert!(
        run.success()
            .stderr
            .starts_with("note: `.pivot/config.yaml` was rewritten from its parsed value"),
        "{}",
        run.stderr
    );
    assert_eq!(
        e.project_config(),
        "core:\n  max_workers: 2\n  lock_timeout: 5\n"
    );
}

#[test]
fn concurrent_sets_all_land() {
    let e = Env::new();
    e.p.write(".pivot/config.yaml", "# shared\n");
    let home = e.p.outer().join("home");
    let xdg = e.p.outer().join("xdg");
    let children: Vec<_> = (0..8)
        .map(|i| {
            let name = format!("remotes.r{i}");
            let url = format!("s3://bucket-{i}");
            e.p.spawn(
                &["config", "set", &name, &url],
                &[
                    ("HOME", home.as_os_str()),
                    ("XDG_CONFIG_HOME", xdg.as_os_str()),
                ],
            )
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = e.project_config();
    assert!(text.starts_with("# shared\nremotes:\n"), "{text}");
    for i in 0..8 {
        assert!(
            text.contains(&format!("  r{i}: s3://bucket-{i}\n")),
            "{text}"
        );
    }
    let names: Vec<String> = std::fs::read_dir(e.p.path(".pivot"))
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".pivot-tmp-"))
        .collect();
    assert!(names.is_empty(), "temp files left: {names:?}");
}

#[test]
fn writing_the_private_file_makes_sure_git_ignores_it() {
    let e = Env::new();
    // A project made by an older pivot.
    e.p.write(".pivot/.gitignore", "/cache\n");
    e.pivot(&["config", "set", "remote.access_key_id", "AKIA", "--private"])
        .success();
    assert_eq!(
        e.p.read(".pivot/.gitignore"),
        "/cache\n/config.lock\n/config.local.yaml\n"
    );
}

#[test]
fn pyyaml_reads_the_values_written_as_they_were_given() {
    let Some(venv) = test_venv() else {
        eprintln!("note: no test venv; skipping");
        return;
    };
    let e = Env::new();
    e.p.write(".pivot/config.yaml", "# team\nremotes:\n  origin: s3://b\n");
    let strings = [
        "yes",
        "1e3",
        "010",
        "2001-01-01",
        "a: b",
        "x #y",
        "null",
        "it's",
        "1:30",
    ];
    for (i, v) in strings.iter().enumerate() {
        let key = if i % 2 == 0 { "region" } else { "profile" };
        let name = format!("r{i}");
        e.pivot(&["remote", "add", &name, "s3://b"]).success();
        e.pivot(&["remote", "modify", &name, key, v]).success();
    }
    e.pivot(&["config", "set", "core.max_workers", "010"])
        .success();
    e.pivot(&["config", "set", "remote.allow_http", "on"])
        .success();
    let out = std::process::Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg("import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1])), default=str))")
        .arg(e.p.path(".pivot/config.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (i, v) in strings.iter().enumerate() {
        let key = if i % 2 == 0 { "region" } else { "profile" };
        assert_eq!(doc["remote_options"][format!("r{i}")][key], *v, "{doc}");
    }
    assert_eq!(doc["core"]["max_workers"], 8);
    assert_eq!(doc["remote"]["allow_http"], true);
    assert!(e.project_config().starts_with("# team\n"));
}
