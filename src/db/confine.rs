//! Files of a node's folder, touched without leaving it: removing a wipe path, opening a
//! log.
//!
//! A description names paths by template (`{data_dir}/member`), and the text is checked
//! at load time not to climb out with `..`. That is not enough: the node itself (or
//! whatever it runs) can make `data` a symbolic link to `/elsewhere`, and a plain
//! `remove_dir_all("…/data/member")` or `File::open` would then act outside the folder.
//! So every path here is walked one component at a time from the (canonical) node
//! folder with `openat` and `O_NOFOLLOW`, each step relative to the directory opened
//! before: a symbolic link anywhere on the way is refused, and a link swapped in while
//! we walk makes the open fail rather than be followed. Only the last component of a
//! wipe path may be a link, and then the link itself is removed, never its target.
//! Logs must also be regular files: a FIFO or a device (`/dev/zero`) is refused.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{openat, statat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

/// Why a path of a node's folder was not touched.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// The path does not lie strictly inside the folder (or climbs with `..`).
    #[error("{} is not inside the node's folder {}", path.display(), root.display())]
    Outside { path: PathBuf, root: PathBuf },
    /// A component of the path is a symbolic link, which could lead outside.
    #[error("{} is a symbolic link (not followed: it could lead outside the node's folder)", link.display())]
    Link { link: PathBuf },
    /// Not a regular file (a FIFO, a device, a folder).
    #[error("{} is not a regular file but {kind}", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    /// The file system said no.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `path` without `.` components; `None` if it has a `..` (which could escape).
pub(crate) fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => return None,
            other => out.push(other),
        }
    }
    Some(out)
}

/// The parts of `path` below `root`, checked to be plain names (at least one).
fn below(root: &Path, path: &Path) -> Result<Vec<CString>, ConfineError> {
    let outside = || ConfineError::Outside {
        path: path.to_path_buf(),
        root: root.to_path_buf(),
    };
    let (Some(root_n), Some(path_n)) = (normalize(root), normalize(path)) else {
        return Err(outside());
    };
    let rest = path_n.strip_prefix(&root_n).map_err(|_| outside())?;
    let mut names = Vec::new();
    for c in rest.components() {
        let Component::Normal(name) = c else {
            return Err(outside());
        };
        names.push(CString::new(name.as_bytes()).map_err(|_| outside())?);
    }
    if names.is_empty() {
        return Err(outside());
    }
    Ok(names)
}

/// The names leading from `root` to `path` (at least one), checked by their text to
/// stay inside: for code that walks them elsewhere (a shell script on a host).
pub fn names_below(root: &Path, path: &Path) -> Result<Vec<std::ffi::OsString>, ConfineError> {
    Ok(below(root, path)?
        .into_iter()
        .map(|n| OsStr::from_bytes(n.as_bytes()).to_os_string())
        .collect())
}

fn kind(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a folder",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "of an unknown kind",
    }
}

/// The open folder holding `path`'s last component and that component's name, reached
/// from `root` without following a link; `None` when something on the way does not
/// exist (or is not a folder), so nothing is there.
fn parent_of(root: &Path, path: &Path) -> Result<Option<(OwnedFd, CString)>, ConfineError> {
    let mut names = below(root, path)?;
    let io = |at: &Path, e: Errno| ConfineError::Io {
        path: at.to_path_buf(),
        source: e.into(),
    };
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    // The node folder itself may sit behind links (a run store under a linked /tmp):
    // it is resolved once, and only what lies below it is walked link-free.
    let canonical = match root.canonicalize() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfineError::Io {
                path: root.to_path_buf(),
                source,
            })
        }
    };
    let mut dir = openat(CWD, &canonical, dir_flags, Mode::empty()).map_err(|e| io(root, e))?;
    let last = names.pop().ok_or_else(|| ConfineError::Outside {
        path: path.to_path_buf(),
        root: root.to_path_buf(),
    })?;
    let mut at = root.to_path_buf();
    for name in names {
        at.push(OsStr::from_bytes(name.as_bytes()));
        let st = match statat(&dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(io(&at, e)),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => return Err(ConfineError::Link { link: at }),
            FileType::Directory => {}
            // `a/b` where `a` is a file: there is no `b`.
            _ => return Ok(None),
        }
        dir = match openat(&dir, name.as_c_str(), dir_flags, Mode::empty()) {
            Ok(d) => d,
            // Swapped for a link (or a file) since the stat: refuse rather than guess.
            Err(Errno::LOOP | Errno::NOTDIR) => return Err(ConfineError::Link { link: at }),
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(io(&at, e)),
        };
    }
    Ok(Some((dir, last)))
}

/// Removes `path` (a file, a link itself, or a folder with everything in it) if it
/// exists, walking from `root` without following links; `Ok(false)` when there was
/// nothing to remove. A link on the way is refused ([`ConfineError::Link`]).
pub fn remove_inside(root: &Path, path: &Path) -> Result<bool, ConfineError> {
    let Some((parent, name)) = parent_of(root, path)? else {
        return Ok(false);
    };
    remove_entry(&parent, &name, path)?;
    Ok(true)
}

/// Removes `name` of the open folder `parent`, recursively, never following a link.
fn remove_entry(parent: &OwnedFd, name: &CString, shown: &Path) -> Result<(), ConfineError> {
    let io = |e: Errno| ConfineError::Io {
        path: shown.to_path_buf(),
        source: e.into(),
    };
    let st = match statat(parent, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return match unlinkat(parent, name.as_c_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(io(e)),
        };
    }
    let dir = openat(
        parent,
        name.as_c_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io)?;
    let mut children = Vec::new();
    for entry in Dir::read_from(&dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let child = entry.file_name();
        if child != c"." && child != c".." {
            children.push(child.to_owned());
        }
    }
    for child in children {
        remove_entry(
            &dir,
            &child,
            &shown.join(OsStr::from_bytes(child.as_bytes())),
        )?;
    }
    match unlinkat(parent, name.as_c_str(), AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// Opens `path` for reading if it is a regular file inside `root`, reached without
/// following a link; with its size. `Ok(None)` when it does not exist.
pub fn open_inside(root: &Path, path: &Path) -> Result<Option<(File, u64)>, ConfineError> {
    let Some((parent, name)) = parent_of(root, path)? else {
        return Ok(None);
    };
    let io = |e: Errno| ConfineError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    };
    // NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. It is
    // refused below anyway, and means nothing for a regular file.
    let fd = match openat(
        &parent,
        name.as_c_str(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => {
            return Err(ConfineError::Link {
                link: path.to_path_buf(),
            })
        }
        Err(e) => return Err(io(e)),
    };
    let st = rustix::fs::fstat(&fd).map_err(io)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Ok(Some((File::from(fd), st.st_size.max(0) as u64))),
        other => Err(ConfineError::NotRegular {
            path: path.to_path_buf(),
            kind: kind(other),
        }),
    }
}

/// Whether `path` is a regular file inside `root` (reached without links); `Ok(None)`
/// when it does not exist.
pub fn regular_file_inside(root: &Path, path: &Path) -> Result<Option<u64>, ConfineError> {
    Ok(open_inside(root, path)?.map(|(_, size)| size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir()
                .join(format!("splitbrain-confine-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            TempDir(dir)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_linked_data_folder_is_not_wiped_through() {
        let tmp = TempDir::new("wipe-link");
        let node = tmp.0.join("n1");
        let elsewhere = tmp.0.join("elsewhere");
        std::fs::create_dir_all(&node).expect("node");
        std::fs::create_dir_all(elsewhere.join("member")).expect("elsewhere");
        std::fs::write(elsewhere.join("member/precious"), "keep").expect("write");
        symlink(&elsewhere, node.join("data")).expect("link");

        let err = remove_inside(&node, &node.join("data/member")).expect_err("refused");
        assert!(matches!(err, ConfineError::Link { .. }), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(
            elsewhere.join("member/precious").exists(),
            "outside file survives"
        );

        // The link as the last component: the link goes, its target stays.
        assert!(remove_inside(&node, &node.join("data")).expect("removed"));
        assert!(std::fs::symlink_metadata(node.join("data")).is_err());
        assert!(elsewhere.join("member/precious").exists());
    }

    #[test]
    fn a_folder_is_removed_without_following_links_inside_it() {
        let tmp = TempDir::new("wipe-tree");
        let node = tmp.0.join("n1");
        let elsewhere = tmp.0.join("elsewhere");
        std::fs::create_dir_all(node.join("data/wal/deep")).expect("node");
        std::fs::write(node.join("data/wal/deep/0001.wal"), "x").expect("write");
        std::fs::create_dir_all(&elsewhere).expect("elsewhere");
        std::fs::write(elsewhere.join("precious"), "keep").expect("write");
        symlink(&elsewhere, node.join("data/wal/out")).expect("link");

        assert!(remove_inside(&node, &node.join("data")).expect("removed"));
        assert!(!node.join("data").exists());
        assert!(node.exists());
        assert!(elsewhere.join("precious").exists());
        // Nothing there: no error, nothing removed.
        assert!(!remove_inside(&node, &node.join("data/member")).expect("nothing"));
        assert!(!remove_inside(&tmp.0.join("gone"), &tmp.0.join("gone/data")).expect("nothing"));
    }

    #[test]
    fn paths_outside_the_folder_are_refused() {
        let root = Path::new("/store/run/n1");
        for p in [
            "/store/run/n1",
            "/store/run/n2/data",
            "/store/run/n1/../n2",
            "/etc",
        ] {
            let err = remove_inside(root, Path::new(p)).expect_err(p);
            assert!(matches!(err, ConfineError::Outside { .. }), "{p}: {err}");
        }
    }

    #[test]
    fn only_regular_files_inside_are_opened() {
        let tmp = TempDir::new("open");
        let node = tmp.0.join("n1");
        std::fs::create_dir_all(&node).expect("node");
        std::fs::write(node.join("node.log"), "hello").expect("write");
        std::fs::write(tmp.0.join("secret"), "no").expect("write");
        symlink(tmp.0.join("secret"), node.join("link.log")).expect("link");
        symlink("/dev/zero", node.join("zero.log")).expect("link");
        nix_free_mkfifo(&node.join("fifo.log"));

        let (_, size) = open_inside(&node, &node.join("node.log"))
            .expect("ok")
            .expect("exists");
        assert_eq!(size, 5);
        assert!(open_inside(&node, &node.join("missing.log"))
            .expect("ok")
            .is_none());
        for name in ["link.log", "zero.log"] {
            let err = open_inside(&node, &node.join(name)).expect_err(name);
            assert!(matches!(err, ConfineError::Link { .. }), "{name}: {err}");
        }
        let err = open_inside(&node, &node.join("fifo.log")).expect_err("fifo");
        assert!(err.to_string().contains("FIFO"), "{err}");
        let err = open_inside(&node, Path::new("/dev/zero")).expect_err("outside");
        assert!(matches!(err, ConfineError::Outside { .. }), "{err}");
    }

    fn nix_free_mkfifo(path: &Path) {
        rustix::fs::mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
            .expect("mkfifo");
    }
}
