//! A real etcd v3 cluster on loopback for the fleet tests: `EtcdCluster::start(3).await` runs
//! three `etcd` processes on free ports of 127.0.0.1 with their data on `/dev/shm`, waits until
//! they have elected a leader, and lets a test kill, freeze (SIGSTOP) and thaw (SIGCONT) single
//! members. Dropping the cluster kills every member.
//!
//! etcd is required, never optional: without it these tests fail and say how to install it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};
use tokio::time::Instant;

/// How long a cluster may take to elect a leader and answer, at start or after a change.
pub const ETCD_PATIENCE: Duration = Duration::from_secs(20);

/// Per-request bound when the harness talks to etcd (a stopped member must not hang it).
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);

/// The etcd binary: `$ETCD_BIN` when set, else `etcd` on `PATH`.
fn etcd_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("ETCD_BIN") {
        return PathBuf::from(bin);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("etcd"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "etcd is not installed: the fleet tests need a real etcd v3 server \
             (Debian/Ubuntu: `apt-get install etcd-server`), or ETCD_BIN pointing at one"
        )
    })
}

/// Where the members' data dirs go: `/dev/shm` (a tmpfs, so fsyncs cost nothing) when there is
/// one, else the default temp dir.
fn data_root() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("meridian-etcd-")
            .tempdir_in(shm)
    {
        return dir;
    }
    tempfile::Builder::new()
        .prefix("meridian-etcd-")
        .tempdir()
        .expect("temp dir for etcd data")
}

fn free_ports(n: usize) -> Vec<u16> {
    crate::support::child_ports(n)
}

/// One member: its ports, and its process while it runs.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// SIGSTOPped by the test (a frozen member holds connections open but never answers).
    stopped: bool,
}

impl Member {
    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    fn running(&self) -> bool {
        self.child.is_some() && !self.stopped
    }
}

/// A cluster whose ports are chosen but whose members are not running yet, so a test can hand
/// the endpoints to Meridian first (etcd unreachable at start) and start the cluster later.
pub struct PlannedCluster {
    members: Vec<Member>,
    token: String,
    root: tempfile::TempDir,
}

/// A running etcd cluster on loopback; dropping it kills every member.
pub struct EtcdCluster {
    members: Vec<Member>,
    root: tempfile::TempDir,
}

impl EtcdCluster {
    /// Starts `n` members and waits until they have a leader and answer (at most
    /// [`ETCD_PATIENCE`]).
    pub async fn start(n: usize) -> EtcdCluster {
        EtcdCluster::plan(n).start().await
    }

    /// Chooses ports and data dirs for `n` members without starting them.
    pub fn plan(n: usize) -> PlannedCluster {
        assert!(n >= 1, "a cluster has at least one member");
        let root = data_root();
        let ports = free_ports(2 * n);
        let token = format!(
            "meridian-test-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let members = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: ports[2 * i],
                peer_port: ports[2 * i + 1],
                data_dir: root.path().join(format!("m{i}.etcd")),
                log: root.path().join(format!("m{i}.log")),
                child: None,
                stopped: false,
            })
            .collect();
        PlannedCluster {
            members,
            token,
            root,
        }
    }

    /// Every member's client URL (`http://127.0.0.1:PORT`), in member order, whether it runs
    /// or not.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::endpoint).collect()
    }

    /// The client URLs of the members that run and are not frozen.
    pub fn running_endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.running())
            .map(Member::endpoint)
            .collect()
    }

    /// How many members the cluster was started with.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Kills member `i` (SIGKILL) and reaps it.
    pub fn kill(&mut self, i: usize) {
        let member = &mut self.members[i];
        if let Some(mut child) = member.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        member.stopped = false;
    }

    /// Kills every member.
    pub fn kill_all(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }

    /// Freezes member `i` with SIGSTOP: its sockets stay open, it answers nothing.
    pub fn stop(&mut self, i: usize) {
        self.signal(i, "-STOP");
        self.members[i].stopped = true;
    }

    /// Thaws member `i` (SIGCONT) after [`EtcdCluster::stop`].
    pub fn cont(&mut self, i: usize) {
        self.signal(i, "-CONT");
        self.members[i].stopped = false;
    }

    fn signal(&self, i: usize, signal: &str) {
        let child = self.members[i]
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("etcd member {i} is not running"));
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill {signal} {} failed", child.id());
    }

    /// A client of the running members (not the killed or frozen ones: the harness reads and
    /// writes the truth; riding out a dead endpoint is what the code under test must do).
    pub async fn client(&self) -> Client {
        connect(&self.running_endpoints())
            .await
            .unwrap_or_else(|e| panic!("etcd client: {e}\n{}", self.logs()))
    }

    /// The index of the member that is the leader now, asked of the running members.
    pub async fn leader(&self) -> usize {
        let deadline = Instant::now() + ETCD_PATIENCE;
        loop {
            match self.leader_now().await {
                Ok(i) => return i,
                Err(e) if Instant::now() >= deadline => {
                    panic!(
                        "etcd: no leader after {ETCD_PATIENCE:?}: {e}\n{}",
                        self.logs()
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// One look: every running member's status; the leader is the member whose own ID is the
    /// leader ID they report.
    async fn leader_now(&self) -> Result<usize, String> {
        let mut ids = Vec::new();
        let mut leader = None;
        for (i, member) in self.members.iter().enumerate() {
            if !member.running() {
                continue;
            }
            let (id, said) = member_status(&member.endpoint()).await?;
            if said == 0 {
                return Err(format!("member {i} knows no leader"));
            }
            if leader.is_some_and(|l| l != said) {
                return Err(format!(
                    "members disagree on the leader ({said:x} vs {leader:x?})"
                ));
            }
            leader = Some(said);
            ids.push((i, id));
        }
        let leader = leader.ok_or("no member running")?;
        ids.iter()
            .find(|(_, id)| *id == leader)
            .map(|(i, _)| *i)
            .ok_or_else(|| format!("the leader {leader:x} is not a running member"))
    }

    /// Waits until the running members agree on a leader and the cluster commits a write (a
    /// quorum is up), at most [`ETCD_PATIENCE`].
    pub async fn wait_healthy(&self) {
        let deadline = Instant::now() + ETCD_PATIENCE;
        let mut last = String::new();
        while Instant::now() < deadline {
            for (i, member) in self.members.iter().enumerate() {
                // A member that exited (a bad flag, a port taken meanwhile) never comes up.
                if let Some(child) = &member.child
                    && exited(child.id())
                {
                    panic!("etcd member {i} exited\n{}", self.logs());
                }
            }
            match self.healthy_now().await {
                Ok(()) => return,
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "etcd cluster not healthy after {ETCD_PATIENCE:?}: {last}\n{}",
            self.logs()
        );
    }

    async fn healthy_now(&self) -> Result<(), String> {
        self.leader_now().await?;
        let mut client = connect(&self.running_endpoints()).await?;
        client
            .put("/meridian-test-harness/health", "ok", None)
            .await
            .map_err(|e| format!("put: {e}"))?;
        Ok(())
    }

    /// Every member's stderr, for failure messages.
    pub fn logs(&self) -> String {
        logs(&self.members)
    }

    /// Where the members' data and logs are.
    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

impl PlannedCluster {
    /// Every member's client URL, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::endpoint).collect()
    }

    /// Starts every member and waits until the cluster is healthy.
    pub async fn start(mut self) -> EtcdCluster {
        let bin = etcd_binary();
        let initial_cluster = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        for member in &mut self.members {
            let log = std::fs::File::create(&member.log).expect("etcd log file");
            let mut command = Command::new(&bin);
            // Configuration goes on the command line only: an inherited ETCD_* variable would
            // change the cluster under the test (and etcd refuses a flag also set that way).
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("ETCD") {
                    command.env_remove(&key);
                }
            }
            command
                .arg("--name")
                .arg(&member.name)
                .arg("--data-dir")
                .arg(&member.data_dir)
                .arg("--initial-cluster")
                .arg(&initial_cluster)
                .arg("--initial-advertise-peer-urls")
                .arg(member.peer_url())
                .arg("--listen-peer-urls")
                .arg(member.peer_url())
                .arg("--listen-client-urls")
                .arg(member.endpoint())
                .arg("--advertise-client-urls")
                .arg(member.endpoint())
                .arg("--initial-cluster-state")
                .arg("new")
                .arg("--initial-cluster-token")
                .arg(&self.token)
                .args(["--heartbeat-interval", "50"])
                .args(["--election-timeout", "500"])
                .args(["--grpc-keepalive-min-time", "500ms"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log);
            let child = command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
            member.child = Some(child);
        }
        let cluster = EtcdCluster {
            members: std::mem::take(&mut self.members),
            root: self.root,
        };
        cluster.wait_healthy().await;
        cluster
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(mut child) = member.child.take() {
                // SIGKILL works on a SIGSTOPped process too.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A client of `endpoints` with short timeouts, so a dead or frozen member costs one timeout.
pub async fn connect(endpoints: &[String]) -> Result<Client, String> {
    let options = ConnectOptions::new()
        .with_connect_timeout(REQUEST_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT);
    tokio::time::timeout(
        REQUEST_TIMEOUT * 2,
        Client::connect(endpoints, Some(options)),
    )
    .await
    .map_err(|_| format!("connect to {endpoints:?}: timed out"))?
    .map_err(|e| format!("connect to {endpoints:?}: {e}"))
}

/// One member's own ID and the leader ID it reports.
async fn member_status(endpoint: &str) -> Result<(u64, u64), String> {
    let mut client = connect(&[endpoint.to_string()]).await?;
    let status = tokio::time::timeout(REQUEST_TIMEOUT, client.status())
        .await
        .map_err(|_| format!("{endpoint}: status timed out"))?
        .map_err(|e| format!("{endpoint}: status: {e}"))?;
    let id = status
        .header()
        .map(|h| h.member_id())
        .ok_or_else(|| format!("{endpoint}: status without a header"))?;
    Ok((id, status.leader()))
}

/// Whether process `pid` (a child not yet reaped) has exited: gone, or a zombie.
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

fn logs(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| {
            let text = std::fs::read_to_string(&m.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!(
                "--- etcd {} ({}) stderr, last lines:\n{}",
                m.name,
                m.endpoint(),
                tail.join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn cluster_of_three_elects_a_leader_and_survives_one_member_down() {
    let mut cluster = EtcdCluster::start(3).await;
    let endpoints = cluster.endpoints();
    assert_eq!(endpoints.len(), 3);
    assert!(
        endpoints.iter().all(|e| e.starts_with("http://127.0.0.1:")),
        "{endpoints:?}"
    );

    let mut client = cluster.client().await;
    client.put("/harness/k", "v1", None).await.expect("put");
    let got = client.get("/harness/k", None).await.expect("get");
    assert_eq!(got.kvs()[0].value(), b"v1");

    // Frozen leader: the other two elect a new one and keep committing.
    let leader = cluster.leader().await;
    cluster.stop(leader);
    cluster.wait_healthy().await;
    let second = cluster.leader().await;
    assert_ne!(second, leader, "a frozen member cannot stay the leader");
    cluster.cont(leader);
    cluster.wait_healthy().await;

    // One member killed: two of three are a quorum, writes still commit and read back.
    let victim = cluster.leader().await;
    cluster.kill(victim);
    cluster.wait_healthy().await;
    let mut client = cluster.client().await;
    let deadline = Instant::now() + ETCD_PATIENCE;
    loop {
        // The client may first pick the dead endpoint; each attempt is bounded by its timeout.
        match client.put("/harness/k", "v2", None).await {
            Ok(_) => break,
            Err(e) if Instant::now() >= deadline => {
                panic!("no write with one member down: {e}\n{}", cluster.logs())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let got = client.get("/harness/k", None).await.expect("get");
    assert_eq!(got.kvs()[0].value(), b"v2");
    assert_ne!(cluster.leader().await, victim);
}
