//! `pivot._native`: the Rust helpers Python code in `pylib/` calls (registered through the inittab
//! before the interpreter starts).

use pyo3::prelude::*;

#[pymodule]
#[pyo3(name = "_native")]
pub mod native_module {
    use pyo3::exceptions::PyTypeError;
    use pyo3::prelude::*;
    use pyo3::types::{PyBytes, PyString};

    use crate::digest::{self, Digest};

    /// XXH64 (seed 0) of bytes, or of a str encoded as UTF-8, as 16 lowercase hex characters.
    #[pyfunction]
    fn xxh64_hex(data: &Bound<'_, PyAny>) -> PyResult<String> {
        if let Ok(b) = data.cast::<PyBytes>() {
            return Ok(Digest::of_bytes(b.as_bytes()).to_string());
        }
        if let Ok(s) = data.cast::<PyString>() {
            return Ok(Digest::of_bytes(s.to_str()?.as_bytes()).to_string());
        }
        Err(PyTypeError::new_err("xxh64_hex() takes bytes or str"))
    }

    /// XXH64 digest of a file's bytes (GIL released while hashing).
    #[pyfunction]
    fn hash_file(py: Python<'_>, path: std::path::PathBuf) -> PyResult<String> {
        let d = py.detach(|| digest::hash_file(&path))?;
        Ok(d.to_string())
    }
}

/// Registers `pivot._native` in the inittab. Must run before the interpreter starts.
pub(super) fn register() {
    // SAFETY: called once, before Py_InitializeFromConfig (checked by Py_IsInitialized); the name
    // is a static C string and the init function is pyo3's generated module initialiser.
    unsafe {
        assert_eq!(
            pyo3::ffi::Py_IsInitialized(),
            0,
            "invariant: inittab before init"
        );
        pyo3::ffi::PyImport_AppendInittab(
            c"pivot._native".as_ptr(),
            Some(native_module::__pyo3_init),
        );
    }
}
