//! A scratch directory for the files a test writes (certificates, keys, configuration, databases).

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

/// A fresh directory under the system temporary directory, named after a tag, the process id and a random
/// number (so concurrent tests never share one); it and everything in it are removed when dropped.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Creates `lwm2m-TAG-PID-RANDOM` under the temporary directory.
    pub fn new(tag: &str) -> Scratch {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0);
        let dir = std::env::temp_dir().join(format!("lwm2m-{tag}-{}-{:x}", std::process::id(), h.finish()));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        Scratch { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of `name` in the directory (nothing is created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `data` to `name` in the directory (creating its parent directories); returns the path as a
    /// string, ready for a command line.
    pub fn write(&self, name: &str, data: &[u8]) -> String {
        let p = self.dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create the parent directory");
        }
        std::fs::write(&p, data).expect("write a scratch file");
        p.to_str().expect("a UTF-8 temporary path").to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
