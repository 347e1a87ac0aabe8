//! Test support for crates that exchange MQTT with the workloads (feature `testing`): a real
//! mosquitto broker (Debian package `mosquitto`) on a free loopback port.

use std::process::{Child, Command};
use std::time::Duration;

/// A mosquitto broker on a free loopback port, stopped on drop.
pub struct Mosquitto {
    child: Child,
    dir: std::path::PathBuf,
    /// The broker's port on 127.0.0.1.
    pub port: u16,
}

impl Mosquitto {
    /// The broker's URL, `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Starts a broker; panics if mosquitto is not installed or does not listen.
    pub fn start() -> Mosquitto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("qoelab-mosquitto-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .spawn()
            .expect("mosquitto must be installed (Debian package mosquitto; .ci/run installs it)");
        let broker = Mosquitto { child, dir, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return broker;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("mosquitto did not listen on port {port}");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
