//! Unit tests of loading, validating and expanding descriptions: the built-in etcd
//! description, and one test per kind of mistake, each asserting the file, line and key
//! the error names.

use super::*;

/// A small valid description; the comment is each line's number, which the error
/// tests below refer to.
const BASE: &str = r#"name = "x"
about = "a test database"
[node]
ports = { client = 7000, peer = 7001 }
start = ["x-server", "--port", "{port.client}"]
[ready]
tcp = "{addr}:{port.client}"
[wipe]
paths = ["{data_dir}"]
[crash]
patterns = ["^panic:"]
[client]
kind = "etcd"
port = "client"
"#;

/// `BASE` with its 1-based line `line` replaced by `with` (which may be several lines,
/// or empty to drop it).
fn edit(line: usize, with: &str) -> String {
    let mut lines: Vec<&str> = BASE.lines().collect();
    lines[line - 1] = with;
    let mut out = lines
        .into_iter()
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}

fn load(text: &str) -> Result<Description, DescriptionError> {
    Description::from_str(text, Source::File(PathBuf::from("test.toml")))
}

/// The error of loading `text`, asserting it starts with `prefix` (file, line, key).
fn error_of(text: &str, prefix: &str) -> String {
    let message = match load(text) {
        Ok(_) => panic!("expected an error starting {prefix:?} from:\n{text}"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.starts_with(prefix),
        "expected {prefix:?}, got {message:?} from:\n{text}"
    );
    message
}

fn cluster3() -> ClusterVars {
    ClusterVars {
        nodes: (1..=3)
            .map(|i| (format!("n{i}"), format!("10.0.0.{i}").parse().expect("ip")))
            .collect(),
        token: "run-42".into(),
    }
}

fn node(i: u64, state: ClusterState) -> NodeVars {
    NodeVars {
        name: format!("n{i}"),
        id: i,
        addr: format!("10.0.0.{i}").parse().expect("ip"),
        data_dir: PathBuf::from(format!("/store/run/n{i}/data")),
        node_dir: PathBuf::from(format!("/store/run/n{i}")),
        state,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn base_is_valid() {
    let d = load(BASE).expect("valid");
    assert_eq!(d.name, "x");
    assert_eq!(d.stop_grace(), DEFAULT_STOP_GRACE);
    assert_eq!(d.ready_timeout(), DEFAULT_READY_TIMEOUT);
    assert_eq!(d.client_port(), Some(7000));
}

#[test]
fn builtin_etcd_parses() {
    let d = Description::resolve("etcd").expect("built-in etcd");
    assert_eq!(d.name, "etcd");
    assert_eq!(d.source, Source::Builtin("etcd"));
    assert_eq!(
        d.requires,
        vec![Requirement {
            command: "etcd".into(),
            package: Some("etcd-server".into())
        }]
    );
    assert_eq!(
        d.ports(),
        &BTreeMap::from([("client".to_string(), 2379), ("peer".to_string(), 2380)])
    );
    assert_eq!(d.stop_grace(), Duration::from_secs(2));
    assert_eq!(d.ready_timeout(), Duration::from_secs(30));
    assert_eq!(
        d.client(),
        &ClientSpec::Etcd {
            port: "client".into()
        }
    );
    assert_eq!(d.crash.patterns(), ["^panic:", "fatal error:", "DATA RACE"]);
    assert_eq!(builtin_names(), ["etcd"]);
    assert_eq!(
        builtin_list(),
        vec![("etcd", "etcd 3.4+ through its v3 JSON gateway".to_string())]
    );
    assert!(builtin_text("etcd").is_some_and(|t| t.contains("[client]")));
}

#[test]
fn etcd_expands_for_a_three_node_cluster() {
    let d = Description::resolve("etcd").expect("built-in etcd");
    let cluster = cluster3();
    let (argv, env) = d
        .start_command(&node(2, ClusterState::New), &cluster)
        .expect("expands");
    assert_eq!(
        argv,
        strings(&[
            "etcd",
            "--name",
            "n2",
            "--data-dir",
            "/store/run/n2/data",
            "--listen-client-urls",
            "http://10.0.0.2:2379",
            "--advertise-client-urls",
            "http://10.0.0.2:2379",
            "--listen-peer-urls",
            "http://10.0.0.2:2380",
            "--initial-advertise-peer-urls",
            "http://10.0.0.2:2380",
            "--initial-cluster",
            "n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380,n3=http://10.0.0.3:2380",
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            "run-42",
            "--snapshot-count",
            "100",
        ])
    );
    assert!(env.is_empty());

    let (argv, _) = d
        .start_command(&node(3, ClusterState::Existing), &cluster)
        .expect("expands");
    assert_eq!(argv[16], "existing");

    assert_eq!(
        d.ready_probe(&node(2, ClusterState::New), &cluster),
        Probe::Http {
            url: "http://10.0.0.2:2379/health".into(),
            expect: Some(r#""health":"true""#.into()),
        }
    );
    assert_eq!(
        d.wipe_paths(&node(2, ClusterState::New), &cluster)
            .expect("inside"),
        vec![PathBuf::from("/store/run/n2/data")]
    );
    assert!(d
        .log_files(&node(2, ClusterState::New), &cluster)
        .is_empty());
}

#[test]
fn env_logs_and_tcp_probe_expand() {
    let text = edit(
        5,
        "start = [\"x-server\", \"{{literal}}\", \"--join={peers}\"]\n\
         peer = \"{id}@{addr}:{port.peer}\"\npeer_separator = \" \"\n\
         env = { X_NODES = \"{nodes}\", X_DIR = \"{node_dir}\" }\n\
         logs = [\"{node_dir}/x.log\"]",
    );
    let d = load(&text).expect("valid");
    let cluster = cluster3();
    let n1 = node(1, ClusterState::New);
    let (argv, env) = d.start_command(&n1, &cluster).expect("expands");
    assert_eq!(
        argv,
        strings(&[
            "x-server",
            "{literal}",
            "--join=1@10.0.0.1:7001 2@10.0.0.2:7001 3@10.0.0.3:7001"
        ])
    );
    assert_eq!(
        env,
        vec![
            ("X_DIR".to_string(), "/store/run/n1".to_string()),
            ("X_NODES".to_string(), "3".to_string())
        ]
    );
    assert_eq!(
        d.log_files(&n1, &cluster),
        vec![PathBuf::from("/store/run/n1/x.log")]
    );
    assert_eq!(
        d.ready_probe(&n1, &cluster),
        Probe::Tcp("10.0.0.1:7000".into())
    );
}

#[test]
fn unknown_key() {
    let m = error_of(
        &edit(5, "start = [\"x\"]\nstrat = [\"x\"]"),
        "test.toml:6: node.strat: unknown key, expected one of `ports`, `start`",
    );
    assert!(!m.contains("field"), "{m}");
    error_of(
        &edit(1, "name = \"x\"\nnmae = \"y\""),
        "test.toml:2: nmae: unknown key",
    );
    error_of(
        &edit(
            12,
            "[[requires]]\ncommand = \"x\"\npakage = \"y\"\n[client]",
        ),
        "test.toml:14: requires[0].pakage: unknown key, expected `command` or `package`",
    );
}

#[test]
fn wrong_type() {
    error_of(
        &edit(5, "start = [\"x\"]\nstop_grace = \"2\""),
        "test.toml:6: node.stop_grace: wrong type: string \"2\", expected f64",
    );
    error_of(
        &edit(5, "start = [\"x\", 3]"),
        "test.toml:5: node.start[1]: wrong type: integer `3`, expected a string",
    );
    error_of(
        &edit(4, "ports = { client = 70000 }"),
        "test.toml:4: node.ports.client: invalid value: integer `70000`, expected u16",
    );
}

#[test]
fn missing_required_key() {
    error_of(
        &edit(5, ""),
        "test.toml:3: node.start: missing required key",
    );
    error_of(&edit(1, ""), "test.toml:1: name: missing required key");
    error_of(
        &edit(14, ""),
        "test.toml:12: client.port: missing required key",
    );
}

#[test]
fn bad_regex() {
    error_of(
        &edit(11, "patterns = [\"^panic:\", \"fatal (\"]"),
        "test.toml:11: crash.patterns[1]: bad regex \"fatal (\"",
    );
}

#[test]
fn unknown_placeholder() {
    error_of(
        &edit(5, "start = [\"x-server\", \"--name\", \"{nmae}\"]"),
        "test.toml:5: node.start[2]: unknown placeholder `{nmae}`; known: {name}",
    );
    error_of(
        &edit(7, "tcp = \"{addr}:{port.admin}\""),
        "test.toml:7: ready.tcp: `{port.admin}`: no port named `admin` in node.ports (named: `client`, `peer`)",
    );
    error_of(
        &edit(9, "paths = [\"{data_dir}/{peers}\"]"),
        "test.toml:9: wipe.paths[0]: `{peers}` is not allowed here",
    );
    error_of(
        &edit(5, "start = [\"x\", \"{peers}\"]"),
        "test.toml:5: node.start[1]: uses {peers} but node.peer",
    );
    error_of(
        &edit(5, "start = [\"x\"]\npeer = \"{data_dir}\""),
        "test.toml:6: node.peer: `{data_dir}` is not allowed here",
    );
    error_of(
        &edit(5, "start = [\"x\", \"{oops\"]"),
        "test.toml:5: node.start[1]: unclosed `{`",
    );
}

#[test]
fn ready_needs_exactly_one_of_http_and_tcp() {
    error_of(
        &edit(
            7,
            "http = \"http://{addr}:{port.client}/\"\ntcp = \"{addr}:{port.client}\"",
        ),
        "test.toml:8: ready.tcp: give either ready.http or ready.tcp, not both",
    );
    error_of(
        &edit(7, "timeout = 5.0"),
        "test.toml:6: ready: give either http",
    );
    error_of(
        &edit(7, "http = \"https://{addr}:{port.client}/\""),
        "test.toml:7: ready.http: https is not supported",
    );
    error_of(
        &edit(7, "tcp = \"{addr}:{port.client}\"\nexpect = \"ok\""),
        "test.toml:8: ready.expect: only an http probe",
    );
    error_of(
        &edit(7, "tcp = \"{addr}:{port.client}\"\ntimeout = -1.0"),
        "test.toml:8: ready.timeout: -1 seconds",
    );
}

#[test]
fn wipe_paths_stay_inside_the_node_folder() {
    for bad in ["/var/lib/x", "{data_dir}/../..", "{name}", "{data_dir}x"] {
        error_of(
            &edit(9, &format!("paths = [\"{{data_dir}}/ok\", \"{bad}\"]")),
            "test.toml:9: wipe.paths[1]: ",
        );
    }
    error_of(
        &edit(9, "paths = [\"{node_dir}\"]"),
        "test.toml:9: wipe.paths[0]: {node_dir} itself",
    );
    // A data_dir the driver put outside node_dir is caught on expansion.
    let d = load(BASE).expect("valid");
    let mut n = node(1, ClusterState::New);
    n.data_dir = PathBuf::from("/elsewhere");
    let e = d.wipe_paths(&n, &cluster3()).expect_err("outside");
    assert!(
        e.to_string()
            .starts_with("test.toml: wipe.paths[0]: `{data_dir}` expands to /elsewhere"),
        "{e}"
    );
}

#[test]
fn log_paths_stay_inside_the_node_folder() {
    for bad in [
        "/dev/zero",
        "/var/log/syslog",
        "{data_dir}/../../x.log",
        "{name}.log",
    ] {
        error_of(
            &edit(
                5,
                &format!("start = [\"x\"]\nlogs = [\"{{node_dir}}/ok.log\", \"{bad}\"]"),
            ),
            "test.toml:6: node.logs[1]: ",
        );
    }
    let d = load(&edit(5, "start = [\"x\"]\nlogs = [\"{data_dir}/x.log\"]")).expect("valid");
    assert_eq!(
        d.log_files(&node(1, ClusterState::New), &cluster3()),
        vec![PathBuf::from("/store/run/n1/data/x.log")]
    );
}

#[test]
fn client_kind_and_port() {
    error_of(
        &edit(13, "kind = \"redis\""),
        "test.toml:13: client.kind: unknown client kind `redis`; expected one of `etcd`, `bundled`",
    );
    error_of(
        &edit(14, "port = \"admin\""),
        "test.toml:14: client.port: `admin` is not a port named in node.ports",
    );
    let d = load(&edit(13, "kind = \"bundled\"")).expect("valid");
    assert_eq!(d.client().kind(), "bundled");
}

#[test]
fn syntax_errors_have_a_line() {
    error_of(&edit(8, "[wipe"), "test.toml:8: ");
}

#[test]
fn builtin_errors_name_the_builtin() {
    let e =
        Description::from_str(&edit(13, "kind = \"x\""), Source::Builtin("etcd")).expect_err("bad");
    assert!(
        e.to_string().starts_with("built-in etcd:13: client.kind:"),
        "{e}"
    );
}

#[test]
fn resolve_names_and_paths() {
    assert!(matches!(
        Description::resolve("bundled"),
        Err(DescriptionError::Bundled)
    ));
    let e = Description::resolve("mongo").expect_err("unknown");
    assert!(e.to_string().contains("unknown database `mongo`"), "{e}");

    let dir = std::env::temp_dir().join(format!("splitbrain-db-resolve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("mine.toml");
    std::fs::write(&file, edit(13, "kind = \"x\"")).expect("write");
    let arg = file.display().to_string();
    let e = Description::resolve(&arg).expect_err("bad kind");
    assert!(
        e.to_string()
            .starts_with(&format!("{arg}:13: client.kind:")),
        "{e}"
    );
    std::fs::write(&file, BASE).expect("write");
    let d = Description::resolve(&arg).expect("valid");
    assert_eq!(d.source, Source::File(file.clone()));
    let missing = dir.join("missing.toml").display().to_string();
    let e = Description::resolve(&missing).expect_err("missing");
    assert!(matches!(e, DescriptionError::Read { .. }), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn requirements_name_the_package() {
    let text = edit(
        12,
        "[[requires]]\ncommand = \"splitbrain-surely-not-installed\"\npackage = \"sb-pkg\"\n[client]",
    );
    let d = load(&text).expect("valid");
    let e = d.check_requirements().expect_err("missing");
    assert_eq!(
        e.to_string(),
        "splitbrain-surely-not-installed is not installed: apt-get install sb-pkg"
    );
    let text = edit(12, "[[requires]]\ncommand = \"sh\"\n[client]");
    load(&text)
        .expect("valid")
        .check_requirements()
        .expect("sh is installed");
}

/// A folder with a description that names `start.sh` in its start command and `conf/`
/// in `[files] upload`, beside files it does not name; removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str, files_section: &str) -> Folder {
        let dir = std::env::temp_dir().join(format!(
            "splitbrain-db-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(dir.join("conf/deep")).unwrap();
        std::fs::create_dir_all(dir.join(".ssh")).unwrap();
        std::fs::write(dir.join(".ssh/id_ed25519"), "secret").unwrap();
        std::fs::write(dir.join("secret.txt"), "secret").unwrap();
        std::fs::write(dir.join("start.sh"), "exec x-server").unwrap();
        std::fs::write(dir.join("conf/a.conf"), "a").unwrap();
        std::fs::write(dir.join("conf/deep/b.conf"), "b").unwrap();
        let text = BASE.replace(
            r#"start = ["x-server", "--port", "{port.client}"]"#,
            r#"start = ["sh", "{description_dir}/start.sh", "--port", "{port.client}"]
env = { X_CONF = "--config={description_dir}/conf/a.conf" }"#,
        ) + files_section;
        std::fs::write(dir.join("x.toml"), text).unwrap();
        Folder(dir)
    }

    fn load(&self) -> Result<Description, DescriptionError> {
        Description::resolve(&self.0.join("x.toml").display().to_string())
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn only_the_files_a_description_names_are_uploaded() {
    let f = Folder::new("named", "[files]\nupload = [\"conf/\"]\n");
    let desc = f.load().unwrap();
    let files = desc.upload_files().unwrap();
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(
        names,
        [
            "conf",
            "conf/a.conf",
            "conf/deep",
            "conf/deep/b.conf",
            "start.sh"
        ],
        "{names:?}"
    );
    // Without the list, only what the templates name goes.
    let f = Folder::new("templates", "");
    let names: Vec<String> = f
        .load()
        .unwrap()
        .upload_files()
        .unwrap()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(names, ["conf/a.conf", "start.sh"], "{names:?}");
    assert!(Description::resolve("etcd")
        .unwrap()
        .upload_files()
        .unwrap()
        .is_empty());
}

#[test]
fn an_upload_list_is_confined_to_the_folder() {
    for (entry, why) in [
        ("/etc/passwd", "relative to the description's folder"),
        ("../secret", "`..`"),
        ("", "empty"),
    ] {
        let text = format!("{BASE}[files]\nupload = [\"conf\", {entry:?}]\n");
        let e = load(&text).unwrap_err().to_string();
        assert!(
            e.contains("test.toml:16: files.upload[1]") && e.contains(why),
            "{e}"
        );
    }
    // A link that leaves the folder is refused when the files are collected.
    let f = Folder::new("link", "[files]\nupload = [\"conf/\"]\n");
    std::os::unix::fs::symlink("/etc/hostname", f.0.join("conf/out.conf")).unwrap();
    let e = f.load().unwrap().upload_files().unwrap_err().to_string();
    assert!(e.contains("conf/out.conf") && e.contains("outside"), "{e}");
    std::fs::remove_file(f.0.join("conf/out.conf")).unwrap();
    // One that stays inside is taken (its target's content goes).
    std::os::unix::fs::symlink(f.0.join("conf/a.conf"), f.0.join("conf/in.conf")).unwrap();
    let files = f.load().unwrap().upload_files().unwrap();
    assert!(files.contains(&PathBuf::from("conf/in.conf")), "{files:?}");
    // A named file that is not there.
    let f = Folder::new("missing", "[files]\nupload = [\"nothere.txt\"]\n");
    let e = f.load().unwrap().upload_files().unwrap_err().to_string();
    assert!(
        e.contains("nothere.txt") && e.contains("does not exist"),
        "{e}"
    );
}

#[test]
fn too_much_to_upload_is_refused_naming_the_file_and_the_limit() {
    let f = Folder::new("big", "[files]\nupload = [\"conf/\"]\n");
    std::fs::File::create(f.0.join("conf/huge.bin"))
        .unwrap()
        .set_len(UPLOAD_LIMIT + 1)
        .unwrap();
    let e = f.load().unwrap().upload_files().unwrap_err().to_string();
    assert!(
        e.contains("conf/huge.bin") && e.contains("over the limit of 64 MiB"),
        "{e}"
    );
}
