//! `splitbrain test --hosts`: nodes on SSH hosts. The hosts are a lab (`splitbrain lab
//! up`): network namespaces on this machine, each with its own sshd. The bundled cluster
//! over SSH is valid under partitions, kills and pauses; `--bug stale-reads` is caught
//! under its nemesis within three seeds; afterwards no node process, tagged iptables rule
//! or remote file is left, and `lab down` leaves no namespace or sshd. Root only (CI is
//! root); each test says so when it skips.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn lab_available() -> bool {
    if !is_root() {
        eprintln!("skipped: the lab's hosts are network namespaces running sshd, which need root (CI is root)");
        return false;
    }
    if !Path::new("/usr/sbin/sshd").exists() || Command::new("ssh").arg("-V").output().is_err() {
        eprintln!("skipped: the lab needs OpenSSH (apt-get install openssh-server openssh-client; CI installs them)");
        return false;
    }
    true
}

/// A lab for one test; `down` on drop, also when the test fails.
struct Lab {
    hosts: PathBuf,
    /// The sshd pids with their start times, from the lab's record.
    sshd: Vec<(u32, u64)>,
    namespaces: Vec<String>,
}

fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Lab {
    fn up(dir: &Path, nodes: usize) -> Lab {
        let hosts = dir.join("hosts.toml");
        let out = run(&[
            "lab",
            "up",
            "--hosts-file",
            hosts.to_str().unwrap(),
            "--nodes",
            &nodes.to_string(),
        ]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("hosts.lab/lab.json")).unwrap())
                .unwrap();
        let sshd = record["sshd"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_u64().unwrap()))
            .collect();
        let namespaces = record["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        Lab {
            hosts,
            sshd,
            namespaces,
        }
    }

    /// This run's rules (tagged `splitbrain-`) in the hosts' firewalls.
    fn tagged_rules(&self) -> Vec<String> {
        let mut rules = Vec::new();
        for ns in &self.namespaces {
            let out = Command::new("ip")
                .args(["netns", "exec", ns, "iptables", "-w", "-S", "INPUT"])
                .output()
                .unwrap();
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if line.contains("splitbrain-") {
                    rules.push(format!("{ns}: {line}"));
                }
            }
        }
        rules
    }

    fn down(&self) -> std::process::Output {
        run(&["lab", "down", "--hosts-file", self.hosts.to_str().unwrap()])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.hosts.exists() {
            let _ = self.down();
        }
    }
}

/// Nothing of a finished run is left on the hosts.
/// (Other tests' netns runs may be live on this machine: only ours are looked at.)
fn assert_nothing_left_on_hosts(lab: &Lab, store: &Path) {
    let procs = processes_mentioning(&store.display().to_string());
    assert!(procs.is_empty(), "processes left behind: {procs:?}");
    let procs = processes_mentioning("/tmp/splitbrain/");
    assert!(
        procs.is_empty(),
        "node processes left on the hosts: {procs:?}"
    );
    let rules = lab.tagged_rules();
    assert!(rules.is_empty(), "iptables rules left: {rules:?}");
    assert!(
        !Path::new("/tmp/splitbrain").exists(),
        "files left on the hosts: {:?}",
        walk(Path::new("/tmp/splitbrain"))
    );
}

fn hosts_run(lab: &Lab, store: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "test",
        "--hosts",
        lab.hosts.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--workload",
        "register",
        "--time-limit",
        "10",
        "--recovery-time",
        "1",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn the_bundled_cluster_over_ssh_is_valid_and_its_stale_reads_bug_is_caught() {
    if !lab_available() {
        return;
    }
    let _guard = cluster_lock();
    let dir = TempDir::new("lab");
    let store = dir.path().join("store");
    let lab = Lab::up(dir.path(), 3);
    assert_eq!(lab.namespaces.len(), 3);
    assert!(
        our_namespaces().iter().all(|n| !lab.namespaces.contains(n)),
        "lab namespaces are not netns leftovers"
    );

    let out = hosts_run(
        &lab,
        &store,
        &[
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "2",
            "--seed",
            "1",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let run_dir = latest_run(&store);
    assert_eq!(results(&run_dir)["verdict"], "valid");
    let history = std::fs::read_to_string(run_dir.join("history.jsonl")).unwrap();
    for fault in ["start-partition", "kill", "pause"] {
        assert!(
            history.contains(&format!("\"f\":\"{fault}\"")),
            "a {fault} happened"
        );
    }
    for n in ["n1", "n2", "n3"] {
        assert!(
            run_dir.join(format!("nodes/{n}/node.log")).is_file(),
            "{n}'s log was downloaded"
        );
        assert!(!run_dir.join(format!("nodes/{n}/data")).exists());
    }
    assert_nothing_left_on_hosts(&lab, &store);

    // The bug's own nemesis, from `splitbrain bugs`.
    let bugs = text(&run(&["bugs"]));
    let nemesis = bugs
        .lines()
        .find(|l| l.starts_with("stale-reads\t"))
        .and_then(|l| l.split('\t').nth(1))
        .expect("splitbrain bugs lists stale-reads")
        .to_string();
    let mut codes = Vec::new();
    for seed in 1..=3u64 {
        let out = hosts_run(
            &lab,
            &store,
            &[
                "--bug",
                "stale-reads",
                "--nemesis",
                &nemesis,
                "--seed",
                &seed.to_string(),
            ],
        );
        codes.push(code(&out));
        assert!(code(&out) <= 2, "{}", text(&out));
        assert_nothing_left_on_hosts(&lab, &store);
        if code(&out) == 1 {
            break;
        }
    }
    assert!(
        codes.contains(&1),
        "stale reads caught within 3 seeds: {codes:?}"
    );

    let out = lab.down();
    assert_eq!(code(&out), 0, "{}", text(&out));
    for (pid, started) in &lab.sshd {
        assert_ne!(
            start_time(*pid),
            Some(*started),
            "sshd {pid} survived lab down"
        );
    }
    let left: Vec<String> = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
        .lines()
        .filter(|l| lab.namespaces.iter().any(|n| l.starts_with(n.as_str())))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "lab namespaces left: {left:?}");
    assert!(!lab.hosts.exists() && !dir.path().join("hosts.lab").exists());
}

#[test]
fn a_bad_hosts_file_is_refused_with_its_line_and_key() {
    let dir = TempDir::new("hosts-file");
    let hosts = dir.path().join("hosts.toml");
    std::fs::write(
        &hosts,
        "[hosts]\nn1 = \"root@10.0.0.1\"\nn2 = \"root@10.0.0.2:ssh\"\n",
    )
    .unwrap();
    let out = run(&[
        "test",
        "--hosts",
        hosts.to_str().unwrap(),
        "--time-limit",
        "1",
    ]);
    assert_eq!(code(&out), 254, "{}", text(&out));
    assert!(text(&out).contains("line 3, `n2`"), "{}", text(&out));
}

/// Starts a long run on the lab and returns once a partition has started.
// The caller waits for the child it gets back.
#[allow(clippy::zombie_processes)]
fn start_until_partitioned(lab: &Lab, store: &Path, seed: &str) -> std::process::Child {
    let mut child = Command::new(bin())
        .args([
            "test",
            "--hosts",
            lab.hosts.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
            "--workload",
            "register",
            "--nemesis",
            "partition,pause",
            "--nemesis-interval",
            "1",
            "--time-limit",
            "120",
            "--seed",
            seed,
        ])
        .env("CI", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let history = walk(store)
            .into_iter()
            .find(|p| p.ends_with("history.jsonl"))
            .and_then(|h| std::fs::read_to_string(h).ok())
            .unwrap_or_default();
        if history.contains("start-partition") {
            return child;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run never got to a partition");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn ctrl_c_leaves_nothing_on_the_hosts_and_clean_removes_what_a_killed_harness_left() {
    if !lab_available() {
        return;
    }
    let _guard = cluster_lock();
    let dir = TempDir::new("lab-stop");
    let lab = Lab::up(dir.path(), 3);

    let store = dir.path().join("interrupted");
    let child = start_until_partitioned(&lab, &store, "4");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(matches!(out.status.code(), Some(0..=2)), "{}", text(&out));
    let run_dir = latest_run(&store);
    assert_eq!(results(&run_dir)["partial"], true);
    assert!(
        run_dir.join("nodes/n2/node.log").is_file(),
        "logs downloaded"
    );
    assert_nothing_left_on_hosts(&lab, &store);

    // A harness killed outright cleans nothing: `clean --hosts` does.
    let store = dir.path().join("killed");
    let mut child = start_until_partitioned(&lab, &store, "5");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !processes_mentioning("/tmp/splitbrain/").is_empty(),
        "the nodes outlive a killed harness"
    );
    let out = run(&["clean", "--hosts", lab.hosts.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("removed node process"),
        "{}",
        text(&out)
    );
    // The killed harness's SSH masters exit once idle (15 s).
    let killed = std::time::Instant::now();
    while !processes_mentioning(&store.display().to_string()).is_empty()
        && killed.elapsed() < std::time::Duration::from_secs(30)
    {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_nothing_left_on_hosts(&lab, &store);
    let out = run(&["clean", "--hosts", lab.hosts.to_str().unwrap()]);
    assert!(text(&out).contains("nothing to clean"), "{}", text(&out));
}

#[test]
fn etcd_over_ssh_is_valid() {
    if !lab_available() {
        return;
    }
    if Command::new("etcd").arg("--version").output().is_err() {
        eprintln!("skipped: etcd is not installed (apt-get install etcd-server; CI installs it)");
        return;
    }
    let _guard = cluster_lock();
    let dir = TempDir::new("lab-etcd");
    let store = dir.path().join("store");
    let lab = Lab::up(dir.path(), 3);
    let out = hosts_run(
        &lab,
        &store,
        &[
            "--db",
            "etcd",
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "2",
            "--rate",
            "100",
            "--concurrency",
            "6",
            "--seed",
            "1",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let run_dir = latest_run(&store);
    assert_eq!(results(&run_dir)["verdict"], "valid");
    let history = std::fs::read_to_string(run_dir.join("history.jsonl")).unwrap();
    assert!(history.contains("start-partition"), "a partition happened");
    assert!(
        run_dir.join("nodes/n1/stderr.log").is_file(),
        "etcd's log came home"
    );
    assert!(
        !run_dir.join("nodes/n1/data").exists(),
        "etcd's data stayed behind"
    );
    assert_nothing_left_on_hosts(&lab, &store);
}

#[test]
fn hosts_that_lack_a_command_or_cannot_be_reached_are_named_before_the_run() {
    if !lab_available() {
        return;
    }
    let _guard = cluster_lock();
    let dir = TempDir::new("lab-preflight");
    let store = dir.path().join("store");
    let lab = Lab::up(dir.path(), 3);
    let desc = dir.path().join("needs.toml");
    std::fs::write(
        &desc,
        r#"name = "needs-a-tool"
about = "a database whose command no host has"

[[requires]]
command = "splitbrain-missing-tool"
package = "nothing"

[node]
ports = { main = 7100 }
start = ["splitbrain-missing-tool", "{addr}"]
peer = "{name}={addr}"
peer_separator = ","

[ready]
tcp = "{addr}:{port.main}"

[client]
exec = ["true"]
"#,
    )
    .unwrap();
    let out = hosts_run(
        &lab,
        &store,
        &["--db", desc.to_str().unwrap(), "--nemesis", "partition"],
    );
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("host n2 (root@10.79.0.3) lacks the command `splitbrain-missing-tool`"),
        "{}",
        text(&out)
    );
    assert_nothing_left_on_hosts(&lab, &store);

    // A host whose sshd does not answer (nothing listens on port 2).
    let broken = dir.path().join("broken.toml");
    let hosts = std::fs::read_to_string(&lab.hosts)
        .unwrap()
        .replace("root@10.79.0.4\"", "root@10.79.0.4:2\"");
    std::fs::write(&broken, hosts).unwrap();
    let out = run(&[
        "test",
        "--hosts",
        broken.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--workload",
        "register",
        "--nemesis",
        "partition",
        "--time-limit",
        "3",
    ]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("cannot reach host n3 (root@10.79.0.4:2)"),
        "{}",
        text(&out)
    );
    assert_nothing_left_on_hosts(&lab, &store);
}

/// `/tmp/splitbrain` as a test left it, removed on drop (also when the test fails), so
/// that the other lab tests find none.
struct ParentGuard;

impl Drop for ParentGuard {
    fn drop(&mut self) {
        let parent = Path::new("/tmp/splitbrain");
        if parent.is_symlink() {
            let _ = std::fs::remove_file(parent);
        } else {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

/// `nobody`'s uid and gid, which the tests give the folders another user would make.
const NOBODY: u32 = 65534;

fn chown_nobody(path: &Path) {
    let status = Command::new("chown")
        .arg(format!("{NOBODY}:{NOBODY}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_tmp_splitbrain_of_another_user_or_a_link_is_refused_before_any_node_starts() {
    if !lab_available() {
        return;
    }
    let _guard = cluster_lock();
    let dir = TempDir::new("lab-parent");
    let lab = Lab::up(dir.path(), 3);
    let parent = Path::new("/tmp/splitbrain");
    assert!(!parent.exists() && !parent.is_symlink(), "no run is live");
    let _cleanup = ParentGuard;

    // Another user made it (world-writable, as an attacker would): they could plant
    // the binary or the scripts that root then runs.
    std::fs::create_dir(parent).unwrap();
    chown_nobody(parent);
    std::fs::set_permissions(parent, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let store = dir.path().join("foreign");
    let out = hosts_run(&lab, &store, &["--nemesis", "partition"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("/tmp/splitbrain is owned by uid 65534"),
        "{}",
        text(&out)
    );
    assert!(
        walk(parent).is_empty(),
        "nothing was put in it: {:?}",
        walk(parent)
    );
    assert!(
        std::fs::read_dir(parent).unwrap().next().is_none(),
        "no folder was made in it"
    );
    assert!(
        !walk(&store).iter().any(|p| p.ends_with("node.log")),
        "no node started"
    );
    assert!(processes_mentioning("/tmp/splitbrain/").is_empty());
    std::fs::remove_dir(parent).unwrap();

    // A link to a folder another user owns.
    let target = dir.path().join("elsewhere");
    std::fs::create_dir(&target).unwrap();
    chown_nobody(&target);
    std::os::unix::fs::symlink(&target, parent).unwrap();
    let store = dir.path().join("linked");
    let out = hosts_run(&lab, &store, &["--nemesis", "partition"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("/tmp/splitbrain is a symbolic link"),
        "{}",
        text(&out)
    );
    assert!(walk(&target).is_empty(), "nothing was put through the link");
    assert!(
        !walk(&store).iter().any(|p| p.ends_with("node.log")),
        "no node started"
    );
    std::fs::remove_file(parent).unwrap();
}

/// A copy of examples/redis in `dir`, beside a secret and files the description does not
/// name; its start script lists what reached the host (into the node's stderr.log).
fn redis_description_with_a_secret(dir: &Path) -> PathBuf {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/redis");
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::create_dir_all(dir.join(".ssh")).unwrap();
    std::fs::write(dir.join(".ssh/id_ed25519"), "PRIVATE KEY").unwrap();
    std::fs::write(dir.join("secret.txt"), "do not ship").unwrap();
    std::fs::write(dir.join("conf/extra.conf"), "# named in [files] upload\n").unwrap();
    std::fs::copy(examples.join("adapter.py"), dir.join("adapter.py")).unwrap();
    let script = std::fs::read_to_string(examples.join("start.sh"))
        .unwrap()
        .replace(
            "\nexec redis-server",
            "\nhere=$(dirname \"$0\")\n\
             echo \"LISTING-BEGIN\" >&2\n\
             ls -la /tmp/splitbrain \"$here/..\" >&2\n\
             ls -laR \"$here\" >&2\n\
             echo \"LISTING-END\" >&2\n\
             exec redis-server",
        );
    std::fs::write(dir.join("start.sh"), script).unwrap();
    let desc = std::fs::read_to_string(examples.join("redis.toml")).unwrap()
        + "\n[files]\nupload = [\"conf/\"]\n";
    let path = dir.join("redis.toml");
    std::fs::write(&path, desc).unwrap();
    path
}

#[test]
fn only_the_files_a_description_names_reach_the_hosts() {
    if !lab_available() {
        return;
    }
    for tool in ["redis-server", "python3"] {
        if Command::new(tool).arg("--version").output().is_err() {
            eprintln!("skipped: {tool} is not installed (CI installs it)");
            return;
        }
    }
    let _guard = cluster_lock();
    let dir = TempDir::new("lab-upload");
    let lab = Lab::up(dir.path(), 3);
    let desc = redis_description_with_a_secret(&dir.path().join("desc"));
    let store = dir.path().join("store");
    let out = hosts_run(
        &lab,
        &store,
        &["--db", desc.to_str().unwrap(), "--nemesis", "partition"],
    );
    assert!(matches!(code(&out), 0 | 1), "{}", text(&out));
    let run_dir = latest_run(&store);
    let log = std::fs::read_to_string(run_dir.join("nodes/n2/stderr.log")).unwrap();
    let listing = log
        .split("LISTING-BEGIN")
        .nth(1)
        .and_then(|l| l.split("LISTING-END").next())
        .unwrap_or_else(|| panic!("the start script listed its folder: {log}"));
    eprintln!("the remote listing:{listing}");
    for named in ["start.sh", "conf", "extra.conf"] {
        assert!(listing.contains(named), "{named} was uploaded: {listing}");
    }
    for secret in [
        ".ssh",
        "id_ed25519",
        "secret.txt",
        "adapter.py",
        "redis.toml",
    ] {
        assert!(!listing.contains(secret), "{secret} stayed home: {listing}");
    }
    // The parent and the run folder are root's alone.
    let lines: Vec<&str> = listing.lines().collect();
    let dot = |header: &str| {
        let at = lines.iter().position(|l| l.starts_with(header)).unwrap();
        lines[at + 1..]
            .iter()
            .find(|l| l.ends_with(" ."))
            .map(|l| l.to_string())
            .unwrap()
    };
    assert!(
        dot("/tmp/splitbrain:").starts_with("drwx------ "),
        "{listing}"
    );
    assert!(
        dot("/tmp/splitbrain/").starts_with("drwx------ "),
        "{listing}"
    );
    assert!(dot("/tmp/splitbrain/").contains(" root root "), "{listing}");
    assert_nothing_left_on_hosts(&lab, &store);

    // A named file over the limit is refused before anything is uploaded.
    let big = dir.path().join("desc/conf/huge.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(65 * 1024 * 1024)
        .unwrap();
    let out = hosts_run(
        &lab,
        &store,
        &["--db", desc.to_str().unwrap(), "--nemesis", "partition"],
    );
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("conf/huge.bin") && text(&out).contains("64 MiB"),
        "{}",
        text(&out)
    );
    assert_nothing_left_on_hosts(&lab, &store);
}

#[test]
fn host_keys_are_checked_against_the_named_known_hosts_and_accept_new_is_a_choice() {
    if !lab_available() {
        return;
    }
    let _guard = cluster_lock();
    let dir = TempDir::new("lab-keys");
    let lab = Lab::up(dir.path(), 3);
    let hosts_text = std::fs::read_to_string(&lab.hosts).unwrap();
    let known = hosts_text
        .lines()
        .find_map(|l| l.strip_prefix("known_hosts = "))
        .map(|v| PathBuf::from(v.trim_matches('"')))
        .unwrap_or_else(|| panic!("the lab names its known_hosts: {hosts_text}"));
    let keys = std::fs::read_to_string(&known).unwrap();
    assert_eq!(keys.lines().count(), 3, "{keys}");

    // n2 answers with a key other than the one recorded for it.
    let other = dir.path().join("other_key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(status.success());
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_key: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let forged: String = keys
        .lines()
        .map(|l| {
            if l.starts_with("10.79.0.3 ") {
                format!("10.79.0.3 {}\n", other_key.join(" "))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let forged_file = dir.path().join("forged_known_hosts");
    std::fs::write(&forged_file, forged).unwrap();
    let forged_hosts = dir.path().join("forged.toml");
    std::fs::write(
        &forged_hosts,
        hosts_text.replace(
            &known.display().to_string(),
            &forged_file.display().to_string(),
        ),
    )
    .unwrap();
    let store = dir.path().join("store");
    let out = run(&[
        "test",
        "--hosts",
        forged_hosts.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--workload",
        "register",
        "--time-limit",
        "2",
    ]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("host n2") && text(&out).contains("host key"),
        "{}",
        text(&out)
    );
    assert!(
        !walk(&store).iter().any(|p| p.ends_with("node.log")),
        "no node started"
    );

    // Accepting new keys is said in the hosts file; they are kept in the file named.
    let fresh = dir.path().join("fresh_known_hosts");
    std::fs::write(&fresh, "").unwrap();
    let accepting = dir.path().join("accept.toml");
    std::fs::write(
        &accepting,
        hosts_text
            .replace(&known.display().to_string(), &fresh.display().to_string())
            .replace("lab = true", "lab = true\nhost_keys = \"accept-new\""),
    )
    .unwrap();
    let out = run(&[
        "test",
        "--hosts",
        accepting.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--workload",
        "register",
        "--time-limit",
        "2",
        "--recovery-time",
        "1",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let learned = std::fs::read_to_string(&fresh).unwrap();
    assert_eq!(learned.lines().count(), 3, "{learned}");
    assert_nothing_left_on_hosts(&lab, &store);
}
