//! The test crate's only `unsafe`: the few system calls the standard library does not offer.
//!
//! Owns lowering `RLIMIT_NOFILE` in a child before it execs, sending a signal to a child, closing a
//! socket with a reset, raising this process's descriptor limit, and making a FIFO. Every call is a
//! thin, checked wrapper returning `io::Result`; nothing here knows about servers or HTTP, and
//! nothing outside this file may use `unsafe` (`tests/it/main.rs` denies it).

use std::ffi::CString;
use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// Makes `cmd`'s process start with `RLIMIT_NOFILE` (soft and hard) at `limit`, so a test can run
/// the real binary out of descriptors without touching this process's own limit.
pub fn limit_nofile_in_child(cmd: &mut Command, limit: u64) {
    // SAFETY: the closure runs in the forked child before exec. It only calls setrlimit, which is
    // async-signal-safe, with a stack value, and allocates nothing (the error is built from errno).
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sends `sig` to the process `pid` (one of this test's children: the real CLI, nginx).
pub fn signal(pid: u32, sig: i32) -> io::Result<()> {
    let pid =
        i32::try_from(pid).map_err(|_| io::Error::other(format!("pid {pid} out of range")))?;
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is one of our own children.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Closes `stream` with a reset (RST) instead of a FIN: `SO_LINGER` with a zero timeout, then close.
/// The only way a test can play a client that vanishes mid-request.
pub fn reset(stream: TcpStream) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a valid `struct linger` that outlives the call, its size is passed, and
    // the descriptor is open (owned by `stream`, closed only when it drops below).
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    drop(stream);
    Ok(())
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit; returns the new soft limit.
pub fn raise_nofile_to_hard_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit` that outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid `rlimit` that outlives the call; setrlimit only reads it.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim.rlim_cur)
}

/// Creates a FIFO (named pipe) at `path`, readable and writable by this user. Reading one blocks
/// until someone writes it: a test can hold a plugin load for exactly as long as it needs.
pub fn make_fifo(path: &Path) -> io::Result<()> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::other(format!("{} contains a NUL byte", path.display())))?;
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
