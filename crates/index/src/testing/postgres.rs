//! A real PostgreSQL server for tests: `initdb` into a temporary directory and `postgres` on a
//! free loopback port, fast and unsafe settings (no fsync), killed on drop — and, should the test
//! process die first, by a watcher that outlives it by at most half a second. Stoppable and
//! restartable on the same port. As root (PostgreSQL refuses to run as root) it runs as the
//! `postgres` user (through util-linux's `setpriv`) that Debian's package creates. `scripts/test` installs `postgresql`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct PostgresServer {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

/// The directory of `initdb`, `postgres` and `createdb`: on `PATH`, else Debian's
/// `/usr/lib/postgresql/<version>/bin` (the newest).
fn bin_dir() -> PathBuf {
    if let Ok(out) = Command::new("sh").args(["-c", "command -v initdb"]).output()
        && out.status.success()
    {
        let found = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let real = std::fs::canonicalize(&found).unwrap_or(found);
        if let Some(dir) = real.parent() {
            return dir.to_path_buf();
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed: the store's tests need a real server. scripts/test installs it \
             (apt-get install postgresql)"
        ),
    }
}

fn as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `program` (from `bin`) with `args`, as the `postgres` user when we are root. `setpriv` execs
/// the program in its place, so a signal to the child reaches the server itself.
fn command(bin: &Path, program: &str, args: &[&str]) -> Command {
    let path = bin.join(program);
    if as_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(path).args(args);
        c
    } else {
        let mut c = Command::new(path);
        c.args(args);
        c
    }
}

impl PostgresServer {
    /// A fresh cluster on a free port, answering once this returns.
    pub fn start() -> PostgresServer {
        let dir = tempfile::tempdir().expect("a temp dir");
        let data = dir.path().join("data");
        if as_root() {
            let uid = user_id("postgres");
            std::os::unix::fs::chown(dir.path(), Some(uid.0), Some(uid.1)).expect("give the temp dir to postgres");
        }
        let bin = bin_dir();
        let out =
            command(&bin, "initdb", &["-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
                .stdout(Stdio::null())
                .output()
                .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let mut server = PostgresServer { port: 0, bin, data, child: None, _dir: dir };
        for _ in 0..5 {
            server.port = super::free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("postgres did not start on any of 5 free ports");
    }

    /// One server for the whole test process (each test takes a database of its own with
    /// [`PostgresServer::new_database`]); it ends with the process.
    pub fn shared() -> &'static PostgresServer {
        static SERVER: OnceLock<PostgresServer> = OnceLock::new();
        SERVER.get_or_init(PostgresServer::start)
    }

    /// The URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A new empty database; its URL.
    pub fn new_database(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("t{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let port = self.port.to_string();
        let out = command(&self.bin, "createdb", &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", &name])
            .output()
            .expect("run createdb");
        assert!(out.status.success(), "createdb failed: {}", String::from_utf8_lossy(&out.stderr));
        self.url(&name)
    }

    /// Starts `postgres` on `self.port` under a watcher that stops it when this process ends;
    /// true once it accepts connections.
    fn spawn(&mut self) -> bool {
        let port = self.port.to_string();
        let data = self.data.to_str().unwrap().to_string();
        let server = command(
            &self.bin,
            "postgres",
            &[
                "-D",
                &data,
                "-p",
                &port,
                "-k",
                &data,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
        );
        let mut argv = vec![server.get_program().to_string_lossy().to_string()];
        argv.extend(server.get_args().map(|a| a.to_string_lossy().to_string()));
        // The watcher: the server in the background; once this test process is gone (or the
        // watcher is told to stop with SIGTERM), a fast shutdown.
        // (The data of a server outliving the test process, the shared one, goes with it.)
        let script = r#"parent=$1; data=$2; shift 2
"$@" & child=$!
trap 'kill -INT $child 2>/dev/null; wait $child; exit 0' TERM
while [ -d /proc/$parent ] && kill -0 $child 2>/dev/null; do sleep 0.5 & wait $!; done
kill -INT $child 2>/dev/null; wait $child
[ -d /proc/$parent ] || rm -rf "$data""#;
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("watcher")
            .arg(std::process::id().to_string())
            .arg(self.data.parent().unwrap_or(&self.data))
            .args(&argv)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            if self.ready() {
                return true;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        false
    }

    /// Whether the server accepts connections.
    pub fn ready(&self) -> bool {
        let port = self.port.to_string();
        Command::new(self.bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port, "-q"])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops the server (a fast shutdown); [`PostgresServer::restart`] brings it back with its data.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(c.id() as i32).expect("a pid"),
                rustix::process::Signal::TERM,
            );
            let _ = c.wait();
        }
    }

    /// Starts the stopped server again on the same port.
    pub fn restart(&mut self) {
        assert!(self.spawn(), "postgres did not restart on {}", self.port);
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The uid and gid of `user`, from /etc/passwd.
fn user_id(user: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&user) && f.len() > 3)
        .map(|f| (f[2].parse().expect("a uid"), f[3].parse().expect("a gid")))
        .unwrap_or_else(|| panic!("no `{user}` user: PostgreSQL's package creates it (apt-get install postgresql)"))
}
