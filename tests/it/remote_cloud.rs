//! Remotes against real storage servers started here: S3 (moto's server), Azure (Azurite) and
//! object_store's GCS client (against moto, which speaks the XML API that client uses; no GCS
//! emulator does). A fault-injecting proxy in front of the server counts requests and fails
//! chosen ones. Servers come from `.ci/run` (`scripts/test-servers.sh`); without them a test
//! skips, except under `CI`, where it fails.

use std::fs;
use std::path::Path;

use crate::remote::{origin, round_trip, BLOBS};
use crate::support::{Azurite, FaultPlan, Moto, Project, Proxy, PRELUDE};

/// Credentials moto accepts (it checks none), given the standard way.
const AWS_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "pivot-test-key"),
    ("AWS_SECRET_ACCESS_KEY", "pivot-test-secret"),
];

fn s3_config(bucket_prefix: &str, endpoint: &str, extra: &str) -> String {
    format!(
        "remotes:\n  origin: s3://{bucket_prefix}\nremote_options:\n  origin:\n    endpoint: {endpoint}\n    region: us-east-1\n{extra}"
    )
}

#[test]
fn s3_round_trip_and_a_second_push_sends_no_per_object_request() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("pivot-rt");
    let proxy = Proxy::start(moto.addr(), FaultPlan::none());
    let p = origin(&s3_config("pivot-rt/team", &proxy.endpoint(), ""));
    let push = p.pivot_env(&["push", "--json"], AWS_ENV);
    push.success();
    assert_eq!(push.json()["transferred"], BLOBS as u64, "{}", push.stderr);
    assert!(proxy.count("PUT") >= BLOBS, "{:?}", proxy.requests());
    proxy.reset_counts();
    let again = p.pivot_env(&["push", "--json"], AWS_ENV);
    again.success();
    assert_eq!(again.json()["transferred"], 0);
    assert_eq!(again.json()["skipped"], BLOBS as u64);
    // One request: the gc epoch. No HEAD, no LIST, no PUT per object.
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].starts_with("GET /pivot-rt/team/gc-epoch"),
        "{requests:?}"
    );

    round_trip(
        &s3_config("pivot-rt/second", &proxy.endpoint(), ""),
        AWS_ENV,
    );
}

#[test]
fn azure_round_trip_against_azurite() {
    let Some(azurite) = Azurite::start() else {
        return;
    };
    azurite.create_container("pivot");
    let config = format!(
        "remotes:\n  origin: azure://pivot/team\nremote_options:\n  origin:\n    endpoint: {}\n    account: {}\n    allow_http: true\n",
        azurite.endpoint(),
        Azurite::ACCOUNT
    );
    round_trip(&config, &[("AZURE_STORAGE_ACCOUNT_KEY", Azurite::KEY)]);
}

#[test]
fn gcs_client_round_trip_against_an_xml_api_server() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("pivotgcs");
    // moto crashes on the empty bearer token a key without OAuth sends; the proxy replaces it.
    let proxy = Proxy::start(moto.addr(), FaultPlan::none());
    proxy.set_header(Moto::AUTH.0, Moto::AUTH.1);
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("service-account.json");
    fs::write(
        &key,
        format!(
            r#"{{"gcs_base_url": "{}", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}}"#,
            proxy.endpoint()
        ),
    )
    .unwrap();
    let config = format!(
        "remotes:\n  origin: gs://pivotgcs/team\nremote_options:\n  origin:\n    service_account: {}\n    allow_http: true\n",
        key.display()
    );
    round_trip(&config, &[]);
}

/// A project whose only stage writes `n` files of distinct content into a directory.
fn many_blobs(config: &str, n: usize) -> Project {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def shards() -> Annotated[dict, outputs.DirectoryOut('shards/', loaders.JSON())]:
    return {{f'{{i:03}}.json': {{'i': i, 'pad': 'x' * 100}} for i in range({n})}}


pipeline = Pipeline('many')
pipeline.register(shards)
"
        ),
    );
    p.write(".pivot/config.yaml", config);
    p.pivot(&["repro"]).success();
    p
}

#[test]
fn a_server_gone_mid_push_fails_it_and_the_next_push_sends_exactly_the_rest() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("pivot-faults");
    let n = 20;
    // The gc epoch (1) and one HEAD per blob (fewer than 50: no listing), then 5 uploads; after
    // that the server is gone. One retry, so the failures come quickly.
    let gone_after = 1 + n + 5;
    let proxy = Proxy::start(moto.addr(), FaultPlan::drop_after(gone_after));
    let config = s3_config(
        "pivot-faults/team",
        &proxy.endpoint(),
        "    retries: 1\n    timeout: 5\n",
    );
    let p = many_blobs(&config, n);
    let first = p.pivot_env(&["push", "--json", "-j", "4"], AWS_ENV);
    first.code(1);
    let doc = first.json();
    assert_eq!(doc["transferred"], 5, "{}", first.stdout);
    assert_eq!(doc["failed"], (n - 5) as u64);
    assert!(first.stderr.contains("Error:"), "{}", first.stderr);
    proxy.set_plan(FaultPlan::none());
    proxy.reset_counts();
    let second = p.pivot_env(&["push", "--json"], AWS_ENV);
    second.success();
    assert_eq!(second.json()["transferred"], (n - 5) as u64);
    // Exactly the rest was sent: one PUT per missing blob, none for the five already there.
    assert_eq!(proxy.count("PUT"), n - 5, "{:?}", proxy.requests());
    let third = p.pivot_env(&["push", "--json"], AWS_ENV);
    assert_eq!(third.json()["transferred"], 0);
}

#[test]
fn server_errors_are_retried_and_the_push_completes() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("pivot-503");
    let n = 10;
    // Requests 2, 5, 6 and 13 (some HEADs, some PUTs) get a 503 or a 500.
    let proxy = Proxy::start(moto.addr(), FaultPlan::status_on([2, 5, 6, 13], 503));
    let p = many_blobs(&s3_config("pivot-503/team", &proxy.endpoint(), ""), n);
    let push = p.pivot_env(&["push", "--json", "-j", "1"], AWS_ENV);
    push.success();
    assert_eq!(push.json()["transferred"], n as u64, "{}", push.stderr);
    assert_eq!(push.json()["failed"], 0);
    let requests = proxy.requests();
    assert!(requests.len() >= 1 + n + n + 4, "{requests:?}");
    // A clone pulls everything back intact, through a server failing now and then too.
    proxy.set_plan(FaultPlan::status_on([1, 3], 500));
    let q = clone_of_many(&p);
    q.pivot_env(&["pull"], AWS_ENV).success();
    assert_eq!(q.read("shards/007.json"), p.read("shards/007.json"));
}

fn clone_of_many(p: &Project) -> Project {
    let q = Project::new();
    q.write("pipeline.py", &p.read("pipeline.py"));
    q.write(".pivot/config.yaml", &p.read(".pivot/config.yaml"));
    q.write(
        ".pivot/stages/shards.lock",
        &p.read(".pivot/stages/shards.lock"),
    );
    q
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() {
                let bytes = fs::read(&path).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    out.push(path.display().to_string());
                }
            }
        }
    }
    out
}

#[test]
fn credentials_appear_in_no_output_log_lock_state_or_config_pivot_writes() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("pivot-secret");
    let (key_id, secret) = ("AKIAPIVOTTESTKEY0001", "pivot-secret-do-not-print-0001");
    let p = origin(&s3_config("pivot-secret/team", &moto.endpoint(), ""));
    p.write(
        ".pivot/config.local.yaml",
        &format!(
            "remote_options:\n  origin:\n    access_key_id: {key_id}\n    secret_access_key: {secret}\n"
        ),
    );
    let mut outputs = String::new();
    for args in [
        &["push", "--run-cache", "--json"][..],
        &["push", "-v"],
        &["status", "--remote", "--json"],
        &["verify", "--allow-missing"],
        &["config", "list"],
        &["config", "list", "--json"],
        &["config", "get", "remote_options.origin.secret_access_key"],
        &["remote", "list", "--json"],
        &["repro", "--pull", "-v"],
        &["gc", "--all-commits", "--remote", "origin", "-n"],
    ] {
        let run = p.pivot(args);
        outputs.push_str(&run.stdout);
        outputs.push_str(&run.stderr);
    }
    // A failing request's error, too (a bucket that does not exist).
    p.write(
        ".pivot/config.yaml",
        &s3_config("no-such-bucket/x", &moto.endpoint(), "    retries: 0\n"),
    );
    let failed = p.pivot(&["push"]);
    failed.code(1);
    outputs.push_str(&failed.stdout);
    outputs.push_str(&failed.stderr);
    assert!(!outputs.contains(secret), "{outputs}");
    assert!(!outputs.contains(key_id), "{outputs}");
    assert!(
        outputs.contains("****"),
        "config list masks credentials:\n{outputs}"
    );
    // Nothing pivot wrote holds them: only the file the user wrote them in does.
    let holders = files_containing(p.root(), secret);
    assert_eq!(
        holders,
        [p.path(".pivot/config.local.yaml").display().to_string()],
        "{holders:?}"
    );
    assert!(fs::read_to_string(p.path(".pivot/.gitignore"))
        .unwrap()
        .lines()
        .any(|l| l == "/config.local.yaml"));
    // And the tracked config refuses them.
    let refused = p.pivot(&[
        "config",
        "set",
        "remote_options.origin.secret_access_key",
        secret,
    ]);
    refused.code(2);
    assert!(!refused.stderr.contains(secret), "{}", refused.stderr);
}

#[test]
fn an_aws_profile_from_the_shared_files_supplies_the_keys_and_region() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("pivot-profile");
    let home = tempfile::tempdir().unwrap();
    fs::create_dir_all(home.path().join(".aws")).unwrap();
    fs::write(
        home.path().join(".aws/credentials"),
        "[default]\naws_access_key_id = wrong\n\n[ci]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = from-the-profile\n",
    )
    .unwrap();
    fs::write(
        home.path().join(".aws/config"),
        "[profile ci]\nregion = eu-west-1\n",
    )
    .unwrap();
    let config = format!(
        "remotes:\n  origin: s3://pivot-profile/p\nremote_options:\n  origin:\n    endpoint: {}\n    profile: ci\n",
        moto.endpoint()
    );
    let p = origin(&config);
    let home_env = home.path().to_str().unwrap();
    let env = [
        ("HOME", home_env),
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
    ];
    let push = p.pivot_env(&["push", "--json"], &env);
    push.success();
    assert_eq!(push.json()["transferred"], BLOBS as u64, "{}", push.stderr);
    // A profile that does not exist is the user's to fix: exit 2, naming it.
    p.write(
        ".pivot/config.yaml",
        &config.replace("profile: ci", "profile: nope"),
    );
    let missing = p.pivot_env(&["push"], &env);
    missing.code(2);
    assert!(
        missing.stderr.contains("AWS profile `nope`"),
        "{}",
        missing.stderr
    );
}

#[test]
fn s3_large_files_multipart_up_and_ranged_down() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("pivot-big");
    let proxy = Proxy::start(moto.addr(), FaultPlan::none());
    crate::remote::big_round_trip(&s3_config("pivot-big/x", &proxy.endpoint(), ""), AWS_ENV);
    let requests = proxy.requests();
    assert!(
        requests.iter().any(|r| r.contains("uploads")),
        "multipart: {requests:?}"
    );
    // The first part with the object's GET, the rest as ranges (20 MiB: two more requests).
    let gets = requests
        .iter()
        .filter(|r| r.starts_with("GET /pivot-big/x/files/"))
        .count();
    assert!(gets >= 3, "{requests:?}");
}
