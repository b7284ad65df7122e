//! A throwaway PostgreSQL server for the tests: Debian's `postgresql`
//! binaries, `initdb` into a temporary folder, a free port on loopback,
//! removed when dropped. PostgreSQL refuses to run as root, so as root it
//! runs as `nobody` (through `setpriv`, which executes it in place, so the
//! child is the server itself and a SIGKILL reaches it).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::postgres_backend::off_runtime;

/// What to do when the server's programs are missing.
pub const INSTALL: &str = "install PostgreSQL's server: `apt-get install -y postgresql` (tests/install.sh does it)";

/// A PostgreSQL server of its own, on `127.0.0.1:port`, trusting local connections.
pub struct PostgresServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_nobody: bool,
    /// Serves TLS only (`ssl=on`, and `hostssl` in its `pg_hba.conf`), with a certificate of its test CA.
    tls: bool,
    child: Option<Child>,
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServerError(String);

fn error(text: impl Into<String>) -> ServerError {
    ServerError(text.into())
}

/// The folder of `initdb` and `postgres`: Debian's newest, else what `PATH` has.
fn binaries() -> Result<PathBuf, ServerError> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| dir.join("postgres").exists() && dir.join("initdb").exists())
        .ok_or_else(|| error(format!("no PostgreSQL server programs (initdb, postgres) on this machine: {INSTALL}")))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A port free now on loopback.
fn free_port() -> Result<u16, ServerError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| error(format!("no free port: {e}")))?;
    listener.local_addr().map(|address| address.port()).map_err(|e| error(e.to_string()))
}

impl PostgresServer {
    /// Makes a cluster in a temporary folder and starts its server.
    pub fn start() -> Result<PostgresServer, ServerError> {
        PostgresServer::start_as(false)
    }

    /// [`PostgresServer::start`], serving TLS only (`ssl=on`; a connection without TLS is
    /// refused), with a certificate for `127.0.0.1` and `localhost` issued by a CA of its
    /// own, made with rcgen ([`PostgresServer::ca_path`]).
    pub fn start_with_tls() -> Result<PostgresServer, ServerError> {
        PostgresServer::start_as(true)
    }

    fn start_as(tls: bool) -> Result<PostgresServer, ServerError> {
        let bin = binaries()?;
        let dir = tempfile::Builder::new()
            .prefix("egov-postgres-")
            .tempdir()
            .map_err(|e| error(format!("no temporary folder: {e}")))?;
        let as_nobody = is_root();
        if tls {
            write_certificates(dir.path())?;
        }
        if as_nobody {
            let owned = Command::new("chown").args(["-R", "nobody"]).arg(dir.path()).status();
            if !owned.is_ok_and(|status| status.success()) {
                return Err(error(format!("cannot give {} to the user nobody", dir.path().display())));
            }
        }
        let mut server = PostgresServer { bin, dir, port: free_port()?, as_nobody, tls, child: None };
        let initdb = server
            .command("initdb")
            .arg("-D")
            .arg(server.data())
            .args(["-U", "egov", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
            .stdout(Stdio::null())
            .output()
            .map_err(|e| error(format!("initdb did not run: {e}")))?;
        if !initdb.status.success() {
            return Err(error(format!("initdb failed: {}", String::from_utf8_lossy(&initdb.stderr))));
        }
        server.run()?;
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_nobody {
            let mut command = Command::new("setpriv");
            command.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    /// Starts the server on its data and port, and waits until it takes connections.
    fn run(&mut self) -> Result<(), ServerError> {
        let log = std::fs::File::create(self.dir.path().join("server.log")).map_err(|e| error(e.to_string()))?;
        let mut command = self.command("postgres");
        command
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c"])
            .arg(format!("unix_socket_directories={}", self.dir.path().display()))
            .args(["-c", "max_connections=300", "-c", "fsync=on"]);
        if self.tls {
            let file = |name: &str| self.dir.path().join(name).display().to_string();
            command.args(["-c", "ssl=on", "-c"]).arg(format!("ssl_cert_file={}", file("server.crt")));
            command.arg("-c").arg(format!("ssl_key_file={}", file("server.key")));
            command.arg("-c").arg(format!("hba_file={}", file("pg_hba.conf")));
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| error(format!("postgres did not start: {e}")))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let url = self.url("postgres");
            if off_runtime(|| self.client(&url).is_ok()) {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(error(format!("postgres exited ({status}): {}", self.log())));
            }
            if Instant::now() > deadline {
                return Err(error(format!("postgres did not take connections within 30 s: {}", self.log())));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client of `url`, over TLS when the server serves only that.
    fn client(&self, url: &str) -> Result<postgres::Client, ServerError> {
        let connected = if self.tls {
            crate::postgres_connect::target(&format!("{url}?sslmode=require"))
                .map_err(|e| error(e.to_string()))?
                .connect()
        } else {
            postgres::Client::connect(url, postgres::NoTls)
        };
        connected.map_err(|e| error(format!("cannot reach the server: {e}")))
    }

    /// The certificate (PEM) of the CA that issued the server's, when it serves TLS
    /// (`sslrootcert` for `sslmode=verify-full`).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// What the server wrote to its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The address of database `database` (`postgres` is always there).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://egov@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a database of its own for one test: its address.
    pub fn database(&self, name: &str) -> Result<String, ServerError> {
        let url = self.url("postgres");
        off_runtime(|| {
            let mut client = self.client(&url)?;
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .map_err(|e| error(format!("cannot create database {name}: {e}")))
        })?;
        Ok(self.url(name))
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Its children (the backends) end when they find the postmaster gone; the
        // next start waits for the shared memory they hold to be released.
    }

    /// Starts it again on the same data and port (after [`PostgresServer::kill`]).
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.run() {
                Ok(()) => return Ok(()),
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
                Err(error) => return Err(error),
            }
        }
    }
}

/// A CA and a certificate it issued for `127.0.0.1` and `localhost` (`ca.pem`,
/// `server.crt`, `server.key`), and a `pg_hba.conf` that takes TLS connections only.
fn write_certificates(dir: &std::path::Path) -> Result<(), ServerError> {
    use std::os::unix::fs::PermissionsExt as _;
    let made = |e: rcgen::Error| error(format!("cannot make the test certificates: {e}"));
    let ca_key = rcgen::KeyPair::generate().map_err(made)?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(made)?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "egov test database CA");
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key).map_err(made)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let mut server = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).map_err(made)?;
    server.subject_alt_names.push(rcgen::SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    server.distinguished_name.push(rcgen::DnType::CommonName, "egov test database");
    let key = rcgen::KeyPair::generate().map_err(made)?;
    let cert = server.signed_by(&key, &issuer).map_err(made)?;
    let write = |name: &str, text: &str, mode: u32| -> Result<(), ServerError> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| error(format!("cannot write {}: {e}", path.display())))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| error(format!("cannot set the mode of {}: {e}", path.display())))
    };
    write("ca.pem", &ca_cert.pem(), 0o644)?;
    write("server.crt", &cert.pem(), 0o644)?;
    // PostgreSQL refuses a key that others may read.
    write("server.key", &key.serialize_pem(), 0o600)?;
    write(
        "pg_hba.conf",
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        0o644,
    )
}

impl Drop for PostgresServer {
    /// Stops the server (a fast shutdown) and removes its files with the folder.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
