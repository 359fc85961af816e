//! A SQLite VFS over the OPFS pool's that simulates power loss (test code, browser only): the
//! browser twin of `tests/common/powercut.rs`.
//!
//! `OpfsPool::open_wrapped` (a hidden test seam) puts it between the pool's VFS shim (gather.rs)
//! and the pool's own VFS, so SQLite's writes reach it as the shim makes them (a WAL commit in one
//! write). `xWrite`, `xTruncate` and size hints (which the pool turns into a `truncate` that extends
//! the file) do not reach the pool's file but are kept, in order, as pending operations; `xRead` and
//! `xFileSize` see the pool's file with them applied, so SQLite sees what it wrote; `xSync` applies
//! the file's pending operations to the pool's file and flushes its access handle, and so does
//! `xClose` (the pool flushes a handle when it closes it). A flushed access handle is what OPFS
//! promises to keep; the rest may be lost when the machine or the browser's storage process goes
//! down. The pool's own bookkeeping (a file's slot and name, a deleted file) is flushed by the pool
//! when it happens and passes through.
//!
//! A power cut is armed with [`Disk::arm`] (the n-th write, truncate, size hint or sync from then
//! on) or [`Disk::arm_in_checkpoint`] (the n-th write, truncate or sync on the database file, which
//! in WAL mode only checkpoints write). That operation and every later one are kept apart so that SQLite's view stays
//! consistent while the connection is dropped (closing checkpoints, flushes and deletes the WAL: all of
//! it is dropped), but they never reach the pool. Once the connection is closed, [`Disk::power_cut`]
//! decides what of the operations pending at the cut (written but not flushed) OPFS kept: nothing, a
//! random subset, or all of them with the last write torn (half of its bytes), and writes that
//! through the pool's VFS.
//!
//! Nameless (temporary) files pass through; the store keeps temporary files in memory anyway.
#![allow(unsafe_code, dead_code)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::mem::{align_of, size_of};
use std::ptr;
use std::rc::Rc;

use rusqlite::ffi;

/// What OPFS kept of the writes that were pending (not flushed) when the power went.
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
    Write {
        at: u64,
        data: Vec<u8>,
    },
    Truncate(u64),
    /// A size hint: the pool extends the file to this size when it is smaller.
    Grow(u64),
}

#[derive(Clone, Debug)]
struct Pending {
    name: String,
    /// The flags the file was opened with, to open it again at the cut.
    flags: c_int,
    op: Op,
}

#[derive(Debug, Default)]
struct State {
    /// Written (or truncated) before the cut and not flushed since, in order, for every file.
    pending: Vec<Pending>,
    /// Everything after the cut: seen by reads, never applied.
    after_cut: Vec<Pending>,
    /// Writes, truncates, size hints and syncs so far.
    events: u64,
    /// The event at which the power goes.
    cut_at: Option<u64>,
    /// The same on files other than a WAL (the database file, written by checkpoints only).
    main_events: u64,
    cut_at_main: Option<u64>,
    cut: bool,
    /// Flushes (syncs, closes) that reached the pool.
    syncs: u64,
}

impl State {
    /// Counts one write, truncate, size hint or sync; `checkpoint`: one a checkpoint makes (on a
    /// file other than a WAL, and not a size hint, which the shim sends before a commit).
    fn event(&mut self, name: &str, checkpoint: bool) {
        self.events += 1;
        if checkpoint && !name.ends_with("-wal") {
            self.main_events += 1;
        }
        if self.cut_at.is_some_and(|at| self.events >= at)
            || self.cut_at_main.is_some_and(|at| self.main_events >= at)
        {
            self.cut = true;
        }
    }

    fn push(&mut self, name: &str, flags: c_int, op: Op) {
        self.event(name, !matches!(op, Op::Grow(_)));
        let p = Pending {
            name: name.to_owned(),
            flags,
            op,
        };
        if self.cut {
            self.after_cut.push(p);
        } else {
            self.pending.push(p);
        }
    }

    fn ops_for<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Op> + 'a {
        self.pending
            .iter()
            .chain(&self.after_cut)
            .filter(move |p| p.name == name)
            .map(|p| &p.op)
    }

    fn size(&self, name: &str, real: u64) -> u64 {
        self.ops_for(name).fold(real, |size, op| match op {
            Op::Write { at, data } => size.max(at + data.len() as u64),
            Op::Truncate(to) => *to,
            Op::Grow(to) => size.max(*to),
        })
    }

    /// Takes the pending operations on `name` out, in order.
    fn take(&mut self, name: &str) -> Vec<Pending> {
        let (mine, others) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.name == name);
        self.pending = others;
        mine
    }
}

/// What a power cut found pending and wrote.
#[derive(Clone, Copy, Debug)]
pub struct Cut {
    /// Writes, truncates and size hints not flushed when the power went.
    pub pending: usize,
    /// How many of them reached the pool (a torn write counts).
    pub applied: usize,
    /// Whether some writes or truncates were on a file other than a WAL (the database file: a
    /// checkpoint in progress; size hints, sent before commits, do not count).
    pub main_file: bool,
}

type Shared = Rc<RefCell<State>>;

/// The VFS's app data: the pool's VFS and the disk's state.
struct Overlay {
    inner: *mut ffi::sqlite3_vfs,
    state: Shared,
}

/// The files of one OPFS pool, which lose power together.
#[derive(Default)]
pub struct Disk {
    state: Shared,
    /// The pool VFS's name, this VFS's name, the pool's VFS.
    vfs: RefCell<Option<(String, String, *mut ffi::sqlite3_vfs)>>,
}

impl Disk {
    pub fn new() -> Disk {
        Disk::default()
    }

    /// Registers (once) the VFS over the pool's VFS `base` and returns its name, for
    /// `OpfsPool::open_wrapped`.
    pub fn wrap(&self, base: &str) -> String {
        let mut vfs = self.vfs.borrow_mut();
        if let Some((b, name, _)) = vfs.as_ref() {
            assert_eq!(b, base, "one disk is one pool");
            return name.clone();
        }
        let name = format!("{base}+powercut");
        let base_c = CString::new(base).unwrap();
        // SAFETY: a NUL-terminated name; SQLite returns a registered VFS or null.
        let inner = unsafe { ffi::sqlite3_vfs_find(base_c.as_ptr()) };
        assert!(!inner.is_null(), "the pool's VFS {base} is registered");
        let overlay = Box::into_raw(Box::new(Overlay {
            inner,
            state: self.state.clone(),
        }));
        // SAFETY: `inner` is registered and lives as long as the pool (the test's whole run).
        let (sz_inner, mx_pathname) = unsafe { ((*inner).szOsFile, (*inner).mxPathname) };
        let this = Box::into_raw(Box::new(ffi::sqlite3_vfs {
            iVersion: 2,
            szOsFile: inner_offset() as c_int + sz_inner,
            mxPathname: mx_pathname,
            pNext: ptr::null_mut(),
            zName: CString::new(name.clone()).unwrap().into_raw(),
            pAppData: overlay.cast(),
            xOpen: Some(x_open),
            xDelete: Some(x_delete),
            xAccess: Some(x_access),
            xFullPathname: Some(x_full_pathname),
            xDlOpen: None,
            xDlError: None,
            xDlSym: None,
            xDlClose: None,
            xRandomness: Some(x_randomness),
            xSleep: Some(x_sleep),
            xCurrentTime: Some(x_current_time),
            xGetLastError: Some(x_get_last_error),
            xCurrentTimeInt64: Some(x_current_time_int64),
            xSetSystemCall: None,
            xGetSystemCall: None,
            xNextSystemCall: None,
        }));
        // SAFETY: a complete, leaked `sqlite3_vfs` whose name and app data live as long.
        let rc = unsafe { ffi::sqlite3_vfs_register(this, 0) };
        assert_eq!(rc, ffi::SQLITE_OK, "register the powercut VFS");
        *vfs = Some((base.to_owned(), name.clone(), inner));
        name
    }

    /// The power goes at the `n`-th write, truncate, size hint or sync from now (`n` ≥ 1).
    pub fn arm(&self, n: u64) {
        let mut s = self.state.borrow_mut();
        s.cut_at = Some(s.events + n.max(1));
    }

    /// The power goes at the `n`-th write, truncate or sync on a file other than a WAL from now
    /// (`n` ≥ 1): in WAL mode, in a checkpoint, or at the latest at the next one.
    pub fn arm_in_checkpoint(&self, n: u64) {
        let mut s = self.state.borrow_mut();
        s.cut_at_main = Some(s.main_events + n.max(1));
    }

    /// Whether the power has gone.
    pub fn is_cut(&self) -> bool {
        self.state.borrow().cut
    }

    /// Flushes that reached the pool so far.
    pub fn syncs(&self) -> u64 {
        self.state.borrow().syncs
    }

    /// The power cut itself, once every connection through the VFS is closed: writes what `loss`
    /// leaves of what was pending at the cut through the pool's VFS and forgets the rest. The disk
    /// is then powered again (nothing pending, not armed).
    pub fn power_cut(&self, loss: Loss, rng: &mut impl FnMut() -> u64) -> Cut {
        let mut s = self.state.borrow_mut();
        let pending = std::mem::take(&mut s.pending);
        s.after_cut.clear();
        s.cut = false;
        s.cut_at = None;
        s.cut_at_main = None;
        drop(s);
        let inner = self.vfs.borrow().as_ref().map(|(_, _, v)| *v);
        let last_write = pending
            .iter()
            .rposition(|p| matches!(p.op, Op::Write { .. }));
        let mut files: Vec<(String, RealFile)> = Vec::new();
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
            let at = match files.iter().position(|(n, _)| *n == p.name) {
                Some(at) => at,
                None => {
                    let inner = inner.expect("files were opened through the VFS");
                    files.push((p.name.clone(), RealFile::open(inner, &p.name, p.flags)));
                    files.len() - 1
                }
            };
            let file = files[at].1 .0;
            let op = match &p.op {
                Op::Write { at, data } if loss == Loss::TornLast && Some(i) == last_write => {
                    let half = data.len() / 2;
                    if rng() & 1 == 0 {
                        Op::Write {
                            at: *at,
                            data: data[..half].to_vec(),
                        }
                    } else {
                        Op::Write {
                            at: at + half as u64,
                            data: data[half..].to_vec(),
                        }
                    }
                }
                op => op.clone(),
            };
            // SAFETY: an open file of the pool's VFS.
            let rc = unsafe { apply(file, &op) };
            assert_eq!(rc, ffi::SQLITE_OK, "write what the disk kept of {}", p.name);
        }
        // Closing flushes each handle: the pool's files now hold what survived.
        drop(files);
        Cut {
            pending: pending.len(),
            applied,
            main_file: pending
                .iter()
                .any(|p| !p.name.ends_with("-wal") && !matches!(p.op, Op::Grow(_))),
        }
    }
}

/// A file of the pool's VFS opened again at a cut, closed on drop.
struct RealFile(*mut ffi::sqlite3_file);

impl RealFile {
    fn open(vfs: *mut ffi::sqlite3_vfs, name: &str, flags: c_int) -> RealFile {
        let flags = flags & !(ffi::SQLITE_OPEN_DELETEONCLOSE | ffi::SQLITE_OPEN_EXCLUSIVE);
        let name = CString::new(name).unwrap();
        // SAFETY: a block of the pool's `szOsFile` bytes, zeroed, for its `xOpen`; the name lives
        // until the file is closed (SQLite's contract: `name` outlives the file).
        unsafe {
            let size = (*vfs).szOsFile;
            let file = ffi::sqlite3_malloc(size).cast::<ffi::sqlite3_file>();
            assert!(!file.is_null());
            ptr::write_bytes(file.cast::<u8>(), 0, size as usize);
            let mut out = 0;
            let rc = ((*vfs).xOpen.unwrap())(vfs, name.into_raw(), file, flags, &mut out);
            assert_eq!(rc, ffi::SQLITE_OK, "open a pool file again at the cut");
            RealFile(file)
        }
    }
}

impl Drop for RealFile {
    fn drop(&mut self) {
        // SAFETY: opened by `RealFile::open`.
        unsafe {
            if !(*self.0).pMethods.is_null() {
                let rc = ((*(*self.0).pMethods).xClose.unwrap())(self.0);
                assert_eq!(rc, ffi::SQLITE_OK, "close a pool file after the cut");
            }
            ffi::sqlite3_free(self.0.cast());
        }
    }
}

/// Applies one operation to an open file of the pool's VFS.
///
/// # Safety
/// `real` is an open file of the pool's VFS.
unsafe fn apply(real: *mut ffi::sqlite3_file, op: &Op) -> c_int {
    let m = &*(*real).pMethods;
    match op {
        Op::Write { at, data } => {
            (m.xWrite.unwrap())(real, data.as_ptr().cast(), data.len() as c_int, *at as i64)
        }
        Op::Truncate(to) => (m.xTruncate.unwrap())(real, *to as i64),
        Op::Grow(to) => {
            let mut hint = *to as i64;
            match (m.xFileControl.unwrap())(
                real,
                ffi::SQLITE_FCNTL_SIZE_HINT,
                (&raw mut hint).cast(),
            ) {
                ffi::SQLITE_NOTFOUND => ffi::SQLITE_OK,
                rc => rc,
            }
        }
    }
}

/// An open file of the VFS: SQLite's base, then the pool's file at [`inner_offset`].
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    state: Shared,
    /// `None`: a nameless file, which passes through.
    name: Option<String>,
    flags: c_int,
}

const fn inner_offset() -> usize {
    let align = 16;
    size_of::<File>().div_ceil(align) * align
}

const _: () = assert!(align_of::<File>() <= 16);

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
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
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

unsafe fn overlay<'a>(vfs: *mut ffi::sqlite3_vfs) -> &'a Overlay {
    &*(*vfs).pAppData.cast::<Overlay>()
}

unsafe fn file<'a>(f: *mut ffi::sqlite3_file) -> &'a mut File {
    &mut *f.cast::<File>()
}

unsafe fn methods(f: &File) -> &'static ffi::sqlite3_io_methods {
    &*(*f.inner).pMethods
}

fn name_of(name: *const c_char) -> Option<String> {
    if name.is_null() {
        return None;
    }
    // SAFETY: SQLite passes NUL-terminated names.
    unsafe { CStr::from_ptr(name) }
        .to_str()
        .ok()
        .map(str::to_owned)
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    f: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    (*f).pMethods = ptr::null();
    let o = overlay(vfs);
    let inner = f
        .cast::<u8>()
        .add(inner_offset())
        .cast::<ffi::sqlite3_file>();
    let rc = ((*o.inner).xOpen.unwrap())(o.inner, name, inner, flags, out_flags);
    if rc != ffi::SQLITE_OK || (*inner).pMethods.is_null() {
        return if rc == ffi::SQLITE_OK {
            ffi::SQLITE_ERROR
        } else {
            rc
        };
    }
    ptr::write(
        f.cast::<File>(),
        File {
            base: ffi::sqlite3_file { pMethods: &METHODS },
            inner,
            state: o.state.clone(),
            name: name_of(name),
            flags,
        },
    );
    ffi::SQLITE_OK
}

/// Writes `name`'s pending operations to the pool's file `inner` (a flush follows).
unsafe fn write_through(f: &File, name: &str) -> c_int {
    let mine = f.state.borrow_mut().take(name);
    for p in mine {
        let rc = apply(f.inner, &p.op);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_close(f: *mut ffi::sqlite3_file) -> c_int {
    let this = file(f);
    let mut rc = ffi::SQLITE_OK;
    // The pool flushes a handle when it closes it: before the cut that is a sync.
    if let Some(name) = this.name.clone() {
        if !this.state.borrow().cut {
            rc = write_through(this, &name);
            if rc == ffi::SQLITE_OK {
                this.state.borrow_mut().syncs += 1;
            }
        }
    }
    let closed = (methods(this).xClose.unwrap())(this.inner);
    ptr::drop_in_place(f.cast::<File>());
    (*f).pMethods = ptr::null();
    if rc != ffi::SQLITE_OK {
        rc
    } else {
        closed
    }
}

unsafe extern "C" fn x_read(
    f: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let this = file(f);
    let m = methods(this);
    let Some(name) = this.name.as_deref() else {
        return (m.xRead.unwrap())(this.inner, buf, amt, offset);
    };
    let s = this.state.borrow();
    let rc = (m.xRead.unwrap())(this.inner, buf, amt, offset);
    if rc != ffi::SQLITE_OK && rc != ffi::SQLITE_IOERR_SHORT_READ {
        return rc;
    }
    if s.ops_for(name).next().is_none() {
        return rc;
    }
    let mut real = 0;
    let size_rc = (m.xFileSize.unwrap())(this.inner, &mut real);
    if size_rc != ffi::SQLITE_OK {
        return size_rc;
    }
    let mut size = real as u64;
    let buf = std::slice::from_raw_parts_mut(buf.cast::<u8>(), amt as usize);
    let (start, end) = (offset as u64, offset as u64 + amt as u64);
    if size < end {
        buf[(size.max(start) - start) as usize..].fill(0);
    }
    for op in s.ops_for(name) {
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
            Op::Grow(to) => size = size.max(*to),
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
    f: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let this = file(f);
    let Some(name) = this.name.as_deref() else {
        return (methods(this).xWrite.unwrap())(this.inner, buf, amt, offset);
    };
    let data = std::slice::from_raw_parts(buf.cast::<u8>(), amt as usize).to_vec();
    this.state.borrow_mut().push(
        name,
        this.flags,
        Op::Write {
            at: offset as u64,
            data,
        },
    );
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_truncate(f: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    let this = file(f);
    let Some(name) = this.name.as_deref() else {
        return (methods(this).xTruncate.unwrap())(this.inner, size);
    };
    this.state
        .borrow_mut()
        .push(name, this.flags, Op::Truncate(size as u64));
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    let this = file(f);
    let Some(name) = this.name.clone() else {
        return (methods(this).xSync.unwrap())(this.inner, flags);
    };
    {
        let mut s = this.state.borrow_mut();
        s.event(&name, true);
        if s.cut {
            return ffi::SQLITE_OK;
        }
    }
    let rc = write_through(this, &name);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let rc = (methods(this).xSync.unwrap())(this.inner, flags);
    if rc == ffi::SQLITE_OK {
        this.state.borrow_mut().syncs += 1;
    }
    rc
}

unsafe extern "C" fn x_file_size(f: *mut ffi::sqlite3_file, out: *mut ffi::sqlite3_int64) -> c_int {
    let this = file(f);
    let rc = (methods(this).xFileSize.unwrap())(this.inner, out);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    if let Some(name) = this.name.as_deref() {
        *out = this.state.borrow().size(name, *out as u64) as i64;
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_lock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let this = file(f);
    (methods(this).xLock.unwrap())(this.inner, level)
}

unsafe extern "C" fn x_unlock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let this = file(f);
    (methods(this).xUnlock.unwrap())(this.inner, level)
}

unsafe extern "C" fn x_check_reserved_lock(f: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let this = file(f);
    (methods(this).xCheckReservedLock.unwrap())(this.inner, out)
}

unsafe extern "C" fn x_file_control(
    f: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    let this = file(f);
    // A size hint makes the pool extend its file: an unflushed change like a truncate.
    if op == ffi::SQLITE_FCNTL_SIZE_HINT {
        if let Some(name) = this.name.as_deref() {
            let size = *arg.cast::<ffi::sqlite3_int64>();
            this.state
                .borrow_mut()
                .push(name, this.flags, Op::Grow(size as u64));
            return ffi::SQLITE_OK;
        }
    }
    (methods(this).xFileControl.unwrap())(this.inner, op, arg)
}

unsafe extern "C" fn x_sector_size(f: *mut ffi::sqlite3_file) -> c_int {
    let this = file(f);
    (methods(this).xSectorSize.unwrap())(this.inner)
}

unsafe extern "C" fn x_device_characteristics(f: *mut ffi::sqlite3_file) -> c_int {
    let this = file(f);
    (methods(this).xDeviceCharacteristics.unwrap())(this.inner)
}

unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    let o = overlay(vfs);
    if let Some(name) = name_of(name) {
        let mut s = o.state.borrow_mut();
        // After the cut nothing reaches the pool, a delete neither.
        if s.cut {
            return ffi::SQLITE_OK;
        }
        s.take(&name);
    }
    ((*o.inner).xDelete.unwrap())(o.inner, name, sync_dir)
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let o = overlay(vfs);
    ((*o.inner).xAccess.unwrap())(o.inner, name, flags, out)
}

unsafe extern "C" fn x_full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let o = overlay(vfs);
    ((*o.inner).xFullPathname.unwrap())(o.inner, name, n, out)
}

unsafe extern "C" fn x_randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    let o = overlay(vfs);
    ((*o.inner).xRandomness.unwrap())(o.inner, n, out)
}

unsafe extern "C" fn x_sleep(vfs: *mut ffi::sqlite3_vfs, us: c_int) -> c_int {
    let o = overlay(vfs);
    ((*o.inner).xSleep.unwrap())(o.inner, us)
}

unsafe extern "C" fn x_current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    let o = overlay(vfs);
    ((*o.inner).xCurrentTime.unwrap())(o.inner, out)
}

unsafe extern "C" fn x_get_last_error(
    vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let o = overlay(vfs);
    match (*o.inner).xGetLastError {
        Some(last) => last(o.inner, n, out),
        None => 0,
    }
}

unsafe extern "C" fn x_current_time_int64(
    vfs: *mut ffi::sqlite3_vfs,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    let o = overlay(vfs);
    match (*o.inner).xCurrentTimeInt64 {
        Some(now) if (*o.inner).iVersion >= 2 => now(o.inner, out),
        _ => {
            let mut days = 0.0;
            let rc = x_current_time(vfs, &mut days);
            *out = (days * 86_400_000.0) as ffi::sqlite3_int64;
            rc
        }
    }
}
