//! A private PostgreSQL primary with a synchronous streaming standby, for the failover test
//! (issue 14): never the shared server.
//!
//! [`PgStandbyPair::start`] runs the distribution's server binaries (`initdb`, `pg_ctl`,
//! `pg_basebackup -R`) in a temporary directory, on two free ports, with trust
//! authentication: the primary names the standby in `synchronous_standby_names`, so a
//! commit is acknowledged only once the standby has it. The standby is set up as a failover
//! target is: without a synchronous standby of its own (once promoted, it would otherwise
//! wait for one forever). The test then crashes the primary and promotes the standby.
//!
//! PostgreSQL refuses to run as root: under root (CI, the development machines) every
//! server command runs as the `postgres` system user, who owns the directory. Dropping the
//! pair stops both servers (`pg_ctl stop -m immediate`) and removes the directory.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The standby's name in the primary's `synchronous_standby_names`.
const STANDBY_NAME: &str = "standby";

/// One server of the pair.
#[derive(Debug)]
struct Node {
    port: u16,
    data: PathBuf,
    running: bool,
}

/// A primary and its synchronous standby, owned by one test.
#[derive(Debug)]
pub struct PgStandbyPair {
    bin: PathBuf,
    dir: PathBuf,
    /// The system user's uid and gid the servers run as, when this process is root.
    run_as: Option<(u32, u32)>,
    primary: Node,
    standby: Node,
}

impl PgStandbyPair {
    /// Creates the primary, starts it, clones the standby from it with `pg_basebackup -R`,
    /// starts the standby and waits until the primary reports it as its synchronous
    /// standby. Blocking: a minute at most.
    pub fn start() -> Self {
        let bin = server_binaries();
        let run_as = postgres_user_if_root();
        let dir = std::env::temp_dir().join(format!(
            "sessiond-pg-failover-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory for PostgreSQL");
        let mut pair = Self {
            bin,
            primary: Node {
                port: free_port(),
                data: dir.join("primary"),
                running: false,
            },
            standby: Node {
                port: free_port(),
                data: dir.join("standby"),
                running: false,
            },
            dir,
            run_as,
        };
        // From here on, dropping the pair removes the directory whatever fails.
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&pair.dir, Some(uid), Some(gid))
                .expect("the temporary directory given to the postgres user");
        }
        pair.init_primary();
        pair.clone_standby();
        pair.wait_until_synchronous();
        pair
    }

    /// The primary's port.
    pub fn primary_port(&self) -> u16 {
        self.primary.port
    }

    /// The standby's port.
    pub fn standby_port(&self) -> u16 {
        self.standby.port
    }

    /// `database` on both servers, as sessiond is given it: whichever accepts writes.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{database}\
             ?target_session_attrs=read-write",
            self.primary.port, self.standby.port
        )
    }

    /// `database` on the primary alone.
    pub fn primary_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            self.primary.port
        )
    }

    /// `database` on the standby alone (the new primary after [`Self::promote_standby`]).
    pub fn standby_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            self.standby.port
        )
    }

    /// Runs `sql` with `psql` on the server at `port`, in the `postgres` database; its
    /// unaligned output.
    pub fn psql(&self, port: u16, sql: &str) -> String {
        let output = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-X", "-A", "-t"])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("psql runs");
        String::from_utf8_lossy(&checked(output, "psql"))
            .trim()
            .to_owned()
    }

    /// Stops the primary as a crash would (`pg_ctl stop -m immediate`): no shutdown
    /// checkpoint, every connection cut.
    pub fn crash_primary(&mut self) {
        self.pg_ctl(&self.primary, &["stop", "-m", "immediate", "-w"]);
        self.primary.running = false;
    }

    /// Promotes the standby (`pg_ctl promote`) and waits until it accepts writes.
    pub fn promote_standby(&mut self) {
        self.pg_ctl(&self.standby, &["promote", "-w", "-t", "60"]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.psql(self.standby.port, "SELECT pg_is_in_recovery()") != "f" {
            assert!(Instant::now() < deadline, "the standby was not promoted");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn init_primary(&mut self) {
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(&self.primary.data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "--no-instructions"])
            .output()
            .expect("initdb runs");
        checked(output, "initdb");
        append(
            &self.primary.data.join("postgresql.conf"),
            &format!(
                "\n# sessiond failover test\n\
                 port = {port}\n\
                 listen_addresses = '127.0.0.1'\n\
                 unix_socket_directories = '{dir}'\n\
                 max_connections = 80\n\
                 shared_buffers = 16MB\n\
                 fsync = off\n\
                 full_page_writes = off\n\
                 wal_level = replica\n\
                 max_wal_senders = 4\n\
                 synchronous_commit = on\n\
                 synchronous_standby_names = '{STANDBY_NAME}'\n",
                port = self.primary.port,
                dir = self.dir.display(),
            ),
        );
        self.start_node(true);
    }

    fn clone_standby(&mut self) {
        let output = self
            .command("pg_basebackup")
            .args(["-h", "127.0.0.1", "-p", &self.primary.port.to_string()])
            .args(["-U", "postgres", "-D"])
            .arg(&self.standby.data)
            .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"])
            .output()
            .expect("pg_basebackup runs");
        checked(output, "pg_basebackup");
        // The copied configuration is the primary's; later lines win. The standby's
        // walreceiver names itself after `cluster_name`, the name the primary waits for.
        append(
            &self.standby.data.join("postgresql.conf"),
            &format!(
                "\n# the standby\n\
                 port = {port}\n\
                 cluster_name = '{STANDBY_NAME}'\n\
                 synchronous_standby_names = ''\n",
                port = self.standby.port,
            ),
        );
        self.start_node(false);
    }

    fn wait_until_synchronous(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let query = format!(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = '{STANDBY_NAME}'"
        );
        while self.psql(self.primary.port, &query) != "sync" {
            assert!(
                Instant::now() < deadline,
                "the standby did not become synchronous"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn start_node(&mut self, primary: bool) {
        let node = if primary {
            &self.primary
        } else {
            &self.standby
        };
        let log = self.dir.join(if primary {
            "primary.log"
        } else {
            "standby.log"
        });
        self.pg_ctl(
            node,
            &["start", "-w", "-t", "60", "-l", &log.display().to_string()],
        );
        if primary {
            self.primary.running = true;
        } else {
            self.standby.running = true;
        }
    }

    fn pg_ctl(&self, node: &Node, args: &[&str]) {
        let output = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&node.data)
            .args(args)
            .output()
            .expect("pg_ctl runs");
        checked(output, &format!("pg_ctl {}", args.join(" ")));
    }

    /// A server binary, run as the server's system user, in the pair's directory.
    fn command(&self, tool: &str) -> Command {
        let mut command = Command::new(self.bin.join(tool));
        command
            .current_dir(&self.dir)
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command
    }
}

impl Drop for PgStandbyPair {
    fn drop(&mut self) {
        for node in [&self.primary, &self.standby] {
            if node.running || node.data.join("postmaster.pid").exists() {
                let _ = self
                    .command("pg_ctl")
                    .arg("-D")
                    .arg(&node.data)
                    .args(["stop", "-m", "immediate", "-w"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest server binaries of the distribution (`/usr/lib/postgresql/<version>/bin`),
/// or `PG_BINDIR` when set.
fn server_binaries() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries under /usr/lib/postgresql (or PG_BINDIR)")
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("initdb under /usr/lib/postgresql/<version>/bin")
}

/// The `postgres` user's uid and gid when this process runs as root (PostgreSQL refuses
/// root); `None` otherwise, when the servers run as this user.
fn postgres_user_if_root() -> Option<(u32, u32)> {
    let me = std::fs::metadata("/proc/self").expect("/proc/self").uid();
    if me != 0 {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let output = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("id runs");
        String::from_utf8_lossy(&checked(output, "id postgres"))
            .trim()
            .parse()
            .expect("a numeric id")
    };
    Some((id("-u"), id("-g")))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port()
}

fn append(file: &Path, text: &str) {
    use std::io::Write as _;
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .expect("the server's configuration file");
    config
        .write_all(text.as_bytes())
        .expect("the configuration written");
}

/// The command's standard output; a failed command fails the test with what it said.
fn checked(output: Output, what: &str) -> Vec<u8> {
    assert!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}
