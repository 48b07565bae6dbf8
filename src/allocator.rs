//! Memory given back after bursts. glibc's malloc raises its mmap threshold each time a large
//! block is freed (up to 32 MiB), after which buffers of several MiB — an input file read for a
//! vendor, a result picture being thumbnailed — come from per-thread arenas that keep the pages
//! when they are freed: six 20 MiB reads on six blocking threads left RSS 120 MiB higher for
//! good (measured by `tests/hardening.rs::uploads_are_staged_on_disk_as_they_arrive`). A fixed
//! threshold of 1 MiB makes every block that large its own mapping, returned to the system when
//! freed; the hot paths (chat relays, JSON) allocate far below it and are not affected.

/// Blocks of at least this many bytes are mapped on their own and unmapped when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1024 * 1024;

/// Set the allocator up for a long-running server; call once, before any thread starts.
pub fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc's tuning parameters; it is called before the runtime
    // starts its threads, and M_MMAP_THRESHOLD with a value below the 32 MiB maximum is valid.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
