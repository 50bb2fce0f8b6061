//! Memory allocation of the `shrooms` binary.
//!
//! Under load the server allocates many small blocks on one thread and frees
//! them on another: a row read by SQLite's worker thread is dropped by the
//! request's thread. glibc's allocator spent a fifth of the server's CPU time
//! there (`perf`, docs/PERFORMANCE.md), consolidating free lists and taking
//! other threads' arena locks. jemalloc, compiled from the sources bundled in
//! its crate, keeps per-thread caches and returns freed memory to the system
//! after a delay, which keeps the resident size low (mimalloc was tried too:
//! as fast, but it kept twice the memory).
//!
//! Rust's allocations go to jemalloc through `#[global_allocator]` (in
//! `main.rs`); [`sqlite_on_jemalloc`] hands SQLite's own allocations (pages,
//! statements, values) to it too, through SQLite's documented hook
//! (`SQLITE_CONFIG_MALLOC`), instead of replacing `malloc` for the whole
//! process.

use libsqlite3_sys as sqlite;
use std::os::raw::{c_int, c_void};
use tikv_jemalloc_sys as je;

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    je::malloc(n.max(1) as usize)
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    if !p.is_null() {
        je::free(p)
    }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    je::realloc(p, n.max(1) as usize)
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    je::malloc_usable_size(p).min(c_int::MAX as usize) as c_int
}

unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    let n = n.max(1) as usize;
    let size = je::nallocx(n, 0);
    (if size == 0 { n } else { size }).min(c_int::MAX as usize) as c_int
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    sqlite::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

/// Makes SQLite allocate through jemalloc. Must run before SQLite is first
/// used (the start of `main`); later, SQLite refuses the change and keeps
/// the C library's allocator, which is only slower.
pub fn sqlite_on_jemalloc() -> bool {
    let methods = sqlite::sqlite3_mem_methods {
        xMalloc: Some(x_malloc),
        xFree: Some(x_free),
        xRealloc: Some(x_realloc),
        xSize: Some(x_size),
        xRoundup: Some(x_roundup),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: SQLITE_CONFIG_MALLOC takes a pointer to a methods struct that
    // SQLite copies before returning; the functions above follow its
    // contract (sizes as int, xSize of a live block, null-safe free).
    unsafe {
        sqlite::sqlite3_config(sqlite::SQLITE_CONFIG_MALLOC, &methods as *const sqlite::sqlite3_mem_methods)
            == sqlite::SQLITE_OK
    }
}
