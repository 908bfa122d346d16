//! A private nginx for the forward-auth tests: the distribution's binary, in the foreground,
//! on a free port, with a generated configuration in a temporary directory of its own.
//! Dropping it stops the process and removes the directory.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs nginx; `PATH` may lack `/usr/sbin` for a user that is not root.
const DEBIAN_NGINX: &str = "/usr/sbin/nginx";

/// An nginx process owned by one test.
#[derive(Debug)]
pub struct Nginx {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl Nginx {
    /// Starts nginx with one `server` block. Its `listen` directive is replaced by the free
    /// port this picks; `upstreams` are `(in the block, replacement)` pairs, such as the
    /// host names of a documented snippet and the test's own addresses.
    pub fn start(server_block: &str, upstreams: &[(&str, String)]) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "sessiond-nginx-{}-{port}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory for nginx");
        let mut server = listen_on(server_block, port);
        for (from, to) in upstreams {
            assert!(server.contains(from), "the server block names {from}");
            server = server.replace(from, to);
        }
        let config = dir.join("nginx.conf");
        std::fs::write(&config, main_config(&dir, &server)).expect("nginx.conf written");
        let child = Command::new(binary())
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&config)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (Debian: apt-get install nginx-light)");
        let nginx = Self { port, dir, child };
        nginx.wait_until_listening();
        nginx
    }

    /// Its `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What nginx logged (its error log), for a failed assertion's message.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "nginx did not listen on port {}: {}",
            self.port,
            self.error_log()
        );
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn binary() -> &'static str {
    if Path::new(DEBIAN_NGINX).exists() {
        DEBIAN_NGINX
    } else {
        "nginx"
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port()
}

/// `server_block` with each `listen …;` directive listening on `port` of loopback.
fn listen_on(server_block: &str, port: u16) -> String {
    server_block
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("listen ") {
                format!("    listen 127.0.0.1:{port};")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A whole configuration around `server`: one process (no master: killing it leaves no
/// orphaned worker serving the port), everything under `dir`.
fn main_config(dir: &Path, server: &str) -> String {
    let dir = dir.display();
    format!(
        "master_process off;\n\
         pid {dir}/nginx.pid;\n\
         error_log {dir}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n\
         access_log off;\n\
         client_body_temp_path {dir}/body;\n\
         proxy_temp_path {dir}/proxy;\n\
         fastcgi_temp_path {dir}/fastcgi;\n\
         uwsgi_temp_path {dir}/uwsgi;\n\
         scgi_temp_path {dir}/scgi;\n\
         {server}\n\
         }}\n"
    )
}
