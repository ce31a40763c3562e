//! Interpreter facts (version, build, libpython): from a venv's `pyvenv.cfg` without starting a
//! process, else from the cache, else by asking the interpreter; and the refusals they imply.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cache;
use crate::core::{SUPPORTED, SUPPORTED_TEXT};
use crate::refusal::{show, Refusal};
use crate::select::Selected;

/// What the launcher knows about an interpreter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Facts {
    pub version: (u32, u32, u32),
    pub abiflags: String,
    pub executable: String,
    pub base_prefix: String,
    pub libdir: String,
    pub instsoname: String,
    pub ldlibrary: String,
    pub multiarch: String,
    pub enable_shared: bool,
    pub gil_disabled: bool,
    pub debug: bool,
    pub implementation: String,
}

impl Facts {
    pub(crate) fn version_text(&self) -> String {
        let (a, b, c) = self.version;
        format!("{a}.{b}.{c}")
    }
    pub(crate) fn minor(&self) -> u32 {
        self.version.1
    }
}

/// Where the facts came from (for `-v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    PyvenvCfg,
    Cache,
    Query,
}

impl Origin {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Origin::PyvenvCfg => "pyvenv.cfg",
            Origin::Cache => "cache",
            Origin::Query => "query",
        }
    }
}

/// Facts plus the libpython found in the interpreter's own installation (if any).
#[derive(Debug)]
pub(crate) struct Known {
    pub facts: Facts,
    pub libpython: Option<PathBuf>,
    pub origin: Origin,
    /// The python the core is told about: the selected one, except for a wrapper script (a pyenv
    /// shim) which is replaced by the interpreter it ran (`sys.executable`).
    pub launch_python: PathBuf,
}

/// The keys of `pyvenv.cfg` the launcher uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PyvenvCfg {
    pub home: Option<PathBuf>,
    /// `version` (python -m venv) or `version_info` (uv).
    pub version: Option<(u32, u32, u32)>,
    pub executable: Option<PathBuf>,
    pub implementation: Option<String>,
}

pub(crate) fn parse_pyvenv_cfg(text: &str) -> PyvenvCfg {
    let mut cfg = PyvenvCfg::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "home" if !v.is_empty() => cfg.home = Some(PathBuf::from(v)),
            "version" | "version_info" => {
                if let Some(ver) = parse_version(v) {
                    cfg.version = Some(ver);
                }
            }
            "executable" | "base-executable" if !v.is_empty() => {
                cfg.executable.get_or_insert_with(|| PathBuf::from(v));
            }
            "implementation" => cfg.implementation = Some(v.to_owned()),
            _ => {}
        }
    }
    cfg
}

/// `X.Y.Z` (a trailing release tag such as `3.13.0rc1` or `3.12.1.final.0` is cut).
fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.');
    let num = |s: Option<&str>| -> Option<u32> {
        let s = s?;
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    Some((num(it.next())?, num(it.next())?, num(it.next())?))
}

/// True if an interpreter file name is a default build: `python`, `python3`, `python3.13`, not
/// `python3.13t` / `python3.13d` / `pypy3`.
fn is_default_build_name(name: &str) -> bool {
    match name.strip_prefix("python") {
        Some(rest) => rest.chars().all(|c| c.is_ascii_digit() || c == '.'),
        None => false,
    }
}

/// False if an interpreter file name (`python3.12`) names another minor than `pyvenv.cfg` says:
/// the base was replaced (a distribution upgrade moved `python3`), so the file is not trusted.
fn name_agrees(name: &str, version: (u32, u32, u32)) -> bool {
    let rest = name.strip_prefix("python").unwrap_or("");
    match rest.split_once('.') {
        Some((major, minor)) => major.parse() == Ok(version.0) && minor.parse() == Ok(version.1),
        None => true,
    }
}

/// The facts for `sel`, by the cheapest means that gives an answer.
pub(crate) fn facts(sel: &Selected) -> Result<Known, Refusal> {
    let python = &sel.python;
    let venv = venv_of(python);
    if let Some((venv, cfg)) = &venv {
        check_venv_base(sel, venv, cfg)?;
        if let Some(k) = fast_path(python, cfg) {
            return Ok(k);
        }
    }
    let Ok(canonical) = std::fs::canonicalize(python) else {
        return Err(Refusal::new(
            format!(
                "the python `{}` (from {}) does not exist",
                show(python),
                sel.source.label()
            ),
            hint_for_source(sel),
        ));
    };
    if is_script(&canonical) {
        let cwd = std::env::current_dir().unwrap_or_default();
        if let Some(real) = crate::pyenv::resolve_shim(&canonical, &cwd).filter(|r| !is_script(r)) {
            let resolved = Selected {
                python: real,
                source: sel.source,
                warning: None,
            };
            return facts(&resolved);
        }
        // A wrapper (pyenv shim...): what it runs can change without the file changing, so its
        // answer is never cached, and the core is given the real interpreter.
        let facts = query(sel)?;
        let launch_python = if facts.executable.is_empty() {
            python.clone()
        } else {
            PathBuf::from(&facts.executable)
        };
        return Ok(known(facts, Origin::Query, launch_python));
    }
    let key = cache::Key::of(&canonical);
    if let Some(key) = &key {
        if let Some(facts) = cache::load(key) {
            return Ok(known(facts, Origin::Cache, python.clone()));
        }
    }
    let facts = query(sel)?;
    if let Some(key) = &key {
        cache::store(key, &facts);
    }
    Ok(known(facts, Origin::Query, python.clone()))
}

fn known(facts: Facts, origin: Origin, launch_python: PathBuf) -> Known {
    let libpython = libpython_of(&facts);
    Known {
        facts,
        libpython,
        origin,
        launch_python,
    }
}

fn hint_for_source(sel: &Selected) -> &'static str {
    match sel.source {
        crate::select::Source::PivotPython => "point $PIVOT_PYTHON at a python executable",
        crate::select::Source::VirtualEnv => "activate an existing virtualenv, or `deactivate`",
        crate::select::Source::CondaPrefix => {
            "activate a conda environment that has python installed"
        }
        _ => "select a python with $PIVOT_PYTHON or activate a virtualenv",
    }
}

/// `<venv>` and its parsed `pyvenv.cfg` if `python` is `<venv>/bin/python*`.
fn venv_of(python: &Path) -> Option<(PathBuf, PyvenvCfg)> {
    let bin = python.parent()?;
    if bin.file_name()? != "bin" || !python.file_name()?.to_string_lossy().starts_with("python") {
        return None;
    }
    let venv = bin.parent()?;
    let text = std::fs::read_to_string(venv.join("pyvenv.cfg")).ok()?;
    Some((venv.to_path_buf(), parse_pyvenv_cfg(&text)))
}

/// Refuses a venv whose base interpreter is gone.
fn check_venv_base(sel: &Selected, venv: &Path, cfg: &PyvenvCfg) -> Result<(), Refusal> {
    let gone = |base: &Path| {
        Refusal::new(
            format!(
                "the virtualenv `{}` was made from `{}`, which no longer exists",
                show(venv),
                show(base)
            ),
            "recreate the virtualenv",
        )
    };
    if let Some(home) = &cfg.home {
        if !home.is_dir() {
            return Err(gone(home));
        }
    }
    let python = &sel.python;
    if std::fs::symlink_metadata(python).is_ok() && std::fs::metadata(python).is_err() {
        let target = std::fs::read_link(python)
            .map(|t| python.parent().unwrap_or(Path::new("/")).join(t))
            .ok()
            .or_else(|| cfg.executable.clone())
            .unwrap_or_else(|| python.clone());
        return Err(gone(&target));
    }
    Ok(())
}

/// Facts from `pyvenv.cfg` alone, when they are certain: a default CPython build whose
/// libpython sits in its own `lib/`.
fn fast_path(python: &Path, cfg: &PyvenvCfg) -> Option<Known> {
    let version = cfg.version?;
    let home = cfg.home.as_deref()?;
    if let Some(imp) = &cfg.implementation {
        if !imp.eq_ignore_ascii_case("cpython") {
            return None;
        }
    }
    let resolved = std::fs::canonicalize(python).ok()?;
    let mut names = vec![resolved];
    names.extend(cfg.executable.clone());
    for n in &names {
        let name = n.file_name()?.to_string_lossy();
        if !is_default_build_name(&name) || !name_agrees(&name, version) {
            return None;
        }
    }
    let soname = format!("libpython{}.{}.so.1.0", version.0, version.1);
    let prefix = home.parent()?;
    let libpython = [
        prefix.join("lib").join(&soname),
        prefix.join("lib/x86_64-linux-gnu").join(&soname),
    ]
    .into_iter()
    .find(|p| p.is_file())?;
    let facts = Facts {
        version,
        abiflags: String::new(),
        executable: python.to_string_lossy().into_owned(),
        base_prefix: prefix.to_string_lossy().into_owned(),
        libdir: libpython.parent()?.to_string_lossy().into_owned(),
        instsoname: soname.clone(),
        ldlibrary: String::new(),
        multiarch: String::new(),
        enable_shared: true,
        gil_disabled: false,
        debug: false,
        implementation: "cpython".into(),
    };
    Some(Known {
        facts,
        libpython: Some(libpython),
        origin: Origin::PyvenvCfg,
        launch_python: python.to_path_buf(),
    })
}

/// True if the file starts with `#!` (a wrapper script, not an interpreter binary).
fn is_script(p: &Path) -> bool {
    let mut head = [0u8; 2];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"#!"
}

/// The script the slow path runs (`python -I -S -c`): `key=value` lines.
const QUERY: &str = "import sys, sysconfig
g = sysconfig.get_config_var
s = lambda v: '' if v is None else str(v)
print('version=%d.%d.%d' % tuple(sys.version_info[:3]))
print('abiflags=' + getattr(sys, 'abiflags', ''))
print('executable=' + (sys.executable or ''))
print('base_prefix=' + sys.base_prefix)
for k in ('LIBDIR', 'INSTSONAME', 'LDLIBRARY', 'Py_ENABLE_SHARED', 'Py_GIL_DISABLED', 'Py_DEBUG', 'MULTIARCH'):
    print(k + '=' + s(g(k)))
print('implementation=' + sys.implementation.name)
";

/// Runs the interpreter once to learn its facts.
fn query(sel: &Selected) -> Result<Facts, Refusal> {
    let python = &sel.python;
    let hint = format!(
        "check that `{}` is a working python executable",
        show(python)
    );
    let out = Command::new(python)
        .args(["-I", "-S", "-c", QUERY])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .map_err(|e| {
            Refusal::new(
                format!(
                    "could not run `{}` (from {}): {e}",
                    show(python),
                    sel.source.label()
                ),
                hint.clone(),
            )
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(Refusal::new(
            format!(
                "`{}` (from {}) failed when asked for its version and build ({}){}{}",
                show(python),
                sel.source.label(),
                out.status,
                if last.is_empty() { "" } else { ": " },
                last.trim()
            ),
            hint,
        ));
    }
    parse_answer(&String::from_utf8_lossy(&out.stdout)).map_err(|what| {
        Refusal::new(
            format!(
                "could not understand the answer of `{}` (from {}) when asked for its version and build: {what}",
                show(python),
                sel.source.label()
            ),
            hint,
        )
    })
}

/// Parses the query's `key=value` lines (also the body of a cache entry).
pub(crate) fn parse_answer(text: &str) -> Result<Facts, String> {
    let mut get = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            get.insert(k, v);
        }
    }
    let need = |k: &str| {
        get.get(k)
            .map(|v| (*v).to_owned())
            .ok_or_else(|| format!("no `{k}`"))
    };
    let flag = |k: &str| get.get(k).is_some_and(|v| v.trim() == "1");
    let version_text = need("version")?;
    let version =
        parse_version(&version_text).ok_or_else(|| format!("bad version `{version_text}`"))?;
    Ok(Facts {
        version,
        abiflags: need("abiflags")?,
        executable: need("executable")?,
        base_prefix: need("base_prefix")?,
        libdir: need("LIBDIR")?,
        instsoname: need("INSTSONAME").unwrap_or_default(),
        ldlibrary: need("LDLIBRARY").unwrap_or_default(),
        multiarch: need("MULTIARCH").unwrap_or_default(),
        enable_shared: flag("Py_ENABLE_SHARED"),
        gil_disabled: flag("Py_GIL_DISABLED"),
        debug: flag("Py_DEBUG"),
        implementation: need("implementation")?,
    })
}

/// The text [`parse_answer`] reads back.
pub(crate) fn render_answer(f: &Facts) -> String {
    let b = |v: bool| if v { "1" } else { "0" };
    format!(
        "version={}\nabiflags={}\nexecutable={}\nbase_prefix={}\nLIBDIR={}\nINSTSONAME={}\nLDLIBRARY={}\nPy_ENABLE_SHARED={}\nPy_GIL_DISABLED={}\nPy_DEBUG={}\nMULTIARCH={}\nimplementation={}\n",
        f.version_text(),
        f.abiflags,
        f.executable,
        f.base_prefix,
        f.libdir,
        f.instsoname,
        f.ldlibrary,
        b(f.enable_shared),
        b(f.gil_disabled),
        b(f.debug),
        f.multiarch,
        f.implementation
    )
}

/// The shared libpython of the interpreter's own installation: `LIBDIR/INSTSONAME`, else
/// `LIBDIR/LDLIBRARY` if that is a shared object.
fn libpython_of(f: &Facts) -> Option<PathBuf> {
    if f.libdir.is_empty() {
        return None;
    }
    let libdir = Path::new(&f.libdir);
    let shared = |name: &str| name.ends_with(".so") || name.contains(".so.");
    let mut candidates = Vec::new();
    // A static build names `libpython3.Y.a` in both INSTSONAME and LDLIBRARY.
    if shared(&f.instsoname) {
        candidates.push(libdir.join(&f.instsoname));
        if !f.multiarch.is_empty() {
            candidates.push(libdir.join(&f.multiarch).join(&f.instsoname));
        }
    }
    if shared(&f.ldlibrary) {
        candidates.push(libdir.join(&f.ldlibrary));
    }
    // A static interpreter that still ships the shared library in its LIBDIR (conda).
    let (major, minor, _) = f.version;
    candidates.push(libdir.join(format!("libpython{major}.{minor}{}.so.1.0", f.abiflags)));
    candidates.into_iter().find(|p| p.is_file())
}

/// Refuses what the core cannot embed, in the order a user would fix it: not CPython, a
/// free-threaded or debug build, a minor with no core, no shared libpython.
pub(crate) fn check(sel: &Selected, k: &Known) -> Result<PathBuf, Refusal> {
    let f = &k.facts;
    let python = show(&sel.python);
    let source = sel.source.label();
    let version = f.version_text();
    let pick_hint = format!(
        "use CPython {SUPPORTED_TEXT}: set $PIVOT_PYTHON or activate a virtualenv made with one"
    );
    if f.implementation != "cpython" {
        return Err(Refusal::new(
            format!(
                "`{python}` (from {source}) is {} {version}, not CPython; pivot embeds CPython",
                f.implementation
            ),
            pick_hint,
        ));
    }
    let free_threaded = f.gil_disabled || f.abiflags.contains('t');
    let debug = f.debug || f.abiflags.contains('d');
    if free_threaded || debug {
        let what = match (free_threaded, debug) {
            (true, true) => "a free-threaded debug build",
            (true, false) => "a free-threaded build",
            _ => "a debug build",
        };
        return Err(Refusal::new(
            format!(
                "`{python}` (Python {version}{}, from {source}) is {what}; pivot needs a default (GIL, non-debug) CPython",
                f.abiflags
            ),
            format!(
                "use a default build of Python 3.{} (`python3.{}`, not `python3.{}{}`)",
                f.minor(),
                f.minor(),
                f.minor(),
                match (f.abiflags.as_str(), free_threaded) {
                    ("", true) => "t",
                    ("", false) => "d",
                    (flags, _) => flags,
                }
            ),
        ));
    }
    if f.version.0 != 3 || !SUPPORTED.contains(&f.minor()) {
        return Err(Refusal::new(
            format!(
                "no core for Python {}.{} (`{python}`, from {source}); pivot supports {SUPPORTED_TEXT}",
                f.version.0,
                f.minor()
            ),
            pick_hint,
        ));
    }
    match &k.libpython {
        Some(l) => Ok(l.clone()),
        None => {
            let hint = if f.base_prefix == "/usr" {
                format!("install it: apt install libpython3.{}", f.minor())
            } else if f.base_prefix.contains("/.pyenv/versions/")
                || f.executable.contains("/.pyenv/versions/")
            {
                format!(
                    "rebuild it with PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install {version}"
                )
            } else {
                "pivot needs a CPython built with --enable-shared".to_owned()
            };
            Err(Refusal::new(
                format!(
                    "`{python}` (Python {version}) has no shared libpython (looked in `{}`)",
                    f.libdir
                ),
                hint,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::Source;

    #[test]
    fn a_python_venv_pyvenv_cfg_gives_home_and_version() {
        let cfg = parse_pyvenv_cfg(
            "home = /root/.pyenv/versions/3.13.0/bin\ninclude-system-site-packages = false\nversion = 3.13.0\nexecutable = /root/.pyenv/versions/3.13.0/bin/python3.13\ncommand = /x -m venv /v\n",
        );
        assert_eq!(cfg.home, Some("/root/.pyenv/versions/3.13.0/bin".into()));
        assert_eq!(cfg.version, Some((3, 13, 0)));
        assert_eq!(
            cfg.executable,
            Some("/root/.pyenv/versions/3.13.0/bin/python3.13".into())
        );
    }

    #[test]
    fn a_uv_pyvenv_cfg_gives_version_info() {
        let cfg = parse_pyvenv_cfg(
            "home = /h/.local/share/uv/python/cpython-3.12.1-linux-x86_64-gnu/bin\nimplementation = CPython\nuv = 0.5.1\nversion_info = 3.12.1\ninclude-system-site-packages = false\n",
        );
        assert_eq!(cfg.version, Some((3, 12, 1)));
        assert_eq!(cfg.implementation.as_deref(), Some("CPython"));
        assert_eq!(cfg.executable, None);
    }

    #[test]
    fn free_threaded_and_debug_names_are_not_default_builds() {
        assert!(is_default_build_name("python3.13"));
        assert!(is_default_build_name("python3"));
        assert!(!is_default_build_name("python3.13t"));
        assert!(!is_default_build_name("python3.13d"));
        assert!(!is_default_build_name("pypy3.10"));
    }

    #[test]
    fn a_base_interpreter_of_another_minor_than_pyvenv_cfg_says_is_not_trusted() {
        assert!(name_agrees("python3.12", (3, 12, 1)));
        assert!(name_agrees("python3", (3, 12, 1)));
        assert!(!name_agrees("python3.13", (3, 12, 1)));
        assert!(!name_agrees("python3.1", (3, 12, 1)));
    }

    const DEBIAN_311: &str = "version=3.11.2\nabiflags=\nexecutable=/usr/bin/python3.11\nbase_prefix=/usr\nLIBDIR=/usr/lib/x86_64-linux-gnu\nINSTSONAME=libpython3.11.so.1.0\nLDLIBRARY=libpython3.11.so\nPy_ENABLE_SHARED=1\nPy_GIL_DISABLED=\nPy_DEBUG=\nMULTIARCH=x86_64-linux-gnu\nimplementation=cpython\n";

    #[test]
    fn the_query_answer_parses_and_round_trips() {
        let f = parse_answer(DEBIAN_311).unwrap();
        assert_eq!(f.version, (3, 11, 2));
        assert_eq!(f.libdir, "/usr/lib/x86_64-linux-gnu");
        assert_eq!(f.instsoname, "libpython3.11.so.1.0");
        assert!(f.enable_shared && !f.gil_disabled && !f.debug);
        assert_eq!(parse_answer(&render_answer(&f)).unwrap(), f);
    }

    #[test]
    fn an_incomplete_query_answer_is_an_error() {
        assert_eq!(
            parse_answer("version=3.12.1\n").unwrap_err(),
            "no `abiflags`"
        );
        assert!(parse_answer("garbage").is_err());
    }

    fn sel() -> Selected {
        Selected {
            python: "/opt/py/bin/python3.13t".into(),
            source: Source::PivotPython,
            warning: None,
        }
    }

    fn known_from(answer: &str) -> Known {
        Known {
            facts: parse_answer(answer).unwrap(),
            libpython: Some("/opt/py/lib/libpython3.13t.so.1.0".into()),
            origin: Origin::Query,
            launch_python: "/opt/py/bin/python3.13t".into(),
        }
    }

    #[test]
    fn a_free_threaded_build_is_refused() {
        let k = known_from(
            &DEBIAN_311
                .replace("abiflags=", "abiflags=t")
                .replace("Py_GIL_DISABLED=", "Py_GIL_DISABLED=1"),
        );
        let r = check(&sel(), &k).unwrap_err();
        assert_eq!(r.error, "`/opt/py/bin/python3.13t` (Python 3.11.2t, from $PIVOT_PYTHON) is a free-threaded build; pivot needs a default (GIL, non-debug) CPython");
    }

    #[test]
    fn a_debug_build_is_refused() {
        let k = known_from(&DEBIAN_311.replace("Py_DEBUG=", "Py_DEBUG=1"));
        let r = check(&sel(), &k).unwrap_err();
        assert!(
            r.error
                .contains("is a debug build; pivot needs a default (GIL, non-debug) CPython"),
            "{r}"
        );
    }

    #[test]
    fn a_non_cpython_is_refused() {
        let k = known_from(&DEBIAN_311.replace("implementation=cpython", "implementation=pypy"));
        let r = check(&sel(), &k).unwrap_err();
        assert!(r.error.contains("is pypy 3.11.2, not CPython"), "{r}");
    }

    #[test]
    fn a_missing_libpython_hint_depends_on_where_python_lives() {
        let mut k = known_from(DEBIAN_311);
        k.libpython = None;
        let r = check(&sel(), &k).unwrap_err();
        assert_eq!(r.error, "`/opt/py/bin/python3.13t` (Python 3.11.2) has no shared libpython (looked in `/usr/lib/x86_64-linux-gnu`)");
        assert_eq!(r.hint, "install it: apt install libpython3.11");
        k.facts.base_prefix = "/root/.pyenv/versions/3.12.1".into();
        assert_eq!(
            check(&sel(), &k).unwrap_err().hint,
            "rebuild it with PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install 3.11.2"
        );
        k.facts.base_prefix = "/opt/py".into();
        assert_eq!(
            check(&sel(), &k).unwrap_err().hint,
            "pivot needs a CPython built with --enable-shared"
        );
    }

    #[test]
    fn libpython_is_a_shared_object_in_libdir_never_a_static_archive() {
        let dir = std::env::temp_dir().join(format!("pivot-launcher-lib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("libpython3.12.a"), "").unwrap();
        let mut f = parse_answer(DEBIAN_311).unwrap();
        f.version = (3, 12, 1);
        f.libdir = dir.to_string_lossy().into_owned();
        f.instsoname = "libpython3.12.a".into();
        f.ldlibrary = "libpython3.12.a".into();
        assert_eq!(libpython_of(&f), None);
        std::fs::write(dir.join("libpython3.12.so.1.0"), "").unwrap();
        assert_eq!(libpython_of(&f), Some(dir.join("libpython3.12.so.1.0")));
        f.instsoname = "libpython3.12.so.1.0".into();
        assert_eq!(libpython_of(&f), Some(dir.join("libpython3.12.so.1.0")));
        f.libdir = String::new();
        assert_eq!(libpython_of(&f), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unsupported_minor_has_no_core() {
        let k = known_from(&DEBIAN_311.replace("version=3.11.2", "version=3.10.13"));
        let r = check(&sel(), &k).unwrap_err();
        assert_eq!(r.error, "no core for Python 3.10 (`/opt/py/bin/python3.13t`, from $PIVOT_PYTHON); pivot supports 3.11-3.13");
    }
}
