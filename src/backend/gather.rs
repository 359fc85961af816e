//! A VFS shim over the OPFS pool that writes each WAL commit in one call.
//!
//! SQLite writes a WAL frame as two calls, its 24-byte header and its page, so a commit of five pages
//! makes ten `write()` calls on the access handle before its `flush()`. In Firefox each call costs
//! about 0.15 ms whatever its size, which made a durable `create` about three times what the writes
//! and the flush alone cost (BENCHMARKS.md, "Durability"). This shim, registered over the pool's VFS
//! under a name of its own (SQLite's "VFS shim" pattern: every call is forwarded), holds the
//! contiguous writes to a WAL file in memory and writes them as one:
//!
//! - when the page of a frame that commits a transaction has been added (the frame header's second
//!   field, the database size after the commit, is not 0), so the commit's bytes are in the file
//!   before `xWrite` returns, whatever `synchronous` is, and a failure is the commit's own
//!   `xWrite` error, as before;
//! - before any call on that file that reads it or makes it durable (`xSync`, `xRead`, `xTruncate`,
//!   `xFileSize`, `xClose`), before a write that does not follow on, and past [`MAX_PENDING`] bytes.
//!
//! Only frames of a transaction that has not committed yet can be held when a call returns; when
//! writing them out fails, the call that writes them out (the commit's page, a read, a sync) returns
//! the error, and SQLite fails that transaction.
//!
//! Before the commit's bytes go out, the shim makes the database file hold every page the commit
//! leaves it with (the commit frame's database size, times the page size): a `SQLITE_FCNTL_SIZE_HINT`
//! on the database file, which the pool turns into a `truncate` that extends it. When the quota cannot
//! hold them, the commit's `xWrite` fails with the pool's error (`SQLITE_IOERR_TRUNCATE`, which the
//! store reports as `QuotaExceeded`), nothing of the commit is written, and SQLite rolls the
//! transaction back. So a checkpoint always fits in the database file, however full the quota: the
//! WAL can always be emptied, and a removal or purge always makes room (`SqliteDriver`'s quota notes
//! in sqlite.rs). The size the file is known to hold is kept, so only a commit that grows the database
//! asks the pool.
//!
//! The database file, journals and every other call go straight through; the bytes that reach the
//! WAL and their order are SQLite's, only in fewer calls. What a write refused for room reports is the
//! refused write's own error (`SQLITE_IOERR_WRITE` or `SQLITE_FULL`), as the pool's quota handling
//! expects. One more thing differs from the pool's own VFS: the shim reports power-safe overwrite
//! ([`x_device_characteristics`]), so SQLite no longer pads each synced commit to a 4 KiB boundary.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CString};
use std::mem::{align_of, size_of};
use std::ptr;

use sqlite_wasm_rs::{
    sqlite3_file, sqlite3_int64, sqlite3_io_methods, sqlite3_vfs, sqlite3_vfs_find,
    sqlite3_vfs_register, sqlite3_vfs_unregister, SQLITE_ERROR, SQLITE_FCNTL_SIZE_HINT,
    SQLITE_IOCAP_POWERSAFE_OVERWRITE, SQLITE_IOERR, SQLITE_NOTFOUND, SQLITE_OK,
    SQLITE_OPEN_MAIN_DB, SQLITE_OPEN_WAL,
};

/// Bytes held before they are written anyway (a transaction larger than the page cache spills
/// frames before its commit).
pub(crate) const MAX_PENDING: usize = 1 << 20;

/// The size of a WAL frame header.
const FRAME_HEADER: c_int = 24;

/// An open file of the shim: SQLite's `sqlite3_file` first (SQLite allocates `szOsFile` bytes and
/// hands `xOpen` their address), then the pool's own file at [`inner_offset`].
#[repr(C)]
struct GatherFile {
    base: sqlite3_file,
    inner: *mut sqlite3_file,
    /// Only WAL files gather; every other file passes each call straight through.
    wal: bool,
    /// The last write was the header of a frame that commits: the next one is its page.
    commit_next: bool,
    /// That header's database size after the commit, in pages.
    commit_pages: u32,
    pending_at: sqlite3_int64,
    pending: Vec<u8>,
    /// A WAL file: its database's name, by which it finds that file in [`DATABASES`].
    database: Option<String>,
    /// A database file: bytes it is known to hold (0: ask the pool at the next commit).
    reserved: sqlite3_int64,
}

/// Where the pool's file starts inside a [`GatherFile`]'s allocation.
const fn inner_offset() -> usize {
    let align = 16;
    size_of::<GatherFile>().div_ceil(align) * align
}

const _: () = assert!(align_of::<GatherFile>() <= 16);

thread_local! {
    /// The shims registered in this worker, by name: the leaked `sqlite3_vfs` of each.
    static SHIMS: RefCell<Vec<(String, *mut sqlite3_vfs)>> = const { RefCell::new(Vec::new()) };
    /// The database files open through a shim, by name (a few per worker), for their WALs' commits.
    static DATABASES: RefCell<Vec<(String, *mut GatherFile)>> = const { RefCell::new(Vec::new()) };
}

/// Registers (again, after the pool was installed again) the shim over the VFS `base` under the name
/// `shim`.
///
/// # Errors
/// A message when `base` is not registered or SQLite refuses the registration.
pub(crate) fn register(base: &str, shim: &str) -> Result<(), String> {
    let base_name = CString::new(base).map_err(|_| "a VFS name holds a NUL byte".to_owned())?;
    // SAFETY: a NUL-terminated name; SQLite returns a registered VFS or null.
    let inner = unsafe { sqlite3_vfs_find(base_name.as_ptr()) };
    if inner.is_null() {
        return Err(format!("the VFS {base} is not registered"));
    }
    let shim_name = CString::new(shim).map_err(|_| "a VFS name holds a NUL byte".to_owned())?;
    SHIMS.with(|shims| {
        let mut shims = shims.borrow_mut();
        if let Some(at) = shims.iter().position(|(n, _)| n == shim) {
            let (_, old) = shims.remove(at);
            // SAFETY: `old` was registered by this function; connections that still use it keep it
            // (it is never freed), only new opens stop finding it.
            unsafe { sqlite3_vfs_unregister(old) };
        }
        // SAFETY: `inner` is a registered VFS, read once to size the shim's files.
        let (sz_inner, mx_pathname) = unsafe { ((*inner).szOsFile, (*inner).mxPathname) };
        let vfs = Box::into_raw(Box::new(sqlite3_vfs {
            iVersion: 2,
            szOsFile: (inner_offset() as c_int) + sz_inner,
            mxPathname: mx_pathname,
            pNext: ptr::null_mut(),
            zName: shim_name.into_raw(),
            pAppData: inner.cast(),
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
        // SAFETY: a complete, leaked `sqlite3_vfs` whose name lives as long.
        let rc = unsafe { sqlite3_vfs_register(vfs, 0) };
        if rc != SQLITE_OK {
            return Err(format!("sqlite3_vfs_register failed ({rc})"));
        }
        shims.push((shim.to_owned(), vfs));
        Ok(())
    })
}

/// The pool's VFS behind a shim.
unsafe fn inner_vfs(vfs: *mut sqlite3_vfs) -> *mut sqlite3_vfs {
    (*vfs).pAppData.cast()
}

static METHODS: sqlite3_io_methods = sqlite3_io_methods {
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

unsafe extern "C" fn x_open(
    vfs: *mut sqlite3_vfs,
    name: *const c_char,
    file: *mut sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    (*file).pMethods = ptr::null();
    let inner_vfs = inner_vfs(vfs);
    let Some(open) = (*inner_vfs).xOpen else {
        return SQLITE_ERROR;
    };
    let inner = file.cast::<u8>().add(inner_offset()).cast::<sqlite3_file>();
    let rc = open(inner_vfs, name, inner, flags, out_flags);
    if rc != SQLITE_OK || (*inner).pMethods.is_null() {
        // SQLite calls no xClose on a file whose open failed (our pMethods stays null); the pool's
        // file was not opened either, or closed itself.
        return if rc == SQLITE_OK { SQLITE_ERROR } else { rc };
    }
    let wal = flags & SQLITE_OPEN_WAL != 0;
    let main = flags & SQLITE_OPEN_MAIN_DB != 0;
    let named = if name.is_null() {
        None
    } else {
        std::ffi::CStr::from_ptr(name).to_str().ok()
    };
    // SQLite names a WAL after its database: "<database>-wal".
    let database = named
        .filter(|_| wal)
        .and_then(|n| n.strip_suffix("-wal"))
        .map(str::to_owned);
    ptr::write(
        file.cast::<GatherFile>(),
        GatherFile {
            base: sqlite3_file { pMethods: &METHODS },
            inner,
            wal,
            commit_next: false,
            commit_pages: 0,
            pending_at: 0,
            pending: Vec::new(),
            database,
            reserved: 0,
        },
    );
    if let (true, Some(n)) = (main, named) {
        DATABASES.with_borrow_mut(|open| open.push((n.to_owned(), file.cast())));
    }
    SQLITE_OK
}

unsafe fn gather<'a>(file: *mut sqlite3_file) -> &'a mut GatherFile {
    &mut *file.cast::<GatherFile>()
}

/// The pool file's methods.
unsafe fn methods(f: &GatherFile) -> &'static sqlite3_io_methods {
    &*(*f.inner).pMethods
}

impl GatherFile {
    /// Writes what is held, in one call; nothing is held afterwards, whether it worked or not (a
    /// failed write fails the transaction, and SQLite writes its frames again if it retries).
    unsafe fn drain(&mut self) -> c_int {
        if self.pending.is_empty() {
            return SQLITE_OK;
        }
        let bytes = std::mem::take(&mut self.pending);
        self.commit_next = false;
        let Some(write) = methods(self).xWrite else {
            return SQLITE_ERROR;
        };
        let Ok(len) = c_int::try_from(bytes.len()) else {
            return SQLITE_ERROR;
        };
        let rc = write(self.inner, bytes.as_ptr().cast(), len, self.pending_at);
        // Keep the buffer's capacity for the next commit.
        self.pending = bytes;
        self.pending.clear();
        rc
    }
}

unsafe extern "C" fn x_close(file: *mut sqlite3_file) -> c_int {
    let f = gather(file);
    if !f.wal {
        let this = file.cast::<GatherFile>();
        DATABASES.with_borrow_mut(|open| open.retain(|(_, p)| *p != this));
    }
    let drained = f.drain();
    let closed = match methods(f).xClose {
        Some(close) => close(f.inner),
        None => SQLITE_OK,
    };
    ptr::drop_in_place(file.cast::<GatherFile>());
    (*file).pMethods = ptr::null();
    if drained != SQLITE_OK {
        drained
    } else {
        closed
    }
}

unsafe extern "C" fn x_read(
    file: *mut sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: sqlite3_int64,
) -> c_int {
    let f = gather(file);
    let rc = f.drain();
    if rc != SQLITE_OK {
        return rc;
    }
    match methods(f).xRead {
        Some(read) => read(f.inner, buf, amount, offset),
        None => SQLITE_ERROR,
    }
}

unsafe extern "C" fn x_write(
    file: *mut sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: sqlite3_int64,
) -> c_int {
    let f = gather(file);
    let Some(write) = methods(f).xWrite else {
        return SQLITE_ERROR;
    };
    let Ok(len) = usize::try_from(amount) else {
        return SQLITE_ERROR;
    };
    if !f.wal {
        return write(f.inner, buf, amount, offset);
    }
    let follows = f.pending_at + f.pending.len() as sqlite3_int64 == offset;
    if !f.pending.is_empty() && !follows {
        let rc = f.drain();
        if rc != SQLITE_OK {
            return rc;
        }
    }
    if f.pending.is_empty() {
        f.pending_at = offset;
    }
    let bytes = std::slice::from_raw_parts(buf.cast::<u8>(), len);
    f.pending.extend_from_slice(bytes);
    if f.commit_next {
        // The page of the frame that commits: the database file must hold what the commit leaves it
        // with before the commit goes to the WAL.
        let rc = reserve(
            f.database.as_deref(),
            sqlite3_int64::from(f.commit_pages) * sqlite3_int64::from(amount),
        );
        if rc != SQLITE_OK {
            // Nothing of the commit is written; SQLite rolls the transaction back.
            f.pending.clear();
            f.commit_next = false;
            return rc;
        }
        return f.drain();
    }
    // A frame header: bytes 4..8 are the database's size in pages after a commit, 0 otherwise.
    if amount == FRAME_HEADER {
        f.commit_pages = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        f.commit_next = f.commit_pages != 0;
    }
    if f.pending.len() >= MAX_PENDING {
        return f.drain();
    }
    SQLITE_OK
}

unsafe extern "C" fn x_truncate(file: *mut sqlite3_file, size: sqlite3_int64) -> c_int {
    let f = gather(file);
    let rc = f.drain();
    if rc != SQLITE_OK {
        return rc;
    }
    // A checkpoint may cut the database file back: ask the pool again at the next commit.
    f.reserved = 0;
    match methods(f).xTruncate {
        Some(truncate) => truncate(f.inner, size),
        None => SQLITE_ERROR,
    }
}

/// Makes the database file `database` hold `bytes` (see the module docs): `SQLITE_OK`, or the pool's
/// error when it cannot (`SQLITE_IOERR_TRUNCATE` at a full quota).
unsafe fn reserve(database: Option<&str>, bytes: sqlite3_int64) -> c_int {
    let found = database.and_then(|name| {
        DATABASES.with_borrow(|open| open.iter().find(|(n, _)| n == name).map(|(_, p)| *p))
    });
    let Some(db) = found else {
        // Every WAL SQLite opens follows its database through the same VFS: not reached.
        return SQLITE_IOERR;
    };
    // SAFETY: registered by `x_open` and removed by `x_close` of that database file, which SQLite
    // closes after its WAL; a different file from the WAL being written.
    let db = &mut *db;
    if bytes <= db.reserved {
        return SQLITE_OK;
    }
    // The pool implements size hints; a VFS that took none could reserve nothing, and its commits
    // would go on as they did before this shim reserved.
    let Some(control) = methods(db).xFileControl else {
        return SQLITE_OK;
    };
    let mut hint = bytes;
    match control(db.inner, SQLITE_FCNTL_SIZE_HINT, (&raw mut hint).cast()) {
        SQLITE_OK | SQLITE_NOTFOUND => {
            db.reserved = bytes;
            SQLITE_OK
        }
        rc => rc,
    }
}

unsafe extern "C" fn x_sync(file: *mut sqlite3_file, flags: c_int) -> c_int {
    let f = gather(file);
    let rc = f.drain();
    if rc != SQLITE_OK {
        return rc;
    }
    match methods(f).xSync {
        Some(sync) => sync(f.inner, flags),
        None => SQLITE_ERROR,
    }
}

unsafe extern "C" fn x_file_size(file: *mut sqlite3_file, size: *mut sqlite3_int64) -> c_int {
    let f = gather(file);
    let rc = f.drain();
    if rc != SQLITE_OK {
        return rc;
    }
    match methods(f).xFileSize {
        Some(file_size) => file_size(f.inner, size),
        None => SQLITE_ERROR,
    }
}

unsafe extern "C" fn x_lock(file: *mut sqlite3_file, level: c_int) -> c_int {
    let f = gather(file);
    match methods(f).xLock {
        Some(lock) => lock(f.inner, level),
        None => SQLITE_OK,
    }
}

unsafe extern "C" fn x_unlock(file: *mut sqlite3_file, level: c_int) -> c_int {
    let f = gather(file);
    match methods(f).xUnlock {
        Some(unlock) => unlock(f.inner, level),
        None => SQLITE_OK,
    }
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut sqlite3_file, out: *mut c_int) -> c_int {
    let f = gather(file);
    match methods(f).xCheckReservedLock {
        Some(check) => check(f.inner, out),
        None => {
            *out = 0;
            SQLITE_OK
        }
    }
}

/// Forwarded without writing what is held: SQLite ignores the result of some file controls (hints),
/// so a failed write here could go unseen, and none of them needs the bytes in the file.
unsafe extern "C" fn x_file_control(file: *mut sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    let f = gather(file);
    match methods(f).xFileControl {
        Some(control) => control(f.inner, op, arg),
        None => sqlite_wasm_rs::SQLITE_NOTFOUND,
    }
}

unsafe extern "C" fn x_sector_size(file: *mut sqlite3_file) -> c_int {
    let f = gather(file);
    match methods(f).xSectorSize {
        Some(sector_size) => sector_size(f.inner),
        None => 4096,
    }
}

/// The pool's characteristics, and `SQLITE_IOCAP_POWERSAFE_OVERWRITE`: a write changes no byte of the
/// file but those it writes, even after a power loss (what SQLite's own unix VFS assumes of the same
/// disks and file systems by default, and what an OPFS file is stored on). Without it SQLite pads
/// every synced WAL commit to the next 4 KiB boundary with one more copy of its last frame, written
/// in two pieces around an extra sync point: one more write or two per commit, which cost 0.2 ms in
/// Firefox.
unsafe extern "C" fn x_device_characteristics(file: *mut sqlite3_file) -> c_int {
    let f = gather(file);
    let inner = match methods(f).xDeviceCharacteristics {
        Some(characteristics) => characteristics(f.inner),
        None => 0,
    };
    inner | SQLITE_IOCAP_POWERSAFE_OVERWRITE
}

unsafe extern "C" fn x_delete(
    vfs: *mut sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    let inner = inner_vfs(vfs);
    match (*inner).xDelete {
        Some(delete) => delete(inner, name, sync_dir),
        None => SQLITE_ERROR,
    }
}

unsafe extern "C" fn x_access(
    vfs: *mut sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let inner = inner_vfs(vfs);
    match (*inner).xAccess {
        Some(access) => access(inner, name, flags, out),
        None => SQLITE_ERROR,
    }
}

unsafe extern "C" fn x_full_pathname(
    vfs: *mut sqlite3_vfs,
    name: *const c_char,
    n_out: c_int,
    out: *mut c_char,
) -> c_int {
    let inner = inner_vfs(vfs);
    match (*inner).xFullPathname {
        Some(full) => full(inner, name, n_out, out),
        None => SQLITE_ERROR,
    }
}

unsafe extern "C" fn x_randomness(vfs: *mut sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    let inner = inner_vfs(vfs);
    match (*inner).xRandomness {
        Some(randomness) => randomness(inner, n, out),
        None => 0,
    }
}

unsafe extern "C" fn x_sleep(vfs: *mut sqlite3_vfs, microseconds: c_int) -> c_int {
    let inner = inner_vfs(vfs);
    match (*inner).xSleep {
        Some(sleep) => sleep(inner, microseconds),
        None => 0,
    }
}

unsafe extern "C" fn x_current_time(vfs: *mut sqlite3_vfs, out: *mut f64) -> c_int {
    let inner = inner_vfs(vfs);
    match (*inner).xCurrentTime {
        Some(now) => now(inner, out),
        None => SQLITE_ERROR,
    }
}

unsafe extern "C" fn x_get_last_error(vfs: *mut sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    let inner = inner_vfs(vfs);
    match (*inner).xGetLastError {
        Some(last) => last(inner, n, out),
        None => 0,
    }
}

unsafe extern "C" fn x_current_time_int64(vfs: *mut sqlite3_vfs, out: *mut sqlite3_int64) -> c_int {
    let inner = inner_vfs(vfs);
    match (*inner).xCurrentTimeInt64 {
        Some(now) if (*inner).iVersion >= 2 => now(inner, out),
        _ => {
            let mut days = 0.0;
            let rc = x_current_time(vfs, &mut days);
            *out = (days * 86_400_000.0) as sqlite3_int64;
            rc
        }
    }
}
