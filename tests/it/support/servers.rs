//! Storage servers the remote tests start, each on 127.0.0.1 at a free port, waited for until it
//! answers, killed and reaped on drop: moto's S3 server, Azurite's blob service, and Python's
//! `http.server`. `scripts/test-servers.sh` (sourced by `.ci/run`) installs the first two and
//! exports `PIVOT_TEST_MOTO` and `PIVOT_TEST_AZURITE`.
//!
//! Without its variable a server's `start` returns `None` after saying why on stderr (the test
//! skips), except under CI (`CI` set), where it panics: CI never skips silently.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::azure_auth;
use super::http::{self, free_port, Response};

/// The tool named by `$var`, or `None` (the caller skips) when it is unset outside CI.
pub(crate) fn required_tool(var: &str, what: &str) -> Option<PathBuf> {
    match resolve_tool(var, what, std::env::var_os(var), std::env::var_os("CI")) {
        Ok(tool) => tool,
        Err(msg) => panic!("{msg}"),
    }
}

/// [`required_tool`]'s decision from the two variables' values: `Err` is a failure (CI without
/// the tool, or a path that does not exist), `Ok(None)` a skip (said on stderr).
pub(crate) fn resolve_tool(
    var: &str,
    what: &str,
    value: Option<std::ffi::OsString>,
    ci: Option<std::ffi::OsString>,
) -> Result<Option<PathBuf>, String> {
    match value.filter(|v| !v.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            if path.exists() {
                Ok(Some(path))
            } else {
                Err(format!(
                    "${var} names `{}`, which does not exist",
                    path.display()
                ))
            }
        }
        None if ci.is_some_and(|v| !v.is_empty()) => Err(format!(
            "${var} is unset under CI: .ci/run must install {what} (scripts/test-servers.sh)"
        )),
        None => {
            eprintln!(
                "skipped: ${var} is unset (source scripts/test-servers.sh to install {what})"
            );
            Ok(None)
        }
    }
}

/// A child process with its output in a log file; killed and reaped on drop.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(mut cmd: Command, dir: &Path, what: &'static str) -> Process {
        let log = dir.join(format!("{what}.log"));
        let out = fs::File::create(&log).expect("server log");
        let err = out.try_clone().expect("server log");
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .env_remove("PYTHONPATH")
            .env_remove("VIRTUAL_ENV");
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {what} ({cmd:?}): {e}"));
        Process { child, log }
    }

    /// Starts a server on a free port (`command` makes its command line for a port) and waits
    /// until `ready` holds for its address and the process is still running. A server that
    /// exits first is tried again on another port (another test may have taken the free port
    /// between `free_port` and the bind), up to 3 times; then, or after 60 s, this panics with
    /// the server's log.
    fn start(
        what: &'static str,
        dir: &Path,
        command: impl Fn(u16) -> Command,
        ready: impl Fn(SocketAddr) -> bool,
    ) -> (Process, SocketAddr) {
        let mut failures = String::new();
        for _ in 0..3 {
            let port = free_port();
            let addr = loopback(port);
            let mut process = Process::spawn(command(port), dir, what);
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let up = ready(addr);
                match process.child.try_wait() {
                    Ok(None) if up => return (process, addr),
                    Ok(None) => {}
                    Ok(Some(status)) => {
                        failures.push_str(&format!(
                            "{what} on port {port} exited ({status}) before it answered:\n{}\n",
                            process.log_text()
                        ));
                        break;
                    }
                    Err(e) => panic!("wait for {what}: {e}"),
                }
                assert!(
                    Instant::now() < deadline,
                    "{what} did not answer on port {port} within 60 s:\n{}",
                    process.log_text()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("{what} did not start:\n{failures}");
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid")
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[track_caller]
fn expect_status(resp: std::io::Result<Response>, want: &[u16], what: &str) -> Response {
    let resp = resp.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        want.contains(&resp.status),
        "{what}: HTTP {} {}",
        resp.status,
        resp.text()
    );
    resp
}

/// moto's S3 server (`moto_server -H 127.0.0.1 -p PORT`): any credentials (signatures are
/// not checked), region us-east-1 unless told otherwise, path-style URLs.
pub(crate) struct Moto {
    process: Process,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Moto {
    pub(crate) fn start() -> Option<Moto> {
        let bin = required_tool("PIVOT_TEST_MOTO", "moto's S3 server")?;
        let dir = tempfile::tempdir().expect("tempdir");
        let (process, addr) = Process::start(
            "moto",
            dir.path(),
            |port| {
                let mut cmd = Command::new(&bin);
                cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .current_dir(dir.path());
                cmd
            },
            // An unsigned GET / (list buckets) answers 200 once the app is up.
            |addr| http::request(addr, "GET", "/", &[], &[]).is_ok_and(|r| r.status == 200),
        );
        Some(Moto {
            process,
            addr,
            _dir: dir,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the S3 endpoint, path-style.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A header moto takes as an authenticated caller (it never checks signatures). Unsigned
    /// requests are anonymous: moto lets them create buckets and PUT objects, but GETs of
    /// (private) objects answer 403.
    pub(crate) const AUTH: (&'static str, &'static str) = (
        "Authorization",
        "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/s3/aws4_request, \
         SignedHeaders=host, Signature=0000",
    );

    /// A request with [`Moto::AUTH`], sent to `to` (moto itself, or a proxy in front of it).
    pub(crate) fn request(
        to: SocketAddr,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<Response> {
        http::request(to, method, path, &[Self::AUTH], body)
    }

    /// `PUT /name`.
    #[track_caller]
    pub(crate) fn create_bucket(&self, name: &str) {
        expect_status(
            Self::request(self.addr, "PUT", &format!("/{name}"), &[]),
            &[200],
            &format!("create bucket {name}"),
        );
    }

    /// The server's output so far, for failure messages.
    pub(crate) fn log(&self) -> String {
        self.process.log_text()
    }

    /// The server process (reaped on drop).
    pub(crate) fn pid(&self) -> i32 {
        self.process.pid()
    }
}

/// Azurite's blob service alone (`azurite-blob`), its data in a temp dir, on a free port.
pub(crate) struct Azurite {
    process: Process,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Azurite {
    /// The emulator's well-known account and key (public, documented by Microsoft).
    pub(crate) const ACCOUNT: &'static str = "devstoreaccount1";
    pub(crate) const KEY: &'static str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    /// The `x-ms-version` the test client sends.
    const VERSION: &'static str = "2021-08-06";

    pub(crate) fn start() -> Option<Azurite> {
        let bin = required_tool("PIVOT_TEST_AZURITE", "Azurite")?;
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        fs::create_dir(&data).expect("mkdir azurite data");
        let (process, addr) = Process::start(
            "azurite",
            dir.path(),
            |port| {
                let mut cmd = Command::new(&bin);
                cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                    .arg("--location")
                    .arg(&data)
                    .args([
                        "--silent",
                        "--skipApiVersionCheck",
                        "--loose",
                        "--disableTelemetry",
                    ])
                    .current_dir(dir.path());
                cmd
            },
            // Any HTTP answer will do (an unsigned request gets 403 once it is up).
            |addr| http::request(addr, "GET", "/devstoreaccount1?comp=list", &[], &[]).is_ok(),
        );
        Some(Azurite {
            process,
            addr,
            _dir: dir,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/devstoreaccount1`: the blob endpoint, path-style.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}/{}", self.addr, Self::ACCOUNT)
    }

    /// A SharedKey-signed request for `path` under the account (`/container/blob`, with an
    /// optional `?query`), sent to `to` (Azurite itself, or a proxy in front of it).
    pub(crate) fn signed_request(
        to: SocketAddr,
        method: &str,
        path_and_query: &str,
        extra_headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let path = format!("/{}{path}", Self::ACCOUNT);
        let params: Vec<(&str, &str)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .collect();
        let date = azure_auth::http_date_now();
        let mut headers: Vec<(&str, &str)> =
            vec![("x-ms-date", &date), ("x-ms-version", Self::VERSION)];
        headers.extend_from_slice(extra_headers);
        let auth = azure_auth::shared_key(
            Self::ACCOUNT,
            Self::KEY,
            method,
            &path,
            &params,
            &headers,
            body.len(),
        );
        headers.push(("Authorization", &auth));
        let target = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        http::request(to, method, &target, &headers, body)
    }

    /// Creates a container (object_store cannot): a signed `PUT ?restype=container`.
    #[track_caller]
    pub(crate) fn create_container(&self, name: &str) {
        expect_status(
            Self::signed_request(
                self.addr,
                "PUT",
                &format!("/{name}?restype=container"),
                &[],
                &[],
            ),
            &[201],
            &format!("create container {name}"),
        );
    }

    /// The server's output so far, for failure messages.
    pub(crate) fn log(&self) -> String {
        self.process.log_text()
    }

    /// The server process (reaped on drop).
    pub(crate) fn pid(&self) -> i32 {
        self.process.pid()
    }
}

/// `python3 -m http.server` serving a directory (GET and HEAD only; no listing in a form a
/// client can page, no PUT).
pub(crate) struct HttpServer {
    process: Process,
    addr: SocketAddr,
    _logs: tempfile::TempDir,
}

impl HttpServer {
    pub(crate) fn start(dir: &Path) -> HttpServer {
        let logs = tempfile::tempdir().expect("tempdir");
        let python = ["/usr/bin/python3", "python3"]
            .into_iter()
            .find(|p| !p.starts_with('/') || Path::new(p).exists())
            .expect("a python3");
        let (process, addr) = Process::start(
            "http.server",
            logs.path(),
            |port| {
                let mut cmd = Command::new(python);
                cmd.args(["-m", "http.server", "--bind", "127.0.0.1"])
                    .arg(port.to_string())
                    .arg("--directory")
                    .arg(dir)
                    .env("PYTHONDONTWRITEBYTECODE", "1")
                    .env("PYTHONUNBUFFERED", "1");
                cmd
            },
            |addr| http::request(addr, "HEAD", "/", &[], &[]).is_ok(),
        );
        HttpServer {
            process,
            addr,
            _logs: logs,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's output so far (its access log), for failure messages.
    pub(crate) fn log(&self) -> String {
        self.process.log_text()
    }

    /// The server process (reaped on drop).
    pub(crate) fn pid(&self) -> i32 {
        self.process.pid()
    }
}
