//! A SQLite VFS that simulates power loss (test code, native only).
//!
//! It wraps the default `unix` VFS. Files opened under a directory given to [`Disk::new`] get an
//! overlay: `xWrite` and `xTruncate` do not reach the real file but are kept, in order, as pending
//! operations in process memory; `xRead` and `xFileSize` see the real file with the pending operations
//! applied, so SQLite sees what it wrote; `xSync` applies the file's pending operations to the real file
//! and syncs it. Everything else (locks, file controls, the shared-memory WAL index) passes through.
//!
//! A power cut is armed with [`Disk::arm`]: at the n-th write, truncate or sync from then on the
//! power goes ([`Disk::arm_in_checkpoint`]: the n-th on the database file, which in WAL mode only
//! checkpoints write). That operation and every later one are kept apart ("after the cut") so that SQLite's
//! view stays consistent while the connection is dropped (closing may checkpoint, sync and delete the
//! WAL: all of it is dropped), but they never reach the real files; deletes after the cut are dropped.
//! Once the connection is closed, [`Disk::power_cut`] decides what of the operations pending at the
//! cut (written but not synced) the "disk" kept: nothing, a random subset, or all of them with the
//! last write torn (half of its bytes). The WAL index (`-shm`) is rebuilt by SQLite from the WAL after
//! a crash, so the caller deletes it.
//!
//! Files outside every registered directory (and SQLite's nameless temporary files) pass through.
#![allow(unsafe_code, dead_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rusqlite::ffi;

/// The name the VFS is registered under (never as the default).
pub const VFS_NAME: &str = "powercut";

/// What the disk kept of the writes that were pending (not synced) when the power went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// None of them.
    Everything,
    /// Each one with probability 1/2, in order.
    Subset,
    /// All of them, but the last write only half: its first or its second half.
    TornLast,
}

impl Loss {
    pub const ALL: [Loss; 3] = [Loss::Everything, Loss::Subset, Loss::TornLast];
}

#[derive(Clone, Debug)]
enum Op {
    Write { at: u64, data: Vec<u8> },
    Truncate(u64),
}

#[derive(Clone, Debug)]
struct Pending {
    path: PathBuf,
    op: Op,
}

#[derive(Debug, Default)]
struct State {
    /// Written (or truncated) before the cut and not synced since, in order, for every file.
    pending: Vec<Pending>,
    /// Everything after the cut: seen by reads, never applied.
    after_cut: Vec<Pending>,
    /// Writes, truncates and syncs so far.
    events: u64,
    /// The event at which the power goes.
    cut_at: Option<u64>,
    /// Writes, truncates and syncs so far on files other than a WAL (the database file, written by
    /// checkpoints only), and the one at which the power goes.
    main_events: u64,
    cut_at_main: Option<u64>,
    cut: bool,
    /// Syncs that reached the real file.
    syncs: u64,
}

impl State {
    /// Counts one write, truncate or sync on `path`; the power goes at the armed one.
    fn event(&mut self, path: &Path) {
        self.events += 1;
        if !path.to_string_lossy().ends_with("-wal") {
            self.main_events += 1;
        }
        if self.cut_at.is_some_and(|at| self.events >= at)
            || self.cut_at_main.is_some_and(|at| self.main_events >= at)
        {
            self.cut = true;
        }
    }

    fn push(&mut self, path: &Path, op: Op) {
        self.event(path);
        let p = Pending {
            path: path.to_owned(),
            op,
        };
        if self.cut {
            self.after_cut.push(p);
        } else {
            self.pending.push(p);
        }
    }

    fn ops_for<'a>(&'a self, path: &'a Path) -> impl Iterator<Item = &'a Op> + 'a {
        self.pending
            .iter()
            .chain(&self.after_cut)
            .filter(move |p| p.path == path)
            .map(|p| &p.op)
    }

    fn size(&self, path: &Path, real: u64) -> u64 {
        self.ops_for(path).fold(real, |size, op| match op {
            Op::Write { at, data } => size.max(at + data.len() as u64),
            Op::Truncate(to) => *to,
        })
    }
}

/// What a power cut found pending and wrote.
#[derive(Clone, Copy, Debug)]
pub struct Cut {
    /// Writes and truncates not synced when the power went.
    pub pending: usize,
    /// How many of them reached the files (a torn write counts).
    pub applied: usize,
    /// Whether some were on a file other than a WAL (the database file: a checkpoint in progress).
    pub main_file: bool,
}

type Shared = Arc<Mutex<State>>;

/// A directory whose files lose power together (registered while this lives).
pub struct Disk {
    dir: PathBuf,
    state: Shared,
}

fn disks() -> MutexGuard<'static, Vec<(PathBuf, Shared)>> {
    static DISKS: Mutex<Vec<(PathBuf, Shared)>> = Mutex::new(Vec::new());
    DISKS.lock().unwrap_or_else(|e| e.into_inner())
}

fn disk_for(path: &Path) -> Option<Shared> {
    disks()
        .iter()
        .find(|(dir, _)| path.starts_with(dir))
        .map(|(_, state)| state.clone())
}

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Disk {
    /// Registers the VFS (once) and puts the files under `dir` behind the overlay.
    pub fn new(dir: &Path) -> Disk {
        register();
        let disk = Disk {
            dir: dir.canonicalize().expect("canonical directory"),
            state: Shared::default(),
        };
        disks().push((disk.dir.clone(), disk.state.clone()));
        disk
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The power goes at the `n`-th write, truncate or sync from now (`n` ≥ 1).
    pub fn arm(&self, n: u64) {
        let mut s = self.lock();
        s.cut_at = Some(s.events + n.max(1));
    }

    /// The power goes at the `n`-th write, truncate or sync on a file other than a WAL from now
    /// (`n` ≥ 1): in WAL mode, in a checkpoint, or at the latest at the next one.
    pub fn arm_in_checkpoint(&self, n: u64) {
        let mut s = self.lock();
        s.cut_at_main = Some(s.main_events + n.max(1));
    }

    /// Whether the power has gone.
    pub fn is_cut(&self) -> bool {
        self.lock().cut
    }

    /// Syncs that reached the real files so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// The power cut itself, once every connection through the VFS is closed: writes `loss` leaves of
    /// what was pending at the cut to the real files and forgets the rest. The disk is then powered
    /// again (nothing pending, not armed).
    pub fn power_cut(&self, loss: Loss, rng: &mut impl FnMut() -> u64) -> Cut {
        let mut s = self.lock();
        let pending = std::mem::take(&mut s.pending);
        s.after_cut.clear();
        s.cut = false;
        s.cut_at = None;
        s.cut_at_main = None;
        drop(s);
        let last_write = pending
            .iter()
            .rposition(|p| matches!(p.op, Op::Write { .. }));
        let mut applied = 0;
        for (i, p) in pending.iter().enumerate() {
            let keep = match loss {
                Loss::Everything => false,
                Loss::Subset => rng() & 1 == 1,
                Loss::TornLast => true,
            };
            if !keep {
                continue;
            }
            applied += 1;
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&p.path)
                .expect("open a file the VFS wrote");
            match &p.op {
                Op::Write { at, data } if loss == Loss::TornLast && Some(i) == last_write => {
                    let half = data.len() / 2;
                    if rng() & 1 == 0 {
                        file.write_all_at(&data[..half], *at)
                    } else {
                        file.write_all_at(&data[half..], at + half as u64)
                    }
                    .expect("torn write")
                }
                Op::Write { at, data } => file.write_all_at(data, *at).expect("write"),
                Op::Truncate(to) => file.set_len(*to).expect("truncate"),
            }
        }
        Cut {
            pending: pending.len(),
            applied,
            main_file: pending
                .iter()
                .any(|p| !p.path.to_string_lossy().ends_with("-wal")),
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        disks().retain(|(_, state)| !Arc::ptr_eq(state, &self.state));
    }
}

/// The default VFS this one wraps.
fn real_vfs() -> *mut ffi::sqlite3_vfs {
    static REAL: OnceLock<usize> = OnceLock::new();
    *REAL.get_or_init(|| {
        // SAFETY: a NULL name asks for the default VFS (and initialises SQLite).
        let vfs = unsafe { ffi::sqlite3_vfs_find(ptr::null()) };
        assert!(!vfs.is_null(), "no default VFS");
        vfs as usize
    }) as *mut ffi::sqlite3_vfs
}

fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let real = real_vfs();
        // SAFETY: `real` is SQLite's registered default VFS, which lives as long as the process.
        let mut vfs: ffi::sqlite3_vfs = unsafe { ptr::read(real) };
        vfs.szOsFile = std::mem::size_of::<File>() as c_int;
        vfs.pNext = ptr::null_mut();
        vfs.zName = CString::new(VFS_NAME).unwrap().into_raw();
        vfs.xOpen = Some(x_open);
        vfs.xDelete = Some(x_delete);
        vfs.xAccess = Some(x_access);
        let vfs = Box::leak(Box::new(vfs));
        // SAFETY: the struct is leaked, so it outlives every connection.
        let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 0) };
        assert_eq!(rc, ffi::SQLITE_OK, "register the powercut VFS");
    });
}

/// Our file: SQLite's base, the real (`unix`) file, and the overlay it belongs to.
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// `None`: the file passes through.
    disk: *mut Option<(Shared, PathBuf)>,
}

static IO_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // Version 2: shared memory, but no memory-mapped reads (they would bypass the overlay).
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

fn path_of(name: *const c_char) -> Option<PathBuf> {
    if name.is_null() {
        return None;
    }
    // SAFETY: SQLite passes NUL-terminated names.
    let name = unsafe { CStr::from_ptr(name) };
    name.to_str().ok().map(PathBuf::from)
}

/// The real file and this file's overlay.
///
/// # Safety
/// `f` is a `File` our `x_open` set up.
unsafe fn parts<'a>(
    f: *mut ffi::sqlite3_file,
) -> (*mut ffi::sqlite3_file, Option<&'a (Shared, PathBuf)>) {
    let f = f.cast::<File>();
    ((*f).real, (*(*f).disk).as_ref())
}

/// # Safety
/// `real` is an open file of the real VFS.
unsafe fn methods<'a>(real: *mut ffi::sqlite3_file) -> &'a ffi::sqlite3_io_methods {
    &*(*real).pMethods
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let real_vfs = real_vfs();
    let f = file.cast::<File>();
    (*f).base.pMethods = ptr::null();
    let size = (*real_vfs).szOsFile;
    let real = ffi::sqlite3_malloc(size).cast::<ffi::sqlite3_file>();
    if real.is_null() {
        return ffi::SQLITE_NOMEM;
    }
    ptr::write_bytes(real.cast::<u8>(), 0, size as usize);
    let rc = ((*real_vfs).xOpen.unwrap())(real_vfs, name, real, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        if !(*real).pMethods.is_null() {
            (methods(real).xClose.unwrap())(real);
        }
        ffi::sqlite3_free(real.cast());
        return rc;
    }
    let disk = path_of(name).and_then(|p| disk_for(&p).map(|d| (d, p)));
    (*f).real = real;
    (*f).disk = Box::into_raw(Box::new(disk));
    (*f).base.pMethods = &IO_METHODS;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_delete(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    if let Some(path) = path_of(name) {
        if let Some(disk) = disk_for(&path) {
            let mut s = lock(&disk);
            if s.cut {
                return ffi::SQLITE_OK;
            }
            s.pending.retain(|p| p.path != path);
        }
    }
    let real = real_vfs();
    ((*real).xDelete.unwrap())(real, name, sync_dir)
}

unsafe extern "C" fn x_access(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let real = real_vfs();
    let rc = ((*real).xAccess.unwrap())(real, name, flags, out);
    // The real VFS says an empty file does not exist; one with pending writes does.
    if rc == ffi::SQLITE_OK && flags == ffi::SQLITE_ACCESS_EXISTS && *out == 0 {
        if let Some(path) = path_of(name) {
            if let Some(disk) = disk_for(&path) {
                let len = std::fs::metadata(&path).map_or(0, |m| m.len());
                if lock(&disk).size(&path, len) > 0 {
                    *out = 1;
                }
            }
        }
    }
    rc
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let f = file.cast::<File>();
    let real = (*f).real;
    let rc = (methods(real).xClose.unwrap())(real);
    ffi::sqlite3_free(real.cast());
    drop(Box::from_raw((*f).disk));
    (*f).base.pMethods = ptr::null();
    rc
}

unsafe fn real_size(real: *mut ffi::sqlite3_file) -> Result<u64, c_int> {
    let mut size: ffi::sqlite3_int64 = 0;
    match (methods(real).xFileSize.unwrap())(real, &mut size) {
        ffi::SQLITE_OK => Ok(size as u64),
        rc => Err(rc),
    }
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let (real, disk) = parts(file);
    let Some((disk, path)) = disk else {
        return (methods(real).xRead.unwrap())(real, buf, amt, offset);
    };
    let s = lock(disk);
    // The real read fills what the file lacks with zeros.
    let rc = (methods(real).xRead.unwrap())(real, buf, amt, offset);
    if rc != ffi::SQLITE_OK && rc != ffi::SQLITE_IOERR_SHORT_READ {
        return rc;
    }
    if s.ops_for(path).next().is_none() {
        return rc;
    }
    let mut size = match real_size(real) {
        Ok(size) => size,
        Err(rc) => return rc,
    };
    let buf = std::slice::from_raw_parts_mut(buf.cast::<u8>(), amt as usize);
    let (start, end) = (offset as u64, offset as u64 + amt as u64);
    for op in s.ops_for(path) {
        match op {
            Op::Write { at, data } => {
                let (from, to) = ((*at).max(start), (at + data.len() as u64).min(end));
                if from < to {
                    buf[(from - start) as usize..(to - start) as usize]
                        .copy_from_slice(&data[(from - at) as usize..(to - at) as usize]);
                }
                size = size.max(at + data.len() as u64);
            }
            Op::Truncate(to) => {
                if *to < end {
                    buf[((*to).max(start) - start) as usize..].fill(0);
                }
                size = *to;
            }
        }
    }
    if end > size {
        buf[(size.max(start) - start) as usize..].fill(0);
        ffi::SQLITE_IOERR_SHORT_READ
    } else {
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let (real, disk) = parts(file);
    let Some((disk, path)) = disk else {
        return (methods(real).xWrite.unwrap())(real, buf, amt, offset);
    };
    let data = std::slice::from_raw_parts(buf.cast::<u8>(), amt as usize).to_vec();
    lock(disk).push(
        path,
        Op::Write {
            at: offset as u64,
            data,
        },
    );
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    let (real, disk) = parts(file);
    let Some((disk, path)) = disk else {
        return (methods(real).xTruncate.unwrap())(real, size);
    };
    lock(disk).push(path, Op::Truncate(size as u64));
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    let (real, disk) = parts(file);
    let Some((disk, path)) = disk else {
        return (methods(real).xSync.unwrap())(real, flags);
    };
    let mut s = lock(disk);
    s.event(path);
    if s.cut {
        return ffi::SQLITE_OK;
    }
    let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut s.pending)
        .into_iter()
        .partition(|p| p.path == *path);
    s.pending = others;
    let m = methods(real);
    for p in mine {
        let rc = match p.op {
            Op::Write { at, data } => {
                (m.xWrite.unwrap())(real, data.as_ptr().cast(), data.len() as c_int, at as i64)
            }
            Op::Truncate(to) => (m.xTruncate.unwrap())(real, to as i64),
        };
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    let rc = (m.xSync.unwrap())(real, flags);
    if rc == ffi::SQLITE_OK {
        s.syncs += 1;
    }
    rc
}

unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    let (real, disk) = parts(file);
    let Some((disk, path)) = disk else {
        return (methods(real).xFileSize.unwrap())(real, out);
    };
    let s = lock(disk);
    match real_size(real) {
        Ok(size) => {
            *out = s.size(path, size) as i64;
            ffi::SQLITE_OK
        }
        Err(rc) => rc,
    }
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (real, _) = parts(file);
    (methods(real).xLock.unwrap())(real, level)
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (real, _) = parts(file);
    (methods(real).xUnlock.unwrap())(real, level)
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let (real, _) = parts(file);
    (methods(real).xCheckReservedLock.unwrap())(real, out)
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    let (real, disk) = parts(file);
    // A size hint would make the real VFS extend the real file itself: it is only a hint.
    if op == ffi::SQLITE_FCNTL_SIZE_HINT && disk.is_some() {
        return ffi::SQLITE_OK;
    }
    (methods(real).xFileControl.unwrap())(real, op, arg)
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let (real, _) = parts(file);
    (methods(real).xSectorSize.unwrap())(real)
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let (real, _) = parts(file);
    (methods(real).xDeviceCharacteristics.unwrap())(real)
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    page_size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let (real, _) = parts(file);
    (methods(real).xShmMap.unwrap())(real, page, page_size, extend, out)
}

unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    let (real, _) = parts(file);
    (methods(real).xShmLock.unwrap())(real, offset, n, flags)
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    let (real, _) = parts(file);
    (methods(real).xShmBarrier.unwrap())(real)
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    let (real, _) = parts(file);
    (methods(real).xShmUnmap.unwrap())(real, delete)
}
