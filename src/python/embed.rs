//! Serves the `pivot` package baked into the binary (build.rs) through a meta-path finder.
//!
//! The finder implements `get_source`, so `inspect.getsource` (code fingerprints) and tracebacks
//! work on embedded modules. Built-in submodules such as `pivot._native` are delegated to
//! `BuiltinImporter` with `path=None`: on 3.11 it refuses any submodule lookup that passes a path.

use pyo3::prelude::*;
use pyo3::types::PyDict;

include!(concat!(env!("OUT_DIR"), "/pylib.rs"));

const FINDER: &str = r#"
import importlib.abc, importlib.machinery, importlib.util, sys

class PivotEmbeddedFinder(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """Finds and loads the `pivot` package embedded in the pivot binary."""

    def __init__(self, modules):
        self._modules = modules

    @staticmethod
    def _origin(fullname, is_pkg):
        tail = "/__init__.py" if is_pkg else ".py"
        return "<pivot-embedded>/" + fullname.replace(".", "/") + tail

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith("pivot.") and fullname in sys.builtin_module_names:
            return importlib.machinery.BuiltinImporter.find_spec(fullname)
        entry = self._modules.get(fullname)
        if entry is None:
            return None
        spec = importlib.util.spec_from_loader(
            fullname, self, origin=self._origin(fullname, entry[0]), is_package=entry[0])
        spec.has_location = True
        return spec

    def is_package(self, fullname):
        return self._modules[fullname][0]

    def get_source(self, fullname):
        return self._modules[fullname][1]

    def get_filename(self, fullname):
        return self._origin(fullname, self._modules[fullname][0])

    def get_code(self, fullname):
        return compile(self.get_source(fullname), self.get_filename(fullname), "exec",
                       dont_inherit=True)

    def exec_module(self, module):
        exec(self.get_code(module.__name__), module.__dict__)

sys.meta_path.insert(0, PivotEmbeddedFinder(_PIVOT_MODULES))
"#;

/// Installs the finder at the front of `sys.meta_path`: the embedded package wins over any
/// installed `pivot` distribution.
pub(super) fn install(py: Python<'_>) -> PyResult<()> {
    let modules = PyDict::new(py);
    for (name, is_pkg, source) in PYLIB {
        modules.set_item(*name, (*is_pkg, *source))?;
    }
    let globals = PyDict::new(py);
    globals.set_item("_PIVOT_MODULES", modules)?;
    let code = std::ffi::CString::new(FINDER).expect("finder source has no NUL");
    py.run(&code, Some(&globals), None)
}

/// Where a `pivot` package other than ours is importable from the environment (shadowed by
/// ours). The release wheel installs the same files as the embedded ones: that one is no other.
pub(super) fn shadowed_install(py: Python<'_>) -> Option<String> {
    let code = c"__import__('importlib.machinery').machinery.PathFinder.find_spec('pivot')";
    let spec = py.eval(code, None, None).ok()?;
    if spec.is_none() {
        return None;
    }
    let origin = spec.getattr("origin").ok()?.extract::<String>().ok()?;
    let root = std::path::Path::new(&origin).parent()?.parent()?;
    let same = PYLIB.iter().all(|(name, is_pkg, source)| {
        std::fs::read(super::unpack::module_path(root, name, *is_pkg))
            .is_ok_and(|text| text == source.as_bytes())
    });
    (!same).then_some(origin)
}
