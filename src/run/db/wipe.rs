//! Removing a wipe path of a node on an SSH host, confined to the node's folder as
//! [`splitbrain_db::confine::remove_inside`] confines it here.
//!
//! The host has no splitbrain library to call, so the walk is a shell script: it `cd`s
//! from the node's folder one name at a time, refusing any name that is a symbolic link
//! and checking after each step that the physical working directory is still below the
//! folder (a link swapped in between the test and the `cd` is caught there). Only then
//! does `rm -rf` get the last name, relative to where the walk ended: `rm` removes a
//! link given as the last name without following it, and the walk has made sure no
//! link lies before it.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::run::hosts::sq;

/// The exit status of the script when it refuses.
pub const REFUSED: i32 = 3;

/// The script that removes `path`, which must lie inside `root`; it exits 0 when there
/// is nothing to remove and [`REFUSED`] (saying why on stderr) when a name on the way
/// is a link.
pub fn remote_script(root: &Path, path: &Path) -> anyhow::Result<String> {
    let mut names = splitbrain_db::confine::names_below(root, path)?;
    let last = names
        .pop()
        .ok_or_else(|| anyhow::anyhow!("{}: nothing to remove", path.display()))?;
    let quote = |n: &std::ffi::OsStr| sq(&String::from_utf8_lossy(n.as_bytes()));
    let walk: Vec<String> = names.iter().map(|n| quote(n)).collect();
    let mut script = format!(
        "p={root}\ncd -P -- \"$p\" 2>/dev/null || exit 0\ntop=$(pwd -P)\n",
        root = sq(&root.to_string_lossy())
    );
    if !walk.is_empty() {
        script.push_str(&format!(
            "for c in {names}; do\n\
             p=\"$p/$c\"\n\
             if [ -L \"$c\" ]; then printf '%s is a symbolic link (not followed: it could lead outside the node'\\''s folder)\\n' \"$p\" >&2; exit {REFUSED}; fi\n\
             [ -d \"$c\" ] || exit 0\n\
             cd -P -- \"$c\" || exit {REFUSED}\n\
             case \"$(pwd -P)\" in \"$top\"/*) ;; *) printf '%s leads outside the node'\\''s folder\\n' \"$p\" >&2; exit {REFUSED};; esac\n\
             done\n",
            names = walk.join(" ")
        ));
    }
    script.push_str(&format!("rm -rf -- {}\n", quote(&last)));
    Ok(script)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;
    use std::process::Command;

    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Runs the script with this machine's `sh`, as a host would.
    fn run(root: &Path, path: &Path) -> (i32, String) {
        let script = remote_script(root, path).expect("inside");
        let out = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("sh");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn the_remote_wipe_refuses_a_linked_folder_on_the_way() {
        let tmp = TempDir(std::env::temp_dir().join(format!("sb-wipe-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&tmp.0);
        let node = tmp.0.join("n1");
        let elsewhere = tmp.0.join("it's elsewhere");
        std::fs::create_dir_all(node.join("own/wal")).expect("node");
        std::fs::write(node.join("own/wal/1"), "x").expect("write");
        std::fs::create_dir_all(elsewhere.join("member")).expect("elsewhere");
        std::fs::write(elsewhere.join("member/precious"), "keep").expect("write");
        symlink(&elsewhere, node.join("data")).expect("link");

        let (code, stderr) = run(&node, &node.join("data/member"));
        assert_eq!(code, REFUSED, "{stderr}");
        assert!(stderr.contains("data is a symbolic link"), "{stderr}");
        assert!(elsewhere.join("member/precious").exists());

        // The link itself as the last name: the link goes, not what it points to.
        assert_eq!(run(&node, &node.join("data")).0, 0);
        assert!(std::fs::symlink_metadata(node.join("data")).is_err());
        assert!(elsewhere.join("member/precious").exists());

        // A real folder goes; a missing path or node folder is no error.
        assert_eq!(run(&node, &node.join("own/wal")).0, 0);
        assert!(!node.join("own/wal").exists() && node.join("own").exists());
        assert_eq!(run(&node, &node.join("own/none/deeper")).0, 0);
        assert_eq!(run(&tmp.0.join("gone"), &tmp.0.join("gone/data")).0, 0);

        assert!(remote_script(&node, &tmp.0.join("n2/data")).is_err());
    }
}
