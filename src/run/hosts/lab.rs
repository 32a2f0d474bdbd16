//! The lab: SSH "hosts" on this machine, for trying `--hosts` and for the tests.
//!
//! `splitbrain lab up --hosts-file F --nodes N` builds N network namespaces
//! (`sbl<4 hex>-n<i>`) on a private bridge (`sbl<4 hex>br`, [`LAB_SUBNET`]), each running
//! its own `sshd` (own listen address, host key, pid file; `UsePAM no`), accepting a key
//! generated for the lab, and writes the hosts file `F` for them, naming a known_hosts
//! file with each sshd's host key so that the lab's hosts are checked strictly. Everything else lives in
//! the lab folder beside it (`F` with the extension `.lab`): keys, sshd configs and logs,
//! and `lab.json`, the record `lab down` removes exactly by: the sshd pids (with their
//! start times; never by name), the namespaces, the veths and the bridge.
//!
//! The names differ from the netns backend's (`sb<4 hex>...`, where `l` is no hex digit),
//! so `splitbrain clean` and the tests' leftover checks tell the two apart. The lab's
//! hosts share this machine's pid space, file system and clock: every node gets its own
//! folder, processes are signalled by recorded pid, and the hosts file says `lab = true`,
//! which forbids clock changes.

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::run::db::processes::start_time;

/// The lab's /24 (the netns backend uses 10.77.0.0/24).
pub const LAB_SUBNET: [u8; 3] = [10, 79, 0];

/// What `lab down` removes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LabRecord {
    pub prefix: String,
    pub bridge: String,
    /// Namespace per host, in node order.
    pub namespaces: Vec<String>,
    /// Host-side veth per host.
    pub veths: Vec<String>,
    /// Each sshd's pid and start time.
    pub sshd: Vec<(u32, u64)>,
    /// The hosts file written for the lab.
    pub hosts_file: PathBuf,
}

/// The lab folder for a hosts file.
pub fn lab_dir(hosts_file: &Path) -> PathBuf {
    hosts_file.with_extension("lab")
}

/// Is `name` a namespace or link of a lab?
pub fn is_lab_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("sbl") else {
        return false;
    };
    if rest.len() < 5 || !rest.is_char_boundary(4) {
        return false;
    }
    let (hex, suffix) = rest.split_at(4);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && (suffix == "br"
            || suffix.strip_prefix("-n").is_some_and(digits)
            || suffix.strip_prefix('h').is_some_and(digits)
            || suffix.strip_prefix('p').is_some_and(digits))
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip_of(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(LAB_SUBNET[0], LAB_SUBNET[1], LAB_SUBNET[2], index as u8)
}

const SSHD: &str = "/usr/sbin/sshd";

/// Builds a lab of `nodes` hosts and writes its hosts file; on failure removes what it
/// built.
pub fn up(hosts_file: &Path, nodes: usize) -> anyhow::Result<LabRecord> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the lab needs root (network namespaces, sshd on port 22)");
    }
    if !(1..=50).contains(&nodes) {
        bail!("--nodes {nodes}: a lab has 1 to 50 hosts");
    }
    for (tool, install) in [
        (SSHD, "apt-get install -y openssh-server"),
        ("/usr/bin/ssh-keygen", "apt-get install -y openssh-client"),
    ] {
        if !Path::new(tool).exists() {
            bail!("{tool} not found: {install}");
        }
    }
    run("ip", &["-V"]).context("the lab needs `ip` (apt-get install -y iproute2)")?;
    let hosts_file = std::path::absolute(hosts_file).context("resolving the hosts file")?;
    let dir = lab_dir(&hosts_file);
    if dir.join("lab.json").exists() {
        bail!(
            "a lab is already up for {} (`splitbrain lab down --hosts-file {}`)",
            hosts_file.display(),
            hosts_file.display()
        );
    }
    if hosts_file.exists() {
        bail!(
            "{} exists: the lab writes a new hosts file (and `lab down` removes it); choose another path",
            hosts_file.display()
        );
    }
    let net = format!("{}.{}.{}.", LAB_SUBNET[0], LAB_SUBNET[1], LAB_SUBNET[2]);
    if run("ip", &["-4", "-o", "addr", "show"])?.contains(&format!("inet {net}")) {
        bail!("{net}0/24 is already in use on this machine (another lab? `splitbrain lab down`)");
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let taken = run("ip", &["-o", "link", "show"])? + &run("ip", &["netns", "list"])?;
    let prefix = (0..64)
        .map(|_| format!("sbl{:04x}", rand::random::<u16>()))
        .find(|p| !taken.contains(p.as_str()))
        .ok_or_else(|| anyhow!("no free lab name prefix"))?;
    let mut record = LabRecord {
        bridge: format!("{prefix}br"),
        prefix: prefix.clone(),
        hosts_file: hosts_file.clone(),
        ..LabRecord::default()
    };
    let result = build(&dir, nodes, &mut record);
    if let Err(e) = result {
        let _ = save(&dir, &record);
        if let Err(cleanup) = down(&hosts_file) {
            tracing::warn!("cleaning up a lab that failed to start: {cleanup:#}");
        }
        return Err(e);
    }
    Ok(record)
}

fn save(dir: &Path, record: &LabRecord) -> anyhow::Result<()> {
    let path = dir.join("lab.json");
    std::fs::write(&path, serde_json::to_vec_pretty(record)?)
        .with_context(|| format!("writing {}", path.display()))
}

fn build(dir: &Path, nodes: usize, record: &mut LabRecord) -> anyhow::Result<()> {
    let key = dir.join("id_ed25519");
    let key_s = key.to_string_lossy().into_owned();
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "splitbrain-lab",
            "-f",
            &key_s,
        ],
    )?;
    std::fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;
    let bridge = record.bridge.clone();
    save(dir, record)?;
    run("ip", &["link", "add", &bridge, "type", "bridge"])?;
    run(
        "ip",
        &["addr", "add", &format!("{}/24", ip_of(1)), "dev", &bridge],
    )?;
    run("ip", &["link", "set", &bridge, "up"])?;
    let mut hosts = String::new();
    // Each sshd's host key, so that the lab's hosts are checked strictly like any other.
    let known_hosts = dir.join("known_hosts");
    let mut known = String::new();
    for i in 1..=nodes {
        let ns = format!("{}-n{i}", record.prefix);
        let (host, inner) = (
            format!("{}h{i}", record.prefix),
            format!("{}p{i}", record.prefix),
        );
        record.namespaces.push(ns.clone());
        record.veths.push(host.clone());
        save(dir, record)?;
        let ip = ip_of(i + 1);
        run("ip", &["netns", "add", &ns])?;
        run(
            "ip",
            &[
                "link", "add", &host, "type", "veth", "peer", "name", &inner, "netns", &ns,
            ],
        )?;
        run("ip", &["link", "set", &host, "master", &bridge])?;
        run("ip", &["link", "set", &host, "up"])?;
        run(
            "ip",
            &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", &inner],
        )?;
        run("ip", &["-n", &ns, "link", "set", &inner, "up"])?;
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;

        let node_dir = dir.join(format!("n{i}"));
        std::fs::create_dir_all(&node_dir)?;
        let host_key = node_dir.join("ssh_host_ed25519_key");
        run(
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-f",
                &host_key.to_string_lossy(),
            ],
        )?;
        let public = std::fs::read_to_string(host_key.with_extension("pub"))
            .with_context(|| format!("reading n{i}'s host key"))?;
        let host_pub: Vec<&str> = public.split_whitespace().take(2).collect();
        if host_pub.len() != 2 {
            bail!("n{i}'s host key {} is not `TYPE KEY`", host_key.display());
        }
        known.push_str(&format!("{ip} {}\n", host_pub.join(" ")));
        std::fs::write(&known_hosts, &known)
            .with_context(|| format!("writing {}", known_hosts.display()))?;
        let pid_file = node_dir.join("sshd.pid");
        let config = node_dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress {ip}:22\nHostKey {hk}\nPidFile {pf}\nUsePAM no\n\
                 AuthorizedKeysFile {key}.pub\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 StrictModes no\nMaxSessions 100\nMaxStartups 100\n\
                 Subsystem sftp internal-sftp\n",
                hk = host_key.display(),
                pf = pid_file.display(),
                key = key.display(),
            ),
        )?;
        run(
            "ip",
            &[
                "netns",
                "exec",
                &ns,
                SSHD,
                "-f",
                &config.to_string_lossy(),
                "-E",
                &node_dir.join("sshd.log").to_string_lossy(),
            ],
        )
        .with_context(|| format!("starting sshd for n{i}"))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let pid = loop {
            let pid = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            match pid {
                Some(pid) => break pid,
                None if Instant::now() > deadline => {
                    bail!(
                        "sshd for n{i} wrote no pid file (see {})",
                        node_dir.join("sshd.log").display()
                    )
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let started = start_time(pid).ok_or_else(|| anyhow!("sshd for n{i} exited"))?;
        record.sshd.push((pid, started));
        save(dir, record)?;
        hosts.push_str(&format!("n{i} = \"root@{ip}\"\n"));
    }
    // Each sshd accepts connections before the lab is declared up.
    for i in 1..=nodes {
        let addr = std::net::SocketAddr::from((ip_of(i + 1), 22));
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                bail!("sshd for n{i} does not accept connections on {addr}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let text = format!(
        "# A lab of {nodes} hosts on this machine (`splitbrain lab up`); remove it with\n\
         # `splitbrain lab down --hosts-file {file}`.\n\
         lab = true\nidentity = \"{key}\"\nknown_hosts = \"{known}\"\n\n[hosts]\n{hosts}",
        file = record.hosts_file.display(),
        key = key.display(),
        known = known_hosts.display(),
    );
    std::fs::write(&record.hosts_file, text)
        .with_context(|| format!("writing {}", record.hosts_file.display()))?;
    Ok(())
}

/// Removes the lab of `hosts_file`: its sshds (by recorded pid), namespaces, links and
/// files. Returns what it removed.
pub fn down(hosts_file: &Path) -> anyhow::Result<Vec<String>> {
    let hosts_file = std::path::absolute(hosts_file).context("resolving the hosts file")?;
    let dir = lab_dir(&hosts_file);
    let path = dir.join("lab.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no lab recorded at {} (is it up?)", path.display()))?;
    let record: LabRecord =
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    let mut removed = Vec::new();
    let mut problems = Vec::new();
    for &(pid, started) in &record.sshd {
        if start_time(pid) != Some(started) || pid == 0 || pid > i32::MAX as u32 {
            continue;
        }
        let p = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(2);
        while start_time(pid) == Some(started) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        removed.push(format!("sshd {pid}"));
    }
    for ns in record.namespaces.iter().filter(|n| is_lab_name(n)) {
        if run("ip", &["netns", "list"])?
            .lines()
            .any(|l| l.split_whitespace().next() == Some(ns))
        {
            match run("ip", &["netns", "delete", ns]) {
                Ok(_) => removed.push(format!("namespace {ns}")),
                Err(e) => problems.push(format!("{e:#}")),
            }
        }
    }
    let links = run("ip", &["-o", "link", "show"])?;
    let exists = |l: &str| links.contains(&format!(": {l}:")) || links.contains(&format!(": {l}@"));
    for link in record
        .veths
        .iter()
        .chain([&record.bridge])
        .filter(|l| is_lab_name(l))
    {
        if exists(link) {
            match run("ip", &["link", "delete", link]) {
                Ok(_) => removed.push(format!("link {link}")),
                Err(_) if !run("ip", &["-o", "link", "show"])?.contains(&format!(": {link}")) => {}
                Err(e) => problems.push(format!("{e:#}")),
            }
        }
    }
    if !problems.is_empty() {
        bail!("the lab is only partly removed: {}", problems.join("; "));
    }
    if record.hosts_file == hosts_file && hosts_file.exists() {
        std::fs::remove_file(&hosts_file)
            .with_context(|| format!("removing {}", hosts_file.display()))?;
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    removed.push(dir.display().to_string());
    Ok(removed)
}

/// `splitbrain lab`.
#[derive(Debug, clap::Args)]
pub struct LabArgs {
    #[command(subcommand)]
    pub action: LabAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum LabAction {
    /// Start N SSH hosts in network namespaces and write their hosts file.
    Up {
        #[arg(long, value_name = "FILE")]
        hosts_file: PathBuf,
        #[arg(long, value_name = "N", default_value_t = 3)]
        nodes: usize,
    },
    /// Remove the lab of a hosts file (its sshds, namespaces, bridge and files).
    Down {
        #[arg(long, value_name = "FILE")]
        hosts_file: PathBuf,
    },
}

pub fn cli(args: LabArgs) -> anyhow::Result<i32> {
    match args.action {
        LabAction::Up { hosts_file, nodes } => {
            let record = up(&hosts_file, nodes)?;
            println!(
                "lab up: {nodes} hosts ({}), hosts file {}",
                record.namespaces.join(", "),
                record.hosts_file.display()
            );
            println!(
                "try: splitbrain test --hosts {} --workload register --nemesis partition,kill,pause --time-limit 10",
                record.hosts_file.display()
            );
        }
        LabAction::Down { hosts_file } => {
            for item in down(&hosts_file)? {
                println!("removed {item}");
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_names_are_not_netns_names() {
        for name in ["sbl1a2f-n1", "sbl00ffbr", "sbl00ffh3", "sbl00ffp10"] {
            assert!(is_lab_name(name), "{name}");
            assert!(!splitbrain_nemesis::net::netns::is_our_name(name), "{name}");
        }
        for name in ["sb1a2f-n1", "sblxyzw-n1", "sbl1a2f", "eth0"] {
            assert!(!is_lab_name(name), "{name}");
        }
    }
}
