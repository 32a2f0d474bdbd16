//! What of a description's folder goes to SSH hosts (`--hosts`): only what the
//! description names — the paths its node's templates write as `{description_dir}/…`
//! and its `[files] upload` list — never the whole folder, which may be a home directory
//! with `~/.ssh` in it. Everything collected must stay inside the folder (a link leaving
//! it is refused), be a plain file, folder or link to a file, and add up to at most
//! [`UPLOAD_LIMIT`] bytes.

use std::path::{Component, Path, PathBuf};

use crate::{Description, DescriptionError};

/// The most a description may upload to each host, all files together: start scripts
/// and configuration, not data sets or binaries (which the hosts must have installed).
pub const UPLOAD_LIMIT: u64 = 64 * 1024 * 1024;

/// Whether `path` is a relative path that stays inside its base (no `..`, not absolute,
/// not empty); the reason otherwise.
pub(crate) fn confined(path: &str) -> Result<(), &'static str> {
    if path.trim().is_empty() {
        return Err("must not be empty");
    }
    let p = Path::new(path);
    if p.is_absolute() {
        return Err("must be relative to the description's folder");
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err("must not leave the description's folder with `..`");
    }
    Ok(())
}

impl Description {
    /// The paths, relative to the description's folder, that its templates and its
    /// `[files] upload` list name (not yet checked against the file system).
    pub fn named_files(&self) -> Vec<PathBuf> {
        let templates = self
            .node
            .start
            .iter()
            .chain(self.node.env.iter().map(|(_, t)| t));
        let mut named: Vec<PathBuf> = templates
            .flat_map(|t| t.description_dir_paths())
            .chain(self.upload.iter().cloned())
            .collect();
        named.sort();
        named.dedup();
        named
    }

    /// What goes to each host with `--hosts`: every named file, and every file and
    /// folder under a named folder, relative to the description's folder, sorted. Empty
    /// for a built-in description.
    pub fn upload_files(&self) -> Result<Vec<PathBuf>, DescriptionError> {
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        let error = |path: &Path, message: String| DescriptionError::Upload {
            source_name: self.source.to_string(),
            path: path.to_path_buf(),
            message,
        };
        let base = dir
            .canonicalize()
            .map_err(|e| error(Path::new("."), format!("the folder {}: {e}", dir.display())))?;
        let mut out = Vec::new();
        let mut total = 0u64;
        let mut pending: Vec<PathBuf> = self.named_files();
        while let Some(rel) = pending.pop() {
            let rel: PathBuf = rel
                .components()
                .filter(|c| *c != Component::CurDir)
                .collect();
            if rel.as_os_str().is_empty() {
                continue;
            }
            let full = base.join(&rel);
            let meta = std::fs::symlink_metadata(&full).map_err(|e| {
                let why = match e.kind() {
                    std::io::ErrorKind::NotFound => "is named but does not exist".to_string(),
                    _ => e.to_string(),
                };
                error(&rel, why)
            })?;
            let size = if meta.file_type().is_symlink() {
                let target = full
                    .canonicalize()
                    .map_err(|e| error(&rel, format!("a link: {e}")))?;
                if !target.starts_with(&base) {
                    return Err(error(
                        &rel,
                        format!(
                            "is a link to {}, outside the description's folder {}",
                            target.display(),
                            base.display()
                        ),
                    ));
                }
                let target_meta =
                    std::fs::metadata(&target).map_err(|e| error(&rel, e.to_string()))?;
                if !target_meta.is_file() {
                    return Err(error(
                        &rel,
                        "is a link to something other than a file".into(),
                    ));
                }
                target_meta.len()
            } else if meta.is_dir() {
                let entries = std::fs::read_dir(&full).map_err(|e| error(&rel, e.to_string()))?;
                for entry in entries {
                    let entry = entry.map_err(|e| error(&rel, e.to_string()))?;
                    pending.push(rel.join(entry.file_name()));
                }
                0
            } else if meta.is_file() {
                meta.len()
            } else {
                return Err(error(&rel, "is neither a file nor a folder".into()));
            };
            total += size;
            if total > UPLOAD_LIMIT {
                return Err(error(
                    &rel,
                    format!(
                        "{} brings what the description uploads to each host to {}, over the limit of {} (name only scripts and configuration; install data and binaries on the hosts)",
                        mib(size),
                        mib(total),
                        mib(UPLOAD_LIMIT)
                    ),
                ));
            }
            out.push(rel);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// `n` bytes in MiB, for messages.
fn mib(n: u64) -> String {
    let m = n as f64 / (1024.0 * 1024.0);
    if m.fract() == 0.0 {
        format!("{m:.0} MiB")
    } else {
        format!("{m:.1} MiB")
    }
}
