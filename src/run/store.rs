//! The store layout (README, "Store layout"): `store/<test-name>/<YYYYmmddTHHMMSS>/` per run,
//! `store/latest` pointing at the newest run.
//!
//! A run directory is always new: nothing a previous run recorded is ever overwritten.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// A freshly created run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates `store/<name>/<timestamp>` (with a `-N` suffix if that second is taken)
    /// and its `nodes/` folder.
    pub fn create(store: &Path, name: &str) -> anyhow::Result<RunDir> {
        let now = time::OffsetDateTime::now_utc();
        let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]");
        let base = now
            .format(&format)
            .context("formatting the run timestamp")?;
        let parent = store.join(name);
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("creating the store folder {}", parent.display()))?;
        for attempt in 0..1000 {
            let stamp = if attempt == 0 {
                base.clone()
            } else {
                format!("{base}-{attempt}")
            };
            let path = parent.join(&stamp);
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    std::fs::create_dir(path.join("nodes"))
                        .with_context(|| format!("creating {}/nodes", path.display()))?;
                    return Ok(RunDir { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        anyhow::bail!(
            "could not find a free run folder under {}",
            parent.display()
        )
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.path.join("nodes").join(node)
    }
}

/// Points `store/latest` at `run` (relative link, replaced atomically).
pub fn update_latest(store: &Path, run: &Path) -> anyhow::Result<()> {
    let target = run
        .strip_prefix(store)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| run.to_path_buf());
    let tmp = store.join(format!(".latest-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp)
        .with_context(|| format!("linking {}", tmp.display()))?;
    std::fs::rename(&tmp, store.join("latest"))
        .with_context(|| format!("updating {}/latest", store.display()))?;
    Ok(())
}

/// Writes one of the harness's own files atomically (see
/// [`splitbrain_reports::store::replace_file`]).
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    splitbrain_reports::store::replace_file(path, contents)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dirs_never_collide_and_latest_follows() {
        let store = std::env::temp_dir().join(format!("sb-store-{}", std::process::id()));
        let a = RunDir::create(&store, "t").unwrap();
        let b = RunDir::create(&store, "t").unwrap();
        assert_ne!(a.path, b.path);
        assert!(a.path.join("nodes").is_dir());
        update_latest(&store, &a.path).unwrap();
        update_latest(&store, &b.path).unwrap();
        let link = std::fs::read_link(store.join("latest")).unwrap();
        assert_eq!(store.join(link), b.path);
        std::fs::remove_dir_all(store).unwrap();
    }
}
