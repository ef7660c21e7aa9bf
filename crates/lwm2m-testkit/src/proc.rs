//! Child processes: programs under test read line by line ([`Proc`]), peer programs found on `PATH`
//! ([`find_binary`], [`require`]) and run to completion ([`command`], [`run`]), and the address lines a
//! server prints when it starts ([`startup_word`], [`http_base`]).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// A running child process with its stdout (and its stderr, when piped) read line by line; every read waits at
/// most the guard given to [`Proc::spawn`]. The process is killed when dropped.
#[derive(Debug)]
pub struct Proc {
    /// The process.
    pub child: Child,
    /// Its stdin, when the command piped it.
    pub stdin: Option<ChildStdin>,
    /// Its stdout lines.
    pub stdout: Lines<BufReader<ChildStdout>>,
    /// Its stderr lines, when the command piped stderr.
    pub stderr: Option<Lines<BufReader<ChildStderr>>>,
    guard: Duration,
}

impl Proc {
    /// Spawns `cmd` with stdout piped and kill-on-drop (stdin and stderr as `cmd` sets them); panics if it
    /// does not start.
    pub fn spawn(mut cmd: Command, guard: Duration) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the program starts");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let stderr = child.stderr.take().map(|e| BufReader::new(e).lines());
        Proc {
            child,
            stdin,
            stdout,
            stderr,
            guard,
        }
    }

    /// The next stdout line, or `None` at the end of the output.
    pub async fn next_line(&mut self) -> Option<String> {
        tokio::time::timeout(self.guard, self.stdout.next_line())
            .await
            .expect("no output in time")
            .expect("read stdout")
    }

    /// The next stdout line; panics at the end of the output.
    pub async fn line(&mut self) -> String {
        self.next_line().await.expect("stdout closed")
    }

    /// Reads stdout until a line starts with `prefix`; returns that line.
    pub async fn until(&mut self, prefix: &str) -> String {
        loop {
            match self.next_line().await {
                Some(l) if l.starts_with(prefix) => return l,
                Some(_) => {}
                None => panic!("the output ended before a line starting with {prefix:?}"),
            }
        }
    }

    /// The stdout lines up to and including the first one starting with `prefix`.
    pub async fn lines_through(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self
                .next_line()
                .await
                .unwrap_or_else(|| panic!("stdout closed before {prefix:?}: {lines:?}"));
            let done = l.starts_with(prefix);
            lines.push(l);
            if done {
                return lines;
            }
        }
    }

    /// The stdout lines before the first one starting with `prefix` (which is read and left out).
    pub async fn lines_before(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = self.lines_through(prefix).await;
        lines.pop();
        lines
    }

    /// Reads stderr until a line contains every one of `parts`; returns it. Panics if stderr is not piped.
    pub async fn stderr_until(&mut self, parts: &[&str]) -> String {
        let stderr = self.stderr.as_mut().expect("stderr is piped");
        loop {
            let l = tokio::time::timeout(self.guard, stderr.next_line())
                .await
                .expect("no log line in time")
                .expect("read stderr")
                .unwrap_or_else(|| panic!("stderr closed before a line with {parts:?}"));
            if parts.iter().all(|p| l.contains(p)) {
                return l;
            }
        }
    }

    /// Writes `line` and a newline to stdin. Panics if stdin is not piped.
    pub async fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is piped");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write stdin");
        stdin.flush().await.expect("flush stdin");
    }
}

/// The second word of the first of `lines` that starts with `kind` (after indentation): the address of a
/// startup line such as `  HTTP   http://127.0.0.1:8080/api`. Panics if there is none.
pub fn startup_word(lines: &[String], kind: &str) -> String {
    startup_line(lines, kind)
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no address on the {kind} line"))
        .to_string()
}

/// The first of `lines` that starts with `kind` (after indentation). Panics if there is none.
pub fn startup_line(lines: &[String], kind: &str) -> String {
    lines
        .iter()
        .find(|l| l.trim_start().starts_with(kind))
        .unwrap_or_else(|| panic!("no {kind} line in {lines:?}"))
        .clone()
}

/// The base URL `http://ADDR` of the `HTTP http://ADDR/api` startup line.
pub fn http_base(lines: &[String]) -> String {
    startup_word(lines, "HTTP")
        .strip_suffix("/api")
        .expect("http://ADDR/api")
        .to_string()
}

/// The first of `names` found as an executable file on `PATH`.
pub fn find_binary(names: &[&str]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    let executable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| executable(p))
    })
}

/// [`find_binary`], printing a `SKIPPED:` line on stderr (with how to install it) when none is found.
pub fn require(names: &[&str], install_hint: &str) -> Option<PathBuf> {
    let found = find_binary(names);
    if found.is_none() {
        eprintln!("SKIPPED: none of {names:?} is installed ({install_hint})");
    }
    found
}

/// A command whose child is killed when dropped, with stdin closed.
pub fn command(program: &Path) -> Command {
    let mut c = Command::new(program);
    c.kill_on_drop(true).stdin(Stdio::null());
    c
}

/// Runs `cmd` to completion within `wait`, capturing stdout and stderr. Panics if it does not start or end.
pub async fn run(mut cmd: Command, wait: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn peer");
    tokio::time::timeout(wait, child.wait_with_output())
        .await
        .expect("peer did not finish in time")
        .expect("peer output")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stdout as text without the one final newline a peer adds.
pub fn text(o: &Output) -> String {
    let s = stdout(o);
    s.strip_suffix('\n').map(str::to_string).unwrap_or(s)
}
