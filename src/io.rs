//! Everything wgtrain writes goes through here, so that no run costs the user a file.
//!
//! - [`OutputPlan`]: before any work, every output path is resolved and checked: an output
//!   that is also an input or another output is refused (naming both), its folder must exist
//!   and be writable, and a second run writing the same file is refused by an advisory lock.
//! - [`write_atomically`] / [`write_with`]: the bytes go to `.NAME.tmp-PID` beside the target,
//!   are synced, then renamed over it, so an existing file is never half-written. Symlinks are
//!   written through (the link stays a link); character devices and FIFOs are written in place
//!   (renaming over `/dev/null` would replace the device node). A temp file left by a process
//!   that died is removed by the next write of the same target.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Symlink hops followed before giving up, as the kernel's ELOOP limit.
const MAX_LINKS: usize = 40;

/// Follows symlinks at `path` itself to the file that will really be written. Folders on the
/// way are left to `canonicalize`; a dangling link resolves to the file it names.
pub fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

fn parent_or_dot(p: &Path) -> &Path {
    p.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// How a target is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No file there yet: temp file + rename.
    New,
    /// A regular file: temp file + rename, keeping its permissions.
    Replace,
    /// A character device or FIFO (`/dev/null`, `/dev/stdout` on a terminal, `mkfifo`):
    /// opened and written in place, never renamed over.
    InPlace,
}

fn kind_of(m: &fs::Metadata) -> Option<Kind> {
    let t = m.file_type();
    if t.is_file() {
        return Some(Kind::Replace);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() || t.is_fifo() {
            return Some(Kind::InPlace);
        }
    }
    None
}

/// The identity of an existing file: two paths (hard links, `./a` and `a`, links) name the
/// same file exactly when these agree.
#[cfg(unix)]
fn file_id(m: &fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// An output as the user named it and as it will really be written.
#[derive(Clone, Debug)]
pub struct Target {
    /// The flag it came from (`--out`, `--metrics`, …), for messages.
    pub flag: String,
    /// The path as given.
    pub path: PathBuf,
    /// Symlinks followed, folder canonical: the file the bytes land in.
    pub real: PathBuf,
    pub kind: Kind,
    id: Option<(u64, u64)>,
}

impl Target {
    /// Resolves `path` for `flag` and checks that it can be written: its folder exists and is
    /// writable (a probe file is created and removed), it is not a folder or a block device.
    pub fn resolve(flag: &str, path: &Path) -> Result<Target> {
        let bad = |msg: String| Error::flag(flag, msg);
        let shown = path.display();
        if path.as_os_str().is_empty() {
            return Err(bad("an empty path".into()));
        }
        let linked = follow_links(path).map_err(|e| bad(format!("'{shown}': {e}")))?;
        let name = linked
            .file_name()
            .ok_or_else(|| bad(format!("'{shown}' names a folder, not a file")))?
            .to_owned();
        let dir = parent_or_dot(&linked);
        let dir = fs::canonicalize(dir).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => bad(format!(
                "the folder '{}' of '{shown}' does not exist",
                dir.display()
            )),
            _ => bad(format!("the folder '{}' of '{shown}': {e}", dir.display())),
        })?;
        if !dir.is_dir() {
            return Err(bad(format!(
                "'{}' in '{shown}' is not a folder",
                dir.display()
            )));
        }
        let real = dir.join(&name);
        let (kind, id) = match fs::metadata(&real) {
            Ok(m) if m.is_dir() => return Err(bad(format!("'{shown}' is a folder"))),
            Ok(m) => match kind_of(&m) {
                Some(k) => (k, file_id(&m)),
                None => {
                    return Err(bad(format!(
                        "'{shown}' is not a regular file, character device or FIFO"
                    )));
                }
            },
            Err(_) => (Kind::New, None),
        };
        let t = Target {
            flag: flag.to_string(),
            path: path.to_path_buf(),
            real,
            kind,
            id,
        };
        t.probe()
            .map_err(|e| bad(format!("cannot write '{shown}': {e}")))?;
        Ok(t)
    }

    /// Fails now, not after hours of training, when the target cannot be written.
    fn probe(&self) -> io::Result<()> {
        match self.kind {
            // A FIFO without a reader would block an open for writing: leave it to the write.
            Kind::InPlace if is_fifo(&self.real) => Ok(()),
            Kind::InPlace => OpenOptions::new().write(true).open(&self.real).map(drop),
            Kind::New | Kind::Replace => {
                let dir = parent_or_dot(&self.real);
                let name = self.real.file_name().unwrap_or_default();
                clean_stale_temps(dir, &name.to_string_lossy());
                let tmp = temp_path(dir, &name.to_string_lossy());
                File::create(&tmp)?;
                fs::remove_file(&tmp)
            }
        }
    }

    fn same_file(&self, other_real: &Path, other_id: Option<(u64, u64)>) -> bool {
        match (self.id, other_id) {
            (Some(a), Some(b)) => a == b,
            _ => self.real == other_real,
        }
    }
}

#[cfg(unix)]
fn is_fifo(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::metadata(p).is_ok_and(|m| m.file_type().is_fifo())
}

#[cfg(not(unix))]
fn is_fifo(_: &Path) -> bool {
    false
}

/// An input the outputs must not overwrite.
#[derive(Clone, Debug)]
struct Input {
    what: String,
    path: PathBuf,
}

/// Every output of a command, checked together before any work starts.
#[derive(Debug, Default)]
pub struct OutputPlan {
    inputs: Vec<Input>,
    outputs: Vec<(String, PathBuf)>,
}

/// A checked plan: the resolved targets, and the locks held until this is dropped.
#[derive(Debug)]
pub struct Planned {
    pub targets: Vec<Target>,
    _locks: Vec<Lock>,
}

impl Planned {
    /// The target of `flag`, if that flag was planned.
    pub fn target(&self, flag: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.flag == flag)
    }
}

impl OutputPlan {
    pub fn new() -> Self {
        Self::default()
    }

    /// An input file (`what` is how messages name it: "the training data", "--val", …).
    pub fn input(&mut self, what: &str, path: &Path) -> &mut Self {
        self.inputs.push(Input {
            what: what.to_string(),
            path: path.to_path_buf(),
        });
        self
    }

    pub fn output(&mut self, flag: &str, path: &Path) -> &mut Self {
        self.outputs.push((flag.to_string(), path.to_path_buf()));
        self
    }

    /// Resolves every output, refuses clashes and unwritable places (exit 2, naming both
    /// sides), then takes an advisory lock per output so a second run writing the same file
    /// at the same time is refused. Character devices may be shared (`--out /dev/null
    /// --metrics /dev/null` discards both).
    pub fn check(&self) -> Result<Planned> {
        let targets = self
            .outputs
            .iter()
            .map(|(flag, path)| Target::resolve(flag, path))
            .collect::<Result<Vec<_>>>()?;
        for (i, t) in targets.iter().enumerate() {
            for inp in &self.inputs {
                let Ok(m) = fs::metadata(&inp.path) else {
                    continue; // the reader reports a missing input
                };
                let real = fs::canonicalize(&inp.path).unwrap_or_else(|_| inp.path.clone());
                if t.kind != Kind::InPlace && t.same_file(&real, file_id(&m)) {
                    return Err(Error::flag(
                        &t.flag,
                        format!(
                            "'{}' is the same file as {} '{}'; refusing to overwrite an input",
                            t.path.display(),
                            inp.what,
                            inp.path.display()
                        ),
                    ));
                }
            }
            for u in &targets[..i] {
                if t.kind != Kind::InPlace && t.same_file(&u.real, u.id) {
                    return Err(Error::flag(
                        &t.flag,
                        format!(
                            "'{}' is the same file as {} '{}'; give them different paths",
                            t.path.display(),
                            u.flag,
                            u.path.display()
                        ),
                    ));
                }
            }
        }
        let mut locks = Vec::new();
        for t in &targets {
            locks.extend(Lock::take(t)?);
        }
        Ok(Planned {
            targets,
            _locks: locks,
        })
    }
}

/// `.NAME.tmp-PID` beside the target.
pub fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.tmp-{}", std::process::id()))
}

/// Removes `.NAME.tmp-PID` files of `name` in `dir` whose process is gone (a run killed by
/// a second Ctrl-C, a crash, a power cut). Temp files of live processes are left alone.
pub fn clean_stale_temps(dir: &Path, name: &str) -> usize {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_alive(_: u32) -> bool {
    true
}

/// Writes `bytes` to `path` atomically (see the module note).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |w| w.write_all(bytes))
}

/// Writes what `fill` produces to `path` atomically: symlinks written through, devices and
/// FIFOs in place, everything else through `.NAME.tmp-PID` + fsync + rename. On failure the
/// temp file is removed and the old file is untouched.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let real = follow_links(path).map_err(|e| Error::io(path, e))?;
    let meta = fs::metadata(&real).ok();
    match meta.as_ref().and_then(kind_of) {
        Some(Kind::InPlace) => {
            let mut f = OpenOptions::new()
                .write(true)
                .open(&real)
                .map_err(|e| Error::io(path, e))?;
            fill(&mut f)
                .and_then(|_| f.flush())
                .map_err(|e| Error::io(path, e))
        }
        _ if meta.as_ref().is_some_and(|m| m.is_dir()) => Err(Error::io(
            path,
            io::Error::new(io::ErrorKind::IsADirectory, "is a folder"),
        )),
        _ => replace(&real, meta.as_ref(), fill).map_err(|e| Error::io(path, e)),
    }
}

fn replace(
    real: &Path,
    old: Option<&fs::Metadata>,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = parent_or_dot(real);
    let name = real
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?
        .to_string_lossy()
        .into_owned();
    clean_stale_temps(dir, &name);
    let tmp = temp_path(dir, &name);
    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        fill(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        if let Some(m) = old {
            f.set_permissions(m.permissions())?;
        }
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, real)?;
        // The rename is durable once the folder is synced; not every filesystem allows it.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// An advisory lock on an output (`flock` on `.NAME.lock` beside it), released and removed
/// when dropped. The kernel drops it when the process dies, so a crash never leaves a lock
/// that blocks the next run; only an empty `.NAME.lock` file may stay behind.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    _file: File,
}

impl Lock {
    /// Locks `t` (nothing for devices and FIFOs). Refuses, naming the flag, when another
    /// process holds it.
    pub fn take(t: &Target) -> Result<Option<Lock>> {
        if t.kind == Kind::InPlace {
            return Ok(None);
        }
        let dir = parent_or_dot(&t.real);
        let name = t.real.file_name().unwrap_or_default().to_string_lossy();
        let path = dir.join(format!(".{name}.lock"));
        // Another run may remove the lock file between our open and our lock: then the file
        // we locked is no longer the one at `path`, and we try again on the new one.
        for _ in 0..MAX_LINKS {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| {
                    Error::flag(&t.flag, format!("cannot lock '{}': {e}", path.display()))
                })?;
            match try_lock(&file) {
                LockResult::Held => {
                    return Err(Error::flag(
                        &t.flag,
                        format!(
                            "'{}' is being written by another wgtrain run (lock {}); wait for it or choose another path",
                            t.path.display(),
                            path.display()
                        ),
                    ));
                }
                // No locks on this filesystem (some network mounts): go on unlocked.
                LockResult::Unsupported => return Ok(None),
                LockResult::Locked => {}
            }
            let same = match (file.metadata(), fs::metadata(&path)) {
                (Ok(a), Ok(b)) => file_id(&a) == file_id(&b),
                _ => false,
            };
            if same {
                return Ok(Some(Lock { path, _file: file }));
            }
        }
        Err(Error::flag(
            &t.flag,
            format!("cannot lock '{}': it keeps changing", path.display()),
        ))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still held, so nobody can lock the old file and think it current.
        let _ = fs::remove_file(&self.path);
    }
}

enum LockResult {
    Locked,
    Held,
    Unsupported,
}

#[cfg(unix)]
fn try_lock(f: &File) -> LockResult {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own; non-blocking.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return LockResult::Locked;
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EWOULDBLOCK) => LockResult::Held,
        _ => LockResult::Unsupported,
    }
}

#[cfg(not(unix))]
fn try_lock(_: &File) -> LockResult {
    LockResult::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag_msg(e: Error) -> (String, String) {
        match e {
            Error::Flag { flag, msg } => (flag, msg),
            other => panic!("expected a flag error, got {other}"),
        }
    }

    #[test]
    fn an_output_that_is_an_input_is_refused_naming_both() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("d.csv");
        fs::write(&data, "x,y\n1,2\n").unwrap();
        // Spelled differently: ./ and a hard link still name the same file.
        let dotted = d.path().join(".").join("d.csv");
        let hard = d.path().join("h.csv");
        fs::hard_link(&data, &hard).unwrap();
        for out in [&data, &dotted, &hard] {
            let e = OutputPlan::new()
                .input("the training data", &data)
                .output("--out", out)
                .check()
                .unwrap_err();
            let (flag, msg) = flag_msg(e);
            assert_eq!(flag, "--out");
            assert!(
                msg.contains("the training data") && msg.contains("d.csv"),
                "{msg}"
            );
        }
        assert_eq!(fs::read_to_string(&data).unwrap(), "x,y\n1,2\n");
    }

    #[test]
    fn two_outputs_on_one_file_are_refused_even_when_new() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("m.st");
        let link = d.path().join("link.st");
        #[cfg(unix)]
        std::os::unix::fs::symlink("m.st", &link).unwrap();
        let e = OutputPlan::new()
            .output("--out", &a)
            .output("--metrics", &link)
            .check()
            .unwrap_err();
        let (flag, msg) = flag_msg(e);
        assert_eq!(flag, "--metrics");
        assert!(msg.contains("--out") && msg.contains("m.st"), "{msg}");
    }

    #[test]
    fn a_missing_folder_is_refused_before_work() {
        let d = tempfile::tempdir().unwrap();
        let e = OutputPlan::new()
            .output("--out", &d.path().join("nodir/m.st"))
            .check()
            .unwrap_err();
        let (flag, msg) = flag_msg(e);
        assert_eq!(flag, "--out");
        assert!(
            msg.contains("nodir") && msg.contains("does not exist"),
            "{msg}"
        );
        let e = OutputPlan::new()
            .output("--out", d.path())
            .check()
            .unwrap_err();
        assert!(flag_msg(e).1.contains("is a folder"));
    }

    #[cfg(unix)]
    #[test]
    fn an_unwritable_folder_is_refused_before_work() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let ro = d.path().join("ro");
        fs::create_dir(&ro).unwrap();
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        let can_write_anyway = File::create(ro.join("probe")).is_ok(); // root ignores modes
        if !can_write_anyway {
            let e = OutputPlan::new()
                .output("--out", &ro.join("m.st"))
                .check()
                .unwrap_err();
            assert!(flag_msg(e).1.contains("cannot write"));
        }
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn writes_go_through_symlinks_and_keep_the_link() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("real")).unwrap();
        let target = d.path().join("real/m.st");
        fs::write(&target, "old").unwrap();
        let link = d.path().join("m.st");
        std::os::unix::fs::symlink("real/m.st", &link).unwrap();
        write_atomically(&link, b"new").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        // A dangling link creates the file it names.
        let dangling = d.path().join("next.st");
        std::os::unix::fs::symlink("real/next.st", &dangling).unwrap();
        write_atomically(&dangling, b"x").unwrap();
        assert_eq!(
            fs::read_to_string(d.path().join("real/next.st")).unwrap(),
            "x"
        );
        assert!(
            fs::symlink_metadata(&dangling)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[cfg(unix)]
    #[test]
    fn replacing_keeps_the_old_files_permissions_and_leaves_no_temp() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.st");
        fs::write(&p, "old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&p, b"new").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["m.st"], "only the target is left");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.st");
        fs::write(&p, "precious").unwrap();
        let e = write_with(&p, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("disk full") && e.to_string().contains("m.st"));
        assert_eq!(fs::read_to_string(&p).unwrap(), "precious");
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[cfg(unix)]
    #[test]
    fn stale_temps_of_dead_processes_are_cleaned_and_live_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.st");
        // A pid above the kernel's pid_max (4194304) belongs to no process.
        let dead = d.path().join(".m.st.tmp-4194305");
        let live = d.path().join(format!(".m.st.tmp-{}", parent_pid()));
        let other = d.path().join(".other.st.tmp-4194305");
        for f in [&dead, &live, &other] {
            fs::write(f, "partial").unwrap();
        }
        write_atomically(&p, b"model").unwrap();
        assert!(!dead.exists(), "a dead process's temp is removed");
        assert!(live.exists(), "a live process's temp is kept");
        assert!(other.exists(), "another target's temp is not ours to clean");
    }

    #[cfg(unix)]
    fn parent_pid() -> u32 {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::getppid() as u32 }
    }

    #[cfg(unix)]
    #[test]
    fn fifos_are_written_in_place() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
        };
        let t = Target::resolve("--out", &fifo).unwrap();
        assert_eq!(t.kind, Kind::InPlace);
        write_atomically(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        assert!(is_fifo(&fifo), "the FIFO is still a FIFO");
    }

    #[cfg(unix)]
    #[test]
    fn character_devices_are_written_in_place() {
        use std::os::unix::fs::FileTypeExt;
        let d = tempfile::tempdir().unwrap();
        // As root a private copy of /dev/null (mknod c 1 3), so a bug cannot harm the real
        // one; otherwise /dev/null itself, which a non-root process cannot replace anyway.
        let node = d.path().join("null");
        let c = std::ffi::CString::new(node.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        let made =
            unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } == 0;
        let dev = if made {
            node
        } else {
            PathBuf::from("/dev/null")
        };
        let plan = OutputPlan::new()
            .output("--out", &dev)
            .output("--metrics", &dev)
            .check()
            .unwrap();
        assert_eq!(plan.targets[0].kind, Kind::InPlace, "devices may be shared");
        write_atomically(&dev, b"discarded").unwrap();
        assert!(fs::metadata(&dev).unwrap().file_type().is_char_device());
        if made {
            assert_eq!(
                fs::read_dir(d.path()).unwrap().count(),
                1,
                "no temp beside it"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_second_plan_on_the_same_output_is_refused_until_the_first_ends() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.st");
        let first = OutputPlan::new().output("--out", &p).check().unwrap();
        // flock locks belong to the open file, so a second open in this process conflicts
        // exactly as another process would.
        let e = OutputPlan::new()
            .output("--metrics", &p)
            .check()
            .unwrap_err();
        let (flag, msg) = flag_msg(e);
        assert_eq!(flag, "--metrics");
        assert!(msg.contains("another wgtrain run"), "{msg}");
        drop(first);
        assert!(
            !d.path().join(".m.st.lock").exists(),
            "the lock file is removed"
        );
        OutputPlan::new().output("--out", &p).check().unwrap();
    }

    #[test]
    fn replaces_whole_and_leaves_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.bin");
        std::fs::write(&p, b"old").unwrap();
        write_atomically(&p, b"new contents").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new contents");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the file itself: {names:?}");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_cleans_up() {
        let d = tempfile::tempdir().unwrap();
        // A directory in the way of the rename: the write succeeds, the rename fails.
        let p = d.path().join("taken");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("inside"), b"x").unwrap();
        let e = write_atomically(&p, b"data").unwrap_err().to_string();
        assert!(e.contains("taken"), "{e}");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "the temporary file is removed: {names:?}");
        assert!(write_atomically(Path::new("/"), b"x").is_err());
    }
}
