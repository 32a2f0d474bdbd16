//! `splitbrain dbs`: the databases `--db` accepts — `bundled` and every built-in
//! description, with whether its required commands are installed — as text or JSON,
//! and `--show NAME` to print a built-in description's TOML as a template to copy.
//!
//! The descriptions themselves live in `splitbrain-db`; this module only lists them.

use clap::Args;
use serde::Serialize;
use splitbrain_db::{builtin_names, builtin_text, Description};

use crate::EXIT_BAD_INPUT;

#[derive(Debug, Args)]
pub struct DbsArgs {
    /// Print the list as JSON.
    #[arg(long, conflicts_with = "show")]
    pub json: bool,
    /// Print the TOML of a built-in description (a template for describing another
    /// database).
    #[arg(long, value_name = "NAME")]
    pub show: Option<String>,
}

/// What the bundled Raft KV is, for the listing.
const BUNDLED_ABOUT: &str = "the built-in Raft KV: every fault, both networks (proxy and netns)";

/// One database `--db` accepts.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct Entry {
    /// What to pass to `--db`.
    name: String,
    /// `bundled` or `description`.
    kind: &'static str,
    about: String,
    /// Whether every command it requires is on PATH.
    installed: bool,
    /// How to install what is missing (`apt-get install etcd-server`), when something is.
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<String>,
}

pub fn run(args: DbsArgs) -> anyhow::Result<i32> {
    if let Some(name) = &args.show {
        return match builtin_text(name) {
            Some(text) => {
                print!("{text}");
                Ok(0)
            }
            None => {
                let why = if name == "bundled" {
                    "`bundled` is the built-in Raft KV; it has no description".to_string()
                } else {
                    format!(
                        "no built-in description named `{name}`; built-in: {}",
                        builtin_names().join(", ")
                    )
                };
                eprintln!("error: {why}");
                Ok(i32::from(EXIT_BAD_INPUT))
            }
        };
    }
    let entries = entries();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
    } else {
        print!("{}", render(&entries));
    }
    Ok(0)
}

fn entries() -> Vec<Entry> {
    let mut out = vec![Entry {
        name: "bundled".into(),
        kind: "bundled",
        about: BUNDLED_ABOUT.into(),
        installed: true,
        missing: None,
    }];
    for name in builtin_names() {
        let entry = match Description::resolve(name) {
            Ok(d) => {
                let missing = d.check_requirements().err().map(|e| match e {
                    splitbrain_db::DescriptionError::NotInstalled {
                        package: Some(p), ..
                    } => format!("apt-get install {p}"),
                    other => other.to_string(),
                });
                Entry {
                    name: name.to_string(),
                    kind: "description",
                    about: d.about,
                    installed: missing.is_none(),
                    missing,
                }
            }
            // A test keeps built-ins valid; say so rather than hide it if one is not.
            Err(e) => Entry {
                name: name.to_string(),
                kind: "description",
                about: format!("broken built-in description: {e}"),
                installed: false,
                missing: None,
            },
        };
        out.push(entry);
    }
    out
}

fn render(entries: &[Entry]) -> String {
    let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for e in entries {
        let line = format!("{:width$}  {}", e.name, e.about);
        match &e.missing {
            Some(how) => out.push_str(&format!("{line} (not installed: {how})\n")),
            None => out.push_str(&format!("{line}\n")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_bundled_then_builtins() {
        let entries = entries();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["bundled", "etcd"]);
        assert!(entries[1].about.contains("etcd"));
    }

    #[test]
    fn text_names_what_is_missing() {
        let entries = vec![
            Entry {
                name: "bundled".into(),
                kind: "bundled",
                about: BUNDLED_ABOUT.into(),
                installed: true,
                missing: None,
            },
            Entry {
                name: "etcd".into(),
                kind: "description",
                about: "etcd 3.4+".into(),
                installed: false,
                missing: Some("apt-get install etcd-server".into()),
            },
        ];
        assert_eq!(
            render(&entries),
            format!(
                "bundled  {BUNDLED_ABOUT}\n\
                 etcd     etcd 3.4+ (not installed: apt-get install etcd-server)\n"
            )
        );
    }
}
